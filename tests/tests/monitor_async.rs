//! `#[flext_monitor]` on async functions, on a multi-threaded tokio runtime.

#![allow(clippy::float_cmp)] // exact counts are the point

use flext_obs::context::FutureExt;
use flext_obs::{SpanStatus, flext_monitor};
use flext_obs_tests::{calls, in_flight, spans_of, sum};
use std::time::Duration;

#[flext_monitor]
async fn fetch(id: u32) -> Result<u32, String> {
    tokio::task::yield_now().await;
    let doubled = double(id).await;
    if id == 0 { Err("no such id".to_owned()) } else { Ok(doubled) }
}

#[flext_monitor]
async fn double(n: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    n * 2
}

#[flext_monitor]
async fn slow() {
    tokio::time::sleep(Duration::from_secs(30)).await;
}

trait Repo {
    fn load(&self, id: u32) -> impl std::future::Future<Output = Option<u32>> + Send;
}

struct MemRepo;

#[flext_monitor]
impl Repo for MemRepo {
    async fn load(&self, id: u32) -> Option<u32> {
        tokio::task::yield_now().await;
        (id < 10).then_some(id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_calls_keep_their_span_and_caller_across_awaits_and_threads() {
    let id = flext_obs::CorrelationId::new();
    let tasks: Vec<_> = (0..20u32)
        .map(|i| tokio::spawn(flext_obs::context::with_correlation_id(id, || async move { fetch(i).await }.with_current_context())))
        .collect();
    let mut errors = 0;
    for task in tasks {
        if task.await.unwrap().is_err() {
            errors += 1;
        }
    }
    assert_eq!(errors, 1);
    assert_eq!((calls("fetch", "ok"), calls("fetch", "error")), (19.0, 1.0));
    assert_eq!(sum("function_calls_total", &[("function", "double"), ("caller_function", "fetch")]), 20.0);
    assert_eq!(in_flight("fetch"), 0.0);
    let fetches = spans_of("fetch");
    let doubles = spans_of("double");
    assert_eq!((fetches.len(), doubles.len()), (20, 20));
    for child in &doubles {
        let parent = fetches.iter().find(|f| Some(f.span_id()) == child.parent_span_id()).expect("every double has its fetch as parent");
        assert_eq!(parent.trace_id(), child.trace_id());
        assert_eq!(child.correlation_id(), Some(id));
        assert!(parent.duration().unwrap() >= child.duration().unwrap());
    }
    assert_eq!(flext_obs::context::current().span(), None, "nothing leaks into the test's thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_async_fn_in_a_trait_impl() {
    let repo = MemRepo;
    assert_eq!(repo.load(3).await, Some(3));
    assert_eq!(repo.load(30).await, None);
    assert_eq!(calls("MemRepo::load", "ok"), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_is_ok_for_the_spec_counted_apart_with_a_timeout_span() {
    let result = tokio::time::timeout(Duration::from_millis(20), slow()).await;
    assert!(result.is_err());
    assert_eq!(calls("slow", "ok"), 1.0, "the specification counts an unknown result as ok");
    assert_eq!(calls("slow", "error"), 0.0);
    assert_eq!(flext_obs_tests::cancellations("slow"), 1.0);
    assert_eq!(in_flight("slow"), 0.0);
    assert_eq!(spans_of("slow")[0].status(), SpanStatus::Timeout);
}

mod tracing_bridge {
    use flext_obs::flext_monitor;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    /// Records the name and `function` field of every span opened, and the current span's name
    /// at every event.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>> tracing_subscriber::Layer<S> for Recorder {
        fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, _: &tracing::span::Id, _: tracing_subscriber::layer::Context<'_, S>) {
            struct Function(Option<String>);
            impl tracing::field::Visit for Function {
                fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                    if field.name() == "function" {
                        self.0 = Some(format!("{value:?}"));
                    }
                }
                fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                    if field.name() == "function" {
                        self.0 = Some(value.to_owned());
                    }
                }
            }
            let mut function = Function(None);
            attrs.record(&mut function);
            self.0.lock().unwrap().push(format!("span {} {}", attrs.metadata().name(), function.0.unwrap_or_default()));
        }

        fn on_event(&self, _: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
            let current = ctx.lookup_current().map(|s| s.name().to_owned()).unwrap_or_default();
            self.0.lock().unwrap().push(format!("event in {current}"));
        }
    }

    #[flext_monitor]
    fn traced_sync() -> u8 {
        tracing::info!("inside sync");
        1
    }

    #[flext_monitor]
    async fn traced_async() -> u8 {
        tokio::task::yield_now().await;
        tracing::info!("inside async");
        2
    }

    #[tokio::test(flavor = "current_thread")]
    async fn monitored_calls_are_tracing_spans_named_after_the_function_when_a_subscriber_listens() {
        // Off by default: turned on here (and in the other test of this module, which may run
        // at once).
        flext_obs::monitor::set_tracing_spans(true);
        let recorder = Recorder::default();
        let subscriber = tracing_subscriber::registry().with(recorder.clone());
        let _default = tracing::subscriber::set_default(subscriber);
        assert_eq!(traced_sync(), 1);
        // The sync call's span was exited when it returned: an event after it is in no span.
        tracing::info!("after sync");
        assert_eq!(traced_async().await, 2);
        let seen = recorder.0.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                "span traced_sync traced_sync".to_owned(),
                "event in traced_sync".to_owned(),
                "event in ".to_owned(),
                "span traced_async traced_async".to_owned(),
                "event in traced_async".to_owned(),
            ]
        );
    }

    /// The fields every span opened carries in its first value set, as `name=value`.
    #[derive(Clone, Default)]
    struct OpenedWith(Arc<Mutex<Vec<Vec<String>>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for OpenedWith {
        fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, _: &tracing::span::Id, _: tracing_subscriber::layer::Context<'_, S>) {
            struct Fields(Vec<String>);
            impl tracing::field::Visit for Fields {
                fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                    self.0.push(format!("{}={value:?}", field.name()));
                }
                fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                    self.0.push(format!("{}={value}", field.name()));
                }
            }
            let mut fields = Fields(Vec::new());
            attrs.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
    }

    #[test]
    fn the_bridge_span_opens_with_the_trace_and_correlation_ids() {
        flext_obs::monitor::set_tracing_spans(true);
        let opened = OpenedWith::default();
        let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(opened.clone()));
        let correlation = flext_obs::CorrelationId::new();
        assert_eq!(flext_obs::context::with_correlation_id(correlation, traced_sync), 1);
        // This call's span, by its correlation ID: the other test of this module may run at once
        // and call `traced_sync` too, so the most recent such span may be that test's.
        let span = flext_obs::trace::recent_spans()
            .into_iter()
            .rev()
            .find(|s| s.name() == "traced_sync" && s.correlation_id() == Some(correlation))
            .expect("the call's span");
        let seen = opened.0.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![vec![
                "function=traced_sync".to_owned(),
                format!("module={}", module_path!()),
                format!("trace_id={}", span.trace_id()),
                format!("correlation_id={correlation}"),
            ]]
        );
    }
}
