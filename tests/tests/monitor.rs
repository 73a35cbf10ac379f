//! `#[flext_monitor]`: what each call records, for sync, async, generic, trait-object and
//! impl-block functions, errors, `None`, panics, callers, spans and alerts.

#![allow(clippy::float_cmp)] // exact counts are the point

use flext_obs::{Severity, SpanStatus, flext_monitor};
use flext_obs_tests::{alerts_of, calls, in_flight, panics, spans_of, sum, timed};
use std::fmt;

#[derive(Debug, PartialEq)]
struct Declined(u32);

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "card declined ({})", self.0)
    }
}

#[derive(Debug, PartialEq)]
struct DebugOnly {
    code: u8,
}

#[derive(PartialEq)]
struct Opaque;

#[flext_monitor]
fn charge(amount: u32) -> Result<u32, Declined> {
    if amount > 100 {
        return Err(Declined(amount));
    }
    Ok(amount * 2)
}

#[test]
fn a_sync_function_counts_results_times_calls_and_returns_errors_untouched() {
    for amount in [1, 2, 3] {
        assert_eq!(charge(amount), Ok(amount * 2));
    }
    assert_eq!(charge(500), Err(Declined(500)));
    assert_eq!(calls("charge", "ok"), 3.0);
    assert_eq!(calls("charge", "error"), 1.0);
    assert_eq!(panics("charge"), 0.0);
    assert_eq!(timed("charge"), 4.0);
    assert_eq!(in_flight("charge"), 0.0);
    let alerts = alerts_of("charge");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].message(), "card declined (500)", "message from Display");
    assert_eq!(alerts[0].severity(), Severity::High, "default severity");
    assert_eq!(alerts[0].labels()["error_type"], std::any::type_name::<Declined>());
    let spans = spans_of("charge");
    assert_eq!(spans.len(), 4);
    assert_eq!(spans.iter().filter(|s| s.status() == SpanStatus::Error).count(), 1);
    let failed = spans.iter().find(|s| s.status() == SpanStatus::Error).unwrap();
    assert_eq!(alerts[0].labels()["trace_id"], failed.trace_id().to_string(), "the alert names the failing call's trace");
}

#[flext_monitor]
fn parse_debug_only(input: &str) -> Result<u8, DebugOnly> {
    input.parse::<u8>().map_err(|_| DebugOnly { code: 7 })
}

#[flext_monitor]
fn parse_opaque(input: &str) -> Result<u8, Opaque> {
    input.parse::<u8>().map_err(|_| Opaque)
}

#[test]
fn the_alert_message_falls_back_to_debug_then_to_the_type_name() {
    assert!(parse_debug_only("x").is_err());
    assert_eq!(alerts_of("parse_debug_only")[0].message(), "DebugOnly { code: 7 }");
    assert!(parse_opaque("x").is_err());
    assert_eq!(alerts_of("parse_opaque")[0].message(), std::any::type_name::<Opaque>());
}

#[flext_monitor]
fn sum_of(a: &str, b: &str) -> Result<u32, std::num::ParseIntError> {
    let a: u32 = a.parse()?;
    let b = b.parse::<u32>()?;
    Ok(a + b)
}

#[test]
fn an_error_leaving_through_the_question_mark_operator_is_recorded_with_its_message() {
    assert_eq!(sum_of("2", "3"), Ok(5));
    assert!(sum_of("2", "x").is_err());
    assert_eq!(calls("sum_of", "ok"), 1.0);
    assert_eq!(calls("sum_of", "error"), 1.0);
    assert_eq!(alerts_of("sum_of")[0].message(), "invalid digit found in string");
}

#[flext_monitor]
fn find_user(id: u32) -> Option<&'static str> {
    (id == 1).then_some("ada")
}

#[flext_monitor(none_is_error, severity = "low")]
fn find_required(id: u32) -> Option<&'static str> {
    let name = (id == 1).then_some("ada")?;
    Some(name)
}

#[test]
fn none_is_not_an_error_unless_the_attribute_says_so() {
    assert_eq!(find_user(1), Some("ada"));
    assert_eq!(find_user(2), None);
    assert_eq!(calls("find_user", "ok"), 2.0);
    assert_eq!(calls("find_user", "error"), 0.0);
    assert_eq!(find_required(2), None);
    assert_eq!(calls("find_required", "error"), 1.0);
    let alert = &alerts_of("find_required")[0];
    assert_eq!((alert.message(), alert.severity()), ("returned None", Severity::Low));
}

#[allow(clippy::trivially_copy_pass_by_ref)] // ok_if takes a `fn(&T) -> bool`
fn is_even(n: &u32) -> bool {
    n % 2 == 0
}

#[allow(clippy::trivially_copy_pass_by_ref)] // error_if takes a `fn(&T) -> bool`
fn is_negative(n: &i64) -> bool {
    *n < 0
}

#[flext_monitor(ok_if = is_even, alert = false)]
fn next_even(n: u32) -> u32 {
    n + 1
}

#[flext_monitor(error_if = is_negative)]
fn balance(n: i64) -> i64 {
    if n > 1000 {
        return -n;
    }
    n
}

#[test]
fn ok_if_and_error_if_classify_any_return_type() {
    assert_eq!(next_even(1), 2);
    assert_eq!(next_even(2), 3);
    assert_eq!((calls("next_even", "ok"), calls("next_even", "error")), (1.0, 1.0));
    assert!(alerts_of("next_even").is_empty(), "alert = false");
    assert_eq!(balance(5), 5);
    assert_eq!(balance(5000), -5000, "early return inspected too");
    assert_eq!(balance(-1), -1);
    assert_eq!((calls("balance", "ok"), calls("balance", "error")), (1.0, 2.0));
    let alert = &alerts_of("balance")[0];
    assert_eq!(alert.message(), "the result was classified as an error by `error_if`");
    assert_eq!(alert.count(), 2, "the second failure repeats the first alert");
}

#[flext_monitor(severity = "critical")]
fn explode(really: bool) -> u32 {
    assert!(!really, "boom");
    7
}

#[test]
fn a_panic_is_counted_alerted_and_keeps_unwinding() {
    let caught = std::panic::catch_unwind(|| explode(true));
    assert!(caught.is_err(), "the panic must keep unwinding");
    assert_eq!(explode(false), 7);
    assert_eq!(calls("explode", "error"), 1.0, "a panic is an error for the dashboards");
    assert_eq!(panics("explode"), 1.0, "and is counted apart");
    assert_eq!(calls("explode", "ok"), 1.0);
    assert_eq!(in_flight("explode"), 0.0, "in-flight goes back to zero after a panic");
    let alert = &alerts_of("explode")[0];
    assert_eq!((alert.title(), alert.message(), alert.severity()), ("explode panicked", "explode panicked: boom", Severity::Critical));
    assert_eq!(spans_of("explode").iter().filter(|s| s.status() == SpanStatus::Error).count(), 1);
    assert_eq!(flext_obs::context::current().span(), None, "the panicking call's span is no longer current");
}

#[flext_monitor]
fn outer_step(n: u32) -> u32 {
    inner_step(n) + inner_step(n + 1)
}

#[flext_monitor]
fn inner_step(n: u32) -> u32 {
    n * 10
}

#[test]
fn nested_calls_record_their_caller_and_their_parent_span() {
    let id = flext_obs::CorrelationId::new();
    let total = flext_obs::context::with_correlation_id(id, || outer_step(1));
    assert_eq!(total, 30);
    assert_eq!(sum("function_calls_total", &[("function", "inner_step"), ("caller_function", "outer_step"), ("result", "ok")]), 2.0);
    let module = module_path!();
    assert_eq!(sum("function_calls_total", &[("function", "inner_step"), ("caller_module", module)]), 2.0);
    assert_eq!(sum("function_calls_total", &[("function", "outer_step"), ("caller_function", "")]), 1.0);
    let outer = spans_of("outer_step").into_iter().find(|s| s.correlation_id() == Some(id)).unwrap();
    let inner: Vec<_> = spans_of("inner_step").into_iter().filter(|s| s.correlation_id() == Some(id)).collect();
    assert_eq!(inner.len(), 2);
    for span in &inner {
        assert_eq!(span.trace_id(), outer.trace_id());
        assert_eq!(span.parent_span_id(), Some(outer.span_id()));
        assert_eq!(span.attributes()["correlation_id"], id.to_string());
    }
    assert_eq!(outer.parent_span_id(), None);
    assert!(outer.duration().unwrap() >= inner[0].duration().unwrap());
}

#[flext_monitor]
fn generic_describe<T, const N: usize>(value: &T, _pad: [u8; N]) -> String
where
    T: fmt::Display + fmt::Debug + ?Sized,
{
    format!("{value}/{N}")
}

#[flext_monitor]
fn make_iter(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[flext_monitor]
fn checked_iter(n: u32) -> Result<impl Iterator<Item = u32>, Declined> {
    if n == 0 { Err(Declined(0)) } else { Ok(0..n) }
}

#[test]
fn generic_functions_and_impl_trait_returns() {
    assert_eq!(generic_describe("x", [0; 3]), "x/3");
    assert_eq!(generic_describe(&5, [0; 1]), "5/1");
    assert_eq!(make_iter(3).sum::<u32>(), 3);
    assert_eq!(checked_iter(2).unwrap().count(), 2);
    assert!(checked_iter(0).is_err());
    assert_eq!(calls("generic_describe", "ok"), 2.0);
    assert_eq!(calls("make_iter", "ok"), 1.0);
    assert_eq!((calls("checked_iter", "ok"), calls("checked_iter", "error")), (1.0, 1.0));
}

trait Shape {
    fn area(&self) -> f64;
    fn scale(&mut self, by: f64) -> Result<(), String>;
}

struct Circle {
    r: f64,
}

#[flext_monitor(service = "geometry")]
impl Shape for Circle {
    fn area(&self) -> f64 {
        std::f64::consts::PI * self.r * self.r
    }

    #[flext_monitor(severity = "medium")]
    fn scale(&mut self, by: f64) -> Result<(), String> {
        if by <= 0.0 {
            return Err(format!("cannot scale by {by}"));
        }
        self.r *= by;
        Ok(())
    }
}

struct Counter {
    hits: u64,
}

#[flext_monitor]
impl Counter {
    fn new() -> Self {
        Counter { hits: 0 }
    }

    fn hit(&mut self) -> u64 {
        self.hits += 1;
        self.hits
    }

    #[allow(clippy::boxed_local)] // the point is the `self: Box<Self>` receiver
    fn boxed(self: Box<Self>) -> u64 {
        self.hits
    }

    fn pinned(self: std::pin::Pin<&mut Self>) -> u64 {
        self.hits
    }

    #[flext_monitor(skip)]
    fn untouched(&self) -> u64 {
        self.hits
    }

    #[flext_monitor(name = "counter_reset", labels(team = "core"))]
    fn reset(&mut self) {
        self.hits = 0;
    }
}

#[test]
fn impl_blocks_monitor_every_method_with_overrides_and_skips() {
    let mut shape: Box<dyn Shape> = Box::new(Circle { r: 1.0 });
    assert!((shape.area() - std::f64::consts::PI).abs() < 1e-12);
    assert_eq!(shape.scale(-1.0), Err("cannot scale by -1".to_owned()));
    shape.scale(2.0).unwrap();
    assert_eq!(sum("function_calls_total", &[("function", "Circle::area"), ("service_name", "geometry")]), 1.0);
    assert_eq!((calls("Circle::scale", "ok"), calls("Circle::scale", "error")), (1.0, 1.0));
    assert_eq!(alerts_of("Circle::scale")[0].severity(), Severity::Medium);

    let mut counter = Counter::new();
    counter.hit();
    counter.hit();
    assert_eq!(counter.untouched(), 2);
    assert_eq!(std::pin::Pin::new(&mut counter).pinned(), 2);
    counter.reset();
    assert_eq!(Box::new(counter).boxed(), 0);
    let service = flext_obs::global().config().service_name().to_owned();
    assert_eq!(
        sum("function_calls_total", &[("function", "Counter::hit"), ("service_name", &service)]),
        2.0,
        "an impl block does not rename the service"
    );
    assert_eq!(calls("Counter::new", "ok"), 1.0);
    assert_eq!(calls("Counter::boxed", "ok"), 1.0);
    assert_eq!(calls("Counter::pinned", "ok"), 1.0);
    assert_eq!(calls("Counter::untouched", "ok"), 0.0, "skip leaves the method alone");
    assert_eq!(sum("function_calls_total", &[("function", "counter_reset"), ("team", "core")]), 1.0);
}

#[flext_monitor]
fn always_fails(i: u32) -> Result<(), Declined> {
    Err(Declined(i))
}

#[test]
fn alerts_of_a_failing_hot_loop_are_de_duplicated_into_one_with_a_count() {
    for i in 0..1_000 {
        let _ = always_fails(i);
    }
    let alerts = alerts_of("always_fails");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].count(), 1_000);
    assert_eq!(alerts[0].message(), "card declined (0)", "the first failure's message");
    assert_eq!(sum("flext_alerts_total", &[("function", "always_fails"), ("severity", "high")]), 1_000.0);
}

#[test]
fn the_guard_and_closure_forms_record_what_the_macro_records() {
    {
        let _call = flext_obs::monitor::call("manual_block").unwrap();
    }
    {
        let mut call = flext_obs::monitor::call("manual_block").unwrap();
        call.mark_error("disk full");
    }
    assert_eq!((calls("manual_block", "ok"), calls("manual_block", "error")), (1.0, 1.0));
    assert_eq!(alerts_of("manual_block")[0].message(), "disk full");
    let parsed: Result<u8, _> = flext_obs::monitor::run("manual_parse", || "300".parse::<u8>());
    assert!(parsed.is_err());
    assert_eq!(calls("manual_parse", "error"), 1.0);
    assert_eq!(alerts_of("manual_parse")[0].message(), "number too large to fit in target type");
    assert_eq!(timed("manual_parse"), 1.0);
    assert!(flext_obs::monitor::call("").is_err());
}
