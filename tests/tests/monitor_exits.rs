//! Every exit of a monitored function is classified by its value: exits written by macros, Result
//! aliases of any name, `ok_if`/`error_if` deciding first, panics only when they start during the
//! call, futures returned by plain functions, and what `fields`/`ret`/`err`/`trace::record` put
//! on the span. Each function here is used by one test, so counts are exact.

#![allow(clippy::float_cmp)] // exact counts are the point

use flext_obs::{SpanStatus, flext_monitor};
use flext_obs_tests::{alerts_of, calls, cancellations, panics, spans_of, timed};
use std::future::Future;
use std::time::Duration;

#[derive(Debug)]
struct MyErr(String);

impl std::fmt::Display for MyErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::num::ParseIntError> for MyErr {
    fn from(e: std::num::ParseIntError) -> Self {
        MyErr(format!("not a number: {e}"))
    }
}

/// A Result alias whose name does not end in `Result`.
type Fallible<T> = Result<T, MyErr>;

macro_rules! fail {
    ($($arg:tt)*) => {
        return Err(MyErr(format!($($arg)*)))
    };
}

#[flext_monitor]
fn user_macro_exit(x: u32) -> Fallible<u32> {
    if x == 0 {
        fail!("zero is not allowed ({x})");
    }
    Ok(x)
}

#[test]
fn a_return_written_by_a_macro_in_an_alias_returning_function_is_an_error_with_its_alert() {
    assert_eq!(user_macro_exit(2).unwrap(), 2);
    assert_eq!(user_macro_exit(0).unwrap_err().0, "zero is not allowed (0)");
    assert_eq!(calls("user_macro_exit", "ok"), 1.0);
    assert_eq!(calls("user_macro_exit", "error"), 1.0, "a macro-made exit of a `Fallible` is an error, not ok");
    let alerts = alerts_of("user_macro_exit");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].message(), "zero is not allowed (0)");
}

#[flext_monitor]
fn anyhow_exits(x: u32) -> anyhow::Result<u32> {
    anyhow::ensure!(x < 100, "{x} is too large");
    if x == 0 {
        anyhow::bail!("zero");
    }
    Ok(x)
}

#[test]
fn anyhow_bail_and_ensure_are_errors_with_their_messages() {
    assert!(anyhow_exits(5).is_ok());
    assert!(anyhow_exits(0).is_err());
    assert!(anyhow_exits(500).is_err());
    assert_eq!(calls("anyhow_exits", "ok"), 1.0);
    assert_eq!(calls("anyhow_exits", "error"), 2.0);
    let mut messages: Vec<String> = alerts_of("anyhow_exits").iter().map(|a| a.message().to_owned()).collect();
    messages.sort();
    // Alerts are de-duplicated per function and error type: the first message is kept, repeats counted.
    assert_eq!(messages.len(), 1);
    assert!(messages[0] == "zero" || messages[0] == "500 is too large", "{messages:?}");
    assert_eq!(flext_obs_tests::sum("flext_alerts_total", &[("function", "anyhow_exits")]), 2.0);
}

#[flext_monitor]
fn try_inside_format(text: &str) -> Fallible<String> {
    Ok(format!("<{}>", text.parse::<u32>()?))
}

#[flext_monitor]
fn try_inside_vec(a: &str, b: &str) -> Fallible<Vec<u32>> {
    Ok(vec![a.parse()?, b.parse()?])
}

#[test]
fn a_question_mark_inside_a_macro_call_is_an_error_with_the_converted_message() {
    assert_eq!(try_inside_format("7").unwrap(), "<7>");
    assert!(try_inside_format("x").is_err());
    assert_eq!((calls("try_inside_format", "ok"), calls("try_inside_format", "error")), (1.0, 1.0));
    assert_eq!(alerts_of("try_inside_format")[0].message(), "not a number: invalid digit found in string");
    assert!(try_inside_vec("1", "y").is_err());
    assert_eq!(calls("try_inside_vec", "error"), 1.0);
    assert_eq!(alerts_of("try_inside_vec").len(), 1);
}

struct Cache {
    entries: Vec<u32>,
}

impl Cache {
    #[flext_monitor]
    fn slot(&mut self, i: usize) -> Result<&mut u32, MyErr> {
        match self.entries.get_mut(i) {
            Some(slot) => Ok(slot),
            None => fail!("no slot {i}"),
        }
    }
}

#[test]
fn borrows_of_self_in_the_return_value_keep_working_and_are_classified() {
    let mut cache = Cache { entries: vec![1, 2] };
    *cache.slot(1).unwrap() = 20;
    assert_eq!(cache.entries, vec![1, 20]);
    assert!(cache.slot(9).is_err());
    assert_eq!((calls("slot", "ok"), calls("slot", "error")), (1.0, 1.0));
}

#[flext_monitor]
fn called_from_drop() -> u32 {
    7
}

struct CallsOnDrop;

impl Drop for CallsOnDrop {
    fn drop(&mut self) {
        assert_eq!(called_from_drop(), 7);
    }
}

#[flext_monitor]
fn panics_itself() -> u32 {
    panic!("own panic")
}

#[test]
fn a_call_returning_normally_while_an_unrelated_panic_unwinds_is_ok_and_raises_nothing() {
    let unwound = std::panic::catch_unwind(|| {
        let _guard = CallsOnDrop;
        panic!("unrelated");
    });
    assert!(unwound.is_err());
    assert_eq!(calls("called_from_drop", "ok"), 1.0);
    assert_eq!(panics("called_from_drop"), 0.0);
    assert_eq!(calls("called_from_drop", "error"), 0.0);
    assert!(alerts_of("called_from_drop").is_empty(), "no false alert");
    assert!(std::panic::catch_unwind(panics_itself).is_err());
    assert_eq!(panics("panics_itself"), 1.0, "a panic that starts in the call still counts");
    assert_eq!(calls("panics_itself", "error"), 1.0);
    assert_eq!(alerts_of("panics_itself")[0].message(), "panics_itself panicked: own panic");
}

#[flext_monitor]
async fn panics_in_a_task(x: u32) -> u32 {
    tokio::task::yield_now().await;
    assert!(x > 0, "no zero in a task");
    x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_caught_by_the_executor_is_a_panic_not_a_cancellation() {
    let joined = tokio::spawn(panics_in_a_task(0)).await;
    assert!(joined.unwrap_err().is_panic());
    assert_eq!(tokio::spawn(panics_in_a_task(1)).await.unwrap(), 1);
    assert_eq!(panics("panics_in_a_task"), 1.0, "tokio drops the future after catching the panic");
    assert_eq!(cancellations("panics_in_a_task"), 0.0, "not counted as a cancelled call");
    assert_eq!(calls("panics_in_a_task", "ok"), 1.0);
    assert_eq!(calls("panics_in_a_task", "error"), 1.0);
    assert_eq!(alerts_of("panics_in_a_task")[0].message(), "panics_in_a_task panicked: no zero in a task");
}

fn tolerated(result: &Result<u32, MyErr>) -> bool {
    !matches!(result, Err(e) if e.0 == "fatal")
}

#[flext_monitor(ok_if = tolerated)]
fn lookup_tolerant(key: &str) -> Result<u32, MyErr> {
    match key {
        "hit" => Ok(1),
        "miss" => Err(MyErr("not found".into())),
        _ => Err(MyErr("fatal".into())),
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // predicates borrow the return value
fn is_server_error(status: &u16) -> bool {
    *status >= 500
}

#[flext_monitor(error_if = is_server_error)]
fn status_of(code: u16) -> u16 {
    code
}

#[test]
fn ok_if_decides_first_a_tolerated_error_is_ok_everywhere() {
    assert!(lookup_tolerant("hit").is_ok());
    assert_eq!(lookup_tolerant("miss").unwrap_err().0, "not found", "returned untouched");
    assert!(lookup_tolerant("boom").is_err());
    assert_eq!(calls("lookup_tolerant", "ok"), 2.0, "the tolerated Err counts as ok");
    assert_eq!(calls("lookup_tolerant", "error"), 1.0);
    let alerts = alerts_of("lookup_tolerant");
    assert_eq!(alerts.len(), 1, "no alert for the tolerated error: {alerts:?}");
    assert_eq!(alerts[0].message(), "fatal", "the intolerable error keeps its own message");
    let spans = spans_of("lookup_tolerant");
    assert_eq!(spans.iter().filter(|s| s.status() == SpanStatus::Error).count(), 1, "span status follows the verdict");
    assert_eq!((status_of(200), status_of(503)), (200, 503));
    assert_eq!((calls("status_of", "ok"), calls("status_of", "error")), (1.0, 1.0));
    assert_eq!(alerts_of("status_of")[0].message(), "the result was classified as an error by `error_if`");
}

#[flext_monitor]
fn deferred(x: u32, wait: Duration) -> impl Future<Output = Fallible<u32>> {
    async move {
        tokio::time::sleep(wait).await;
        if x == 0 {
            fail!("deferred zero");
        }
        Ok(x)
    }
}

#[flext_monitor]
fn boxed_future(x: u32) -> std::pin::Pin<Box<dyn Future<Output = Fallible<u32>> + Send>> {
    Box::pin(async move { if x == 0 { Err(MyErr("boxed zero".into())) } else { Ok(x) } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_returned_by_a_plain_function_is_monitored_to_completion() {
    assert_eq!(deferred(3, Duration::from_millis(30)).await.unwrap(), 3);
    assert!(deferred(0, Duration::ZERO).await.is_err());
    assert_eq!((calls("deferred", "ok"), calls("deferred", "error")), (1.0, 1.0));
    assert_eq!(alerts_of("deferred")[0].message(), "deferred zero");
    let slow = spans_of("deferred").into_iter().find(|s| s.status() == SpanStatus::Completed).unwrap();
    assert!(slow.duration().unwrap() >= Duration::from_millis(30), "timed until the future completed: {:?}", slow.duration());
    assert!(tokio::spawn(boxed_future(0)).await.unwrap().is_err());
    assert_eq!(boxed_future(1).await.unwrap(), 1);
    assert_eq!((calls("boxed_future", "ok"), calls("boxed_future", "error")), (1.0, 1.0));
    assert_eq!(timed("boxed_future"), 2.0);
}

#[derive(Debug)]
struct Order {
    id: u32,
    lines: Vec<u32>,
}

#[flext_monitor(fields(order = order.id, lines = order.lines.len(), debug = ?order.lines, region = %region), ret, err)]
fn price(order: &Order, region: &str) -> Result<u32, MyErr> {
    flext_obs::trace::record("currency", "EUR").unwrap();
    if order.lines.is_empty() {
        fail!("order {} has no lines", order.id);
    }
    Ok(order.lines.iter().sum())
}

#[test]
fn fields_ret_err_and_trace_record_land_on_the_span() {
    assert_eq!(price(&Order { id: 7, lines: vec![2, 3] }, "eu").unwrap(), 5);
    assert!(price(&Order { id: 8, lines: vec![] }, "us").is_err());
    let spans = spans_of("price");
    let ok = spans.iter().find(|s| s.status() == SpanStatus::Completed).unwrap();
    let attributes = ok.attributes();
    assert_eq!(attributes["order"], "7");
    assert_eq!(attributes["lines"], "2");
    assert_eq!(attributes["debug"], "[2, 3]");
    assert_eq!(attributes["region"], "eu");
    assert_eq!(attributes["return"], "Ok(5)");
    assert_eq!(attributes["currency"], "EUR");
    assert!(!attributes.contains_key("error"));
    let failed = spans.iter().find(|s| s.status() == SpanStatus::Error).unwrap();
    assert_eq!(failed.attributes()["error"], "order 8 has no lines");
    assert_eq!(failed.attributes()["order"], "8");
    assert!(flext_obs::trace::record("outside", 1).is_err(), "no monitored call: an error, not a lost value");
}

#[flext_monitor]
fn plain() -> u32 {
    1
}

#[test]
fn snapshot_reads_by_a_subset_of_labels() {
    for _ in 0..3 {
        plain();
    }
    let snapshot = flext_obs::global().snapshot();
    assert_eq!(snapshot.sum("function_calls_total", &[("function", "plain")]), 3.0);
    assert_eq!(snapshot.sum("function_calls_total", &[("function", "plain"), ("result", "ok")]), 3.0);
    assert_eq!(snapshot.sum("function_calls_total", &[("function", "plain"), ("result", "error")]), 0.0);
    assert_eq!(snapshot.series("function_calls_total", &[("function", "plain"), ("result", "ok")]).count(), 1);
    assert_eq!(snapshot.series("function_calls_total", &[("function", "plain")]).count(), 2, "ok and error are resolved together");
    assert_eq!(snapshot.sum("function_calls_duration_seconds", &[("function", "plain")]), 3.0);
    let stats = flext_obs::monitor::function_stats(&snapshot);
    let plain = stats.iter().find(|s| s.function == "plain").unwrap();
    assert_eq!((plain.calls, plain.ok, plain.by_result["ok"]), (3, 3, 3));
}

#[flext_monitor]
fn never_called() -> u32 {
    0
}

#[test]
fn every_monitored_function_has_its_counters_at_zero_from_start_up() {
    let snapshot = flext_obs::global().snapshot();
    let series: Vec<_> = snapshot.series("function_calls_total", &[("function", "never_called")]).collect();
    assert_eq!(series.len(), 2, "ok and error, before any call: {series:?}");
    assert!(series.iter().all(|s| s.value.scalar() == Some(0.0)));
    assert_eq!(snapshot.sum("flext_function_panics_total", &[("function", "never_called")]), 0.0);
    assert!(snapshot.series("flext_function_panics_total", &[("function", "never_called")]).next().is_some());
    let _ = never_called;
}

#[flext_monitor]
fn unit_work(items: &mut Vec<u32>) {
    items.push(1);
    if items.len() > 1 {
        return;
    }
    items.push(2);
}

#[test]
fn a_sync_function_returning_unit_is_ok_never_cancelled() {
    let mut items = Vec::new();
    unit_work(&mut items);
    unit_work(&mut items);
    assert_eq!(calls("unit_work", "ok"), 2.0);
    assert_eq!(cancellations("unit_work"), 0.0, "a sync call always ends");
    assert!(spans_of("unit_work").iter().all(|s| s.status() == SpanStatus::Completed));
}

#[flext_monitor]
async fn waits_forever_in_a_join() -> u32 {
    std::future::pending::<()>().await;
    0
}

#[test]
fn a_pending_call_dropped_while_another_panic_unwinds_is_cancelled_not_panicked() {
    let unwound = std::panic::catch_unwind(|| {
        let mut pending = Box::pin(waits_forever_in_a_join());
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(pending.as_mut().poll(&mut cx).is_pending());
        // `pending` is dropped by this unwinding, which is not its panic.
        panic!("beside");
    });
    assert!(unwound.is_err());
    assert_eq!(panics("waits_forever_in_a_join"), 0.0, "the panic was someone else's");
    assert_eq!(cancellations("waits_forever_in_a_join"), 1.0);
    assert!(alerts_of("waits_forever_in_a_join").is_empty());
}

struct Client {
    base: u32,
}

impl Client {
    #[flext_monitor]
    fn fetch(&self, id: u32) -> impl Future<Output = Fallible<u32>> + use<> {
        let base = self.base;
        assert!(id != u32::MAX, "no such id");
        let wanted = id + base;
        async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if wanted == 0 {
                fail!("nothing at 0");
            }
            Ok(wanted)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_before_the_returned_future_are_part_of_the_call() {
    let client = Client { base: 10 };
    assert_eq!(client.fetch(1).await.unwrap(), 11);
    assert!(std::panic::catch_unwind(|| drop(client.fetch(u32::MAX))).is_err());
    assert_eq!(panics("fetch"), 1.0, "a panic before the future exists is the call's");
    assert_eq!(calls("fetch", "ok"), 1.0);
    assert_eq!(calls("fetch", "error"), 1.0);
}

struct Order2(u32);

impl std::fmt::Display for Order2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Formatting calls monitored code, which records a field of its own.
        write!(f, "order {}", labelled(self.0))
    }
}

#[flext_monitor(fields(n = n))]
fn labelled(n: u32) -> u32 {
    n
}

#[flext_monitor(fields(order = %order))]
fn ships(order: &Order2) -> u32 {
    order.0
}

#[test]
fn a_field_whose_display_calls_monitored_code_does_not_deadlock() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(ships(&Order2(4))).unwrap());
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).expect("no deadlock"), 4);
    let span = spans_of("ships").pop().unwrap();
    assert_eq!(span.attributes()["order"], "order 4");
}

#[flext_monitor]
fn many_attributes() -> u32 {
    for i in 0..40 {
        flext_obs::trace::record(&format!("key{i}"), i).unwrap();
    }
    flext_obs::trace::record("key0", "x".repeat(10_000)).unwrap();
    40
}

#[test]
fn span_attributes_are_bounded_and_what_is_refused_is_counted() {
    let before = flext_obs::trace::dropped_attributes();
    assert_eq!(many_attributes(), 40);
    let span = spans_of("many_attributes").pop().unwrap();
    let keys: Vec<&String> = span.attributes().keys().filter(|k| k.starts_with("key")).collect();
    assert_eq!(keys.len(), 32, "at most 32 attributes per span");
    assert_eq!(flext_obs::trace::dropped_attributes() - before, 8, "the 8 refused are counted");
    let long = &span.attributes()["key0"];
    assert!(
        long.len() <= 4096 && long.len() > 4000 && long.ends_with('…'),
        "a long value is cut to 4096 bytes and marked: {} bytes",
        long.len()
    );
}
