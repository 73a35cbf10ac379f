//! The sampler applies to `tracing` spans bridged by `bridge::tracing::SpanLayer` (its own test
//! binary: the sampler is process-wide): with ratio 0 only failed spans are kept, and with a
//! rate limit a callsite keeps at most about its limit per second; `tracing` events inside a
//! recorded span, written by `log::JsonLayer`, carry the span's IDs.

use flext_obs::bridge::tracing::SpanLayer;
use flext_obs::sample::Sampler;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt as _;

fn kept(name: &str) -> usize {
    flext_obs::trace::recent_spans().iter().filter(|s| s.name() == name).count()
}

#[test]
fn the_sampler_and_its_rate_limit_apply_to_bridged_spans() {
    let captured = flext_obs::log::capture();
    let subscriber = tracing_subscriber::registry().with(SpanLayer::new()).with(flext_obs::log::JsonLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        Sampler::builder().ratio(0.0).keep_errors(true).build().unwrap().install();
        for _ in 0..5 {
            let _span = tracing::info_span!("sampled_out").entered();
        }
        {
            let _span = tracing::info_span!("sampled_out_but_failed").entered();
            tracing::error!("the write failed");
        }
        assert_eq!(kept("sampled_out"), 0, "ratio 0 keeps no ordinary span");
        assert_eq!(kept("sampled_out_but_failed"), 1, "a failed span is kept");

        Sampler::builder().ratio(1.0).max_per_second(3).build().unwrap().install();
        for _ in 0..50 {
            let _span = tracing::info_span!("rate_limited").entered();
        }
        let limited = kept("rate_limited");
        assert!((3..=6).contains(&limited), "about 3 per second from one callsite, kept {limited}");

        let span = tracing::info_span!("with_an_event");
        let _entered = span.enter();
        tracing::info!(order = 9, "event inside");
    });
    let recorded = flext_obs::trace::recent_spans().into_iter().find(|s| s.name() == "with_an_event").expect("the span");
    let line: Value = captured
        .lines()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["message"] == "event inside")
        .expect("the event's line");
    assert_eq!(line["trace.id"], recorded.trace_id().to_string());
    assert_eq!(line["span.id"], recorded.span_id().to_string());
    assert_eq!(line["order"], 9);
}
