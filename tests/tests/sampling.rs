//! Span sampling: the head decision (ratio, parent based), errors always kept, the per-function
//! rate limit, and metrics complete whatever is sampled. The sampler is process-wide, so the
//! tests here take turns.

#![allow(clippy::float_cmp)] // exact counts are the point

use flext_obs::context::{Context, SpanContext};
use flext_obs::sample::{self, Sampler};
use flext_obs::{Config, flext_monitor};
use flext_obs_tests::{calls, spans_of, sum};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

static TURN: Mutex<()> = Mutex::new(());

/// Installs `sampler` for one test; the default comes back when the guard is dropped.
struct Installed(#[allow(dead_code)] MutexGuard<'static, ()>);

fn install(sampler: Sampler) -> Installed {
    let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    sampler.install();
    Installed(turn)
}

impl Drop for Installed {
    fn drop(&mut self) {
        Sampler::default().install();
    }
}

#[flext_monitor]
fn never_kept(n: u32) -> u32 {
    n + 1
}

#[flext_monitor]
fn fails_unsampled(n: u32) -> Result<u32, String> {
    if n % 2 == 0 { Err(format!("{n} is even")) } else { Ok(n) }
}

#[flext_monitor]
fn fails_dropped(n: u32) -> Result<u32, String> {
    Err(format!("{n} refused"))
}

#[flext_monitor]
fn half_kept(n: u32) -> u32 {
    n
}

#[flext_monitor]
fn follows_parent() -> Option<SpanContext> {
    flext_obs::context::current().span()
}

#[flext_monitor]
fn ignores_parent() -> Option<SpanContext> {
    flext_obs::context::current().span()
}

#[flext_monitor]
fn limited(n: u32) -> u32 {
    n
}

#[test]
fn ratio_zero_keeps_no_span_but_counts_every_call() {
    let _on = install(Sampler::builder().ratio(0.0).build().unwrap());
    for n in 0..50 {
        assert_eq!(never_kept(n), n + 1);
    }
    assert_eq!(calls("never_kept", "ok"), 50.0);
    assert_eq!(sum("function_calls_duration_seconds", &[("function", "never_kept")]), 50.0);
    assert!(spans_of("never_kept").is_empty());
}

#[test]
fn failed_calls_are_kept_when_their_trace_is_not_sampled_unless_told_otherwise() {
    {
        let _on = install(Sampler::builder().ratio(0.0).build().unwrap());
        for n in 0..10 {
            let _ = fails_unsampled(n);
        }
        let kept = spans_of("fails_unsampled");
        assert_eq!(kept.len(), 5, "only the 5 failures are kept");
        assert!(kept.iter().all(|s| s.status() == flext_obs::SpanStatus::Error));
        assert_eq!(calls("fails_unsampled", "ok") + calls("fails_unsampled", "error"), 10.0);
    }
    let _on = install(Sampler::builder().ratio(0.0).keep_errors(false).build().unwrap());
    for n in 0..10 {
        let _ = fails_dropped(n);
    }
    assert!(spans_of("fails_dropped").is_empty());
    assert_eq!(calls("fails_dropped", "error"), 10.0);
}

#[test]
fn the_ratio_decides_by_trace_id_so_every_service_agrees() {
    let _on = install(Sampler::builder().ratio(0.5).build().unwrap());
    let mut expected = Vec::new();
    for n in 0..200 {
        // Each call is a root span; its trace ID decides.
        let trace = flext_obs::TraceId::random();
        let parent = SpanContext { trace_id: trace, span_id: flext_obs::SpanId::random(), sampled: sample::ratio_samples(trace) };
        Context::new().with_span(parent).run(|| half_kept(n));
        if parent.sampled {
            expected.push(trace);
        }
    }
    let mut kept: Vec<_> = spans_of("half_kept").iter().map(flext_obs::Span::trace_id).collect();
    kept.sort_unstable();
    expected.sort_unstable();
    assert_eq!(kept, expected);
    assert!((60..=140).contains(&kept.len()), "{} of 200 kept at ratio 0.5", kept.len());
    // Root spans made by the monitor follow the same rule.
    for n in 0..50 {
        half_kept(n);
    }
    let roots: Vec<_> = spans_of("half_kept").into_iter().filter(|s| s.parent_span_id().is_none()).collect();
    assert!(roots.iter().all(|s| sample::ratio_samples(s.trace_id())));
}

fn incoming(flags: &str) -> Context {
    let headers: HashMap<String, String> =
        [("traceparent".to_owned(), format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}"))].into();
    Context::extract_strict(&headers).unwrap()
}

#[test]
fn a_child_follows_the_incoming_sampled_flag_and_passes_it_on() {
    let _on = install(Sampler::builder().ratio(0.0).build().unwrap());
    // Sampled upstream: kept here even at ratio 0, and the next hop is told so.
    let span = incoming("01").run(follows_parent).unwrap();
    assert!(span.sampled);
    let mut out = HashMap::new();
    Context::new().with_span(span).inject(&mut out);
    assert!(out["traceparent"].ends_with("-01"));
    // Not sampled upstream: not kept, and the next hop is told so.
    let span = incoming("00").run(follows_parent).unwrap();
    assert!(!span.sampled);
    let mut out = HashMap::new();
    Context::new().with_span(span).inject(&mut out);
    assert!(out["traceparent"].ends_with("-00"));
    let kept = spans_of("follows_parent");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[test]
fn without_parent_based_sampling_the_ratio_overrides_the_incoming_flag() {
    let _on = install(Sampler::builder().ratio(1.0).parent_based(false).build().unwrap());
    assert!(incoming("00").run(ignores_parent).unwrap().sampled);
    assert_eq!(spans_of("ignores_parent").len(), 1);
}

#[test]
fn the_rate_limit_keeps_at_most_n_spans_per_second_and_counts_the_rest() {
    let _on = install(Sampler::builder().max_per_second(5).build().unwrap());
    for n in 0..100 {
        limited(n);
    }
    let kept = spans_of("limited").len();
    // 100 calls take far less than a second; if they straddle a second boundary, two windows
    // of 5 may be used.
    assert!((5..=10).contains(&kept), "{kept} spans kept");
    let dropped = sum("flext_spans_dropped_total", &[("function", "limited"), ("reason", "rate_limit")]);
    assert_eq!(dropped, f64::from(100 - u32::try_from(kept).unwrap()));
    assert_eq!(calls("limited", "ok"), 100.0);
}

#[test]
fn sampling_is_configured_from_the_environment_with_precise_errors() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        Config::from_lookup(move |var| pairs.iter().find(|(k, _)| *k == var).map(|(_, v)| (*v).to_owned()))
    };
    let config = env(&[
        ("FLEXT_TRACE_SAMPLE_RATIO", "0.25"),
        ("FLEXT_TRACE_PARENT_BASED", "false"),
        ("FLEXT_TRACE_KEEP_ERRORS", "no"),
        ("FLEXT_TRACE_MAX_PER_SECOND", "100"),
    ])
    .unwrap();
    let sampler = config.sampler();
    assert_eq!((sampler.ratio(), sampler.parent_based(), sampler.keep_errors(), sampler.max_per_second()), (0.25, false, false, Some(100)));
    assert_eq!(env(&[("FLEXT_TRACE_MAX_PER_SECOND", "off")]).unwrap().sampler().max_per_second(), None);
    for (var, value, expected) in [
        ("FLEXT_TRACE_SAMPLE_RATIO", "1.5", "a number from 0 to 1"),
        ("FLEXT_TRACE_SAMPLE_RATIO", "NaN", "a number from 0 to 1"),
        ("FLEXT_TRACE_SAMPLE_RATIO", "half", "a number from 0 to 1"),
        ("FLEXT_TRACE_PARENT_BASED", "sometimes", "a boolean: true/false, 1/0, yes/no, on/off"),
        ("FLEXT_TRACE_MAX_PER_SECOND", "0", "a whole number >= 1, or off"),
        ("FLEXT_TRACE_MAX_PER_SECOND", "-3", "a whole number >= 1, or off"),
    ] {
        let pairs: &'static [(&'static str, &'static str)] = Box::leak(vec![(var, value)].into_boxed_slice());
        let err = env(pairs).unwrap_err();
        assert_eq!(err.to_string(), format!("environment variable {var}={value:?} is invalid: expected {expected}"));
    }
}
