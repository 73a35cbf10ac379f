//! The correlation context follows work across threads, `.await` points, executor threads and
//! processes (headers).

#![allow(clippy::float_cmp)] // exact totals are the point: no lost or invented increments

use flext_obs::context::{self, Context, FutureExt, SpanContext};
use flext_obs::{CorrelationId, Error, SpanId, TraceId};
use std::collections::HashMap;

#[test]
fn a_thread_starts_empty_and_a_new_id_is_generated_once() {
    std::thread::spawn(|| {
        assert_eq!(context::current(), Context::new());
        let id = context::correlation_id();
        assert_eq!(context::current().correlation_id(), Some(id));
        assert_eq!(context::correlation_id(), id);
    })
    .join()
    .unwrap();
}

#[test]
fn scopes_nest_and_restore() {
    let outer = CorrelationId::new();
    let inner = CorrelationId::new();
    std::thread::spawn(move || {
        context::with_correlation_id(outer, || {
            context::with_correlation_id(inner, || assert_eq!(context::current().correlation_id(), Some(inner)));
            assert_eq!(context::current().correlation_id(), Some(outer));
        });
        assert_eq!(context::current().correlation_id(), None);
        let result = std::panic::catch_unwind(|| context::with_correlation_id(outer, || panic!("boom")));
        assert!(result.is_err());
        assert_eq!(context::current().correlation_id(), None, "a panic still restores the context");
    })
    .join()
    .unwrap();
}

#[test]
fn wrapped_closures_carry_the_context_into_threads() {
    let id = CorrelationId::new();
    let span = SpanContext { trace_id: TraceId::random(), span_id: SpanId::random(), sampled: true };
    let cx = Context::new().with_correlation_id(id).with_span(span);
    let seen = cx.run(|| {
        let handles: Vec<_> = (0..4).map(|_| std::thread::spawn(context::current().wrap(context::current))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    assert!(seen.iter().all(|c| *c == cx));
    assert_eq!(context::current().correlation_id(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_context_survives_await_and_moves_between_executor_threads() {
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let id = CorrelationId::new();
        let task = context::with_correlation_id(id, || {
            async move {
                let mut threads = std::collections::HashSet::new();
                for _ in 0..50 {
                    assert_eq!(context::current().correlation_id(), Some(id), "lost across an await");
                    threads.insert(std::thread::current().id());
                    tokio::task::yield_now().await;
                }
                // spawning a child task hands the context on explicitly
                let child = tokio::spawn(async { context::current().correlation_id() }.with_current_context());
                assert_eq!(child.await.unwrap(), Some(id));
                threads.len()
            }
            .with_current_context()
        });
        tasks.push(tokio::spawn(task));
    }
    let mut moved = 0;
    for task in tasks {
        if task.await.unwrap() > 1 {
            moved += 1;
        }
    }
    assert!(moved > 0, "no task ever moved between worker threads; the test proves nothing");
    assert_eq!(context::current().correlation_id(), None, "a task's context must not leak into the executor thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_inside_a_task_persist_across_its_polls_only() {
    let task = async {
        let id = context::correlation_id(); // generated inside the task
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        (id, context::current().correlation_id())
    }
    .with_context(Context::new());
    let (made, later) = tokio::spawn(task).await.unwrap();
    assert_eq!(later, Some(made));
}

#[test]
fn inject_and_extract_round_trip_w3c_and_correlation_headers() {
    let span = SpanContext {
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap(),
        span_id: "00f067aa0ba902b7".parse().unwrap(),
        sampled: false,
    };
    let id = CorrelationId::new();
    let cx = Context::new().with_span(span).with_correlation_id(id);
    let mut headers: Vec<(String, String)> = Vec::new();
    cx.inject(&mut headers);
    assert_eq!(headers[0], ("traceparent".to_owned(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00".to_owned()));
    assert_eq!(headers[1], ("x-correlation-id".to_owned(), id.to_string()));
    assert_eq!(Context::extract(&headers).unwrap(), cx);
    let upper: HashMap<String, String> = headers.iter().map(|(k, v)| (k.to_uppercase(), v.clone())).collect();
    assert_eq!(Context::extract(&upper).unwrap(), cx, "header names are case-insensitive");
    assert_eq!(Context::extract(&Vec::<(String, String)>::new()).unwrap(), Context::new());
    let future_version = [("traceparent", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")];
    assert_eq!(Context::extract(&future_version[..]).unwrap().span().map(|s| s.sampled), Some(true));
}

#[test]
fn malformed_headers_are_rejected_whole() {
    let cases = [
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "expected version-traceid-spanid-flags"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", "version 00 has exactly 4 fields"),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "version ff is forbidden"),
        ("0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "version must be 2 lower-case hex digits"),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "trace id must be 32 lower-case hex digits, not all zero"),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "trace id must be 32 lower-case hex digits, not all zero"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "parent id must be 16 lower-case hex digits, not all zero"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", "flags must be 2 lower-case hex digits"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz", "flags must be 2 lower-case hex digits"),
    ];
    for (value, reason) in cases {
        let headers = [("traceparent", value)];
        let err = Context::extract(&headers[..]).unwrap_err();
        assert_eq!(err, Error::Header { header: "traceparent", value: value.to_owned(), reason }, "{value}");
    }
    let headers = [("x-correlation-id", "not-a-uuid")];
    assert_eq!(
        Context::extract(&headers[..]).unwrap_err().to_string(),
        r#"malformed x-correlation-id header "not-a-uuid": expected a UUID (8-4-4-4-12 hex digits)"#
    );
}
