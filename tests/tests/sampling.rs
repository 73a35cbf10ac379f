//! Span sampling: trace-ID ratio, parent-based, errors always kept, per-function rate limit.
//! Metrics stay complete whatever is sampled. One test function: sampling is process-wide.

#![allow(clippy::float_cmp)]

use flext_obs::context::{Context, SpanContext};
use flext_obs::trace::{Sampling, set_sampling};
use flext_obs::{SpanId, TraceId, flext_monitor};
use flext_obs_tests::{calls, spans_of};

#[flext_monitor]
fn sampled_op(fail: bool) -> Result<(), String> {
    if fail { Err("failed".into()) } else { Ok(()) }
}

fn kept() -> usize {
    spans_of("sampled_op").len()
}

#[test]
fn sampling_decides_which_spans_are_kept_and_never_touches_metrics() {
    // The global instance applies the configured sampling when it is created; set it first.
    let _ = flext_obs::global();
    set_sampling(Sampling { ratio: 0.0, parent_based: true, rate_limit: None }).unwrap();
    flext_obs::trace::clear();
    for _ in 0..50 {
        sampled_op(false).unwrap();
    }
    let _ = sampled_op(true);
    assert_eq!(kept(), 1, "ratio 0 keeps only the error");
    assert_eq!((calls("sampled_op", "ok"), calls("sampled_op", "error")), (50.0, 1.0), "metrics are complete");

    // A caller's sampled flag wins with parent-based sampling.
    flext_obs::trace::clear();
    let parent = |sampled| Context::new().with_span(SpanContext { trace_id: TraceId::random(), span_id: SpanId::random(), sampled });
    parent(true).run(|| sampled_op(false)).unwrap();
    parent(false).run(|| sampled_op(false)).unwrap();
    assert_eq!(kept(), 1, "the sampled parent's child only");

    set_sampling(Sampling { ratio: 0.0, parent_based: false, rate_limit: None }).unwrap();
    flext_obs::trace::clear();
    parent(true).run(|| sampled_op(false)).unwrap();
    assert_eq!(kept(), 0, "without parent-based sampling the trace-ID ratio decides");

    set_sampling(Sampling { ratio: 0.5, parent_based: true, rate_limit: None }).unwrap();
    flext_obs::trace::clear();
    for _ in 0..100 {
        sampled_op(false).unwrap();
    }
    let half = kept();
    assert!((25..=75).contains(&half), "about half of new traces: {half}");

    set_sampling(Sampling { ratio: 1.0, parent_based: true, rate_limit: Some(5) }).unwrap();
    flext_obs::trace::clear();
    for _ in 0..100 {
        sampled_op(false).unwrap();
    }
    let limited = kept();
    assert!((1..=10).contains(&limited), "at most 5 a second (a loop may straddle two seconds): {limited}");

    set_sampling(Sampling::default()).unwrap();
    flext_obs::trace::clear();
    for _ in 0..20 {
        sampled_op(false).unwrap();
    }
    assert_eq!(kept(), 20, "the default keeps everything");
    assert!(set_sampling(Sampling { ratio: -0.1, ..Sampling::default() }).is_err());
    assert!(set_sampling(Sampling { rate_limit: Some(0), ..Sampling::default() }).is_err());
}
