//! The correlation context follows work across threads, `.await` points, executor threads and
//! processes (headers).

#![allow(clippy::float_cmp)] // exact totals are the point: no lost or invented increments

use flext_obs::context::{self, Context, Extracted, FutureExt, SpanContext};
use flext_obs::{CorrelationId, Error, SpanId, TraceId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

#[test]
fn reading_the_correlation_id_never_changes_the_thread() {
    std::thread::spawn(|| {
        assert_eq!(context::current(), Context::new());
        let first = context::correlation_id();
        assert_eq!(context::current(), Context::new(), "a generated ID is not kept on the thread");
        assert_ne!(context::correlation_id(), first, "each call where none is set gets its own");
        let set = CorrelationId::new();
        context::with_correlation_id(set, || {
            assert_eq!(context::correlation_id(), set);
            assert_eq!(context::correlation_id(), set);
        });
        assert_eq!(context::current(), Context::new());
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
    // Whether tokio moves a task between workers depends on the load; rounds are repeated (at
    // most 20) until some task did, so the test proves its point without being flaky.
    let mut moved = 0;
    for _round in 0..20 {
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
        for task in tasks {
            if task.await.unwrap() > 1 {
                moved += 1;
            }
        }
        if moved > 0 {
            break;
        }
    }
    assert!(moved > 0, "no task ever moved between worker threads in 20 rounds; the test proves nothing");
    assert_eq!(context::current().correlation_id(), None, "a task's context must not leak into the executor thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_inside_a_task_persist_across_its_polls_only() {
    let id = CorrelationId::new();
    let task = async move {
        // An unscoped change: the guard is forgotten, so the task's context keeps the ID.
        std::mem::forget(Context::new().with_correlation_id(id).attach());
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        context::current().correlation_id()
    }
    .with_context(Context::new());
    assert_eq!(tokio::spawn(task).await.unwrap(), Some(id));
    let others: Vec<_> = (0..8).map(|_| tokio::spawn(async { context::current().correlation_id() })).collect();
    for other in others {
        assert_eq!(other.await.unwrap(), None, "the change leaked into the executor thread");
    }
}

#[test]
fn inject_and_extract_round_trip_w3c_and_correlation_headers() {
    let span = SpanContext {
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap(),
        span_id: "00f067aa0ba902b7".parse().unwrap(),
        sampled: false,
    };
    let id = CorrelationId::new();
    let cx = Context::new().with_remote_span(span).with_correlation_id(id);
    let mut headers: Vec<(String, String)> = Vec::new();
    cx.inject(&mut headers);
    assert_eq!(headers[0], ("traceparent".to_owned(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00".to_owned()));
    assert_eq!(headers[1], ("x-correlation-id".to_owned(), id.to_string()));
    assert_eq!(Context::extract_strict(&headers).unwrap(), cx);
    let upper: HashMap<String, String> = headers.iter().map(|(k, v)| (k.to_uppercase(), v.clone())).collect();
    assert_eq!(Context::extract_strict(&upper).unwrap(), cx, "header names are case-insensitive");
    assert_eq!(Context::extract(&Vec::<(String, String)>::new()), Extracted::default());
    let future_version = [("traceparent", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")];
    assert_eq!(Context::extract_strict(&future_version).unwrap().span().map(|s| s.sampled), Some(true));
    // a token that is not a UUID crosses as it is
    let token: CorrelationId = "Root=1-5759e988-bd862e3fe1be46a994272793".parse().unwrap();
    let mut headers: HashMap<String, String> = HashMap::new();
    Context::new().with_correlation_id(token).inject(&mut headers);
    assert_eq!(headers["x-correlation-id"], "Root=1-5759e988-bd862e3fe1be46a994272793");
    assert_eq!(Context::extract_strict(&headers).unwrap().correlation_id(), Some(token));
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn token(text: &str) -> CorrelationId {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn malformed_traceparents_are_rejected_whole_with_the_rule() {
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
        // A sign is not a hex digit (`u8::from_str_radix` took `+1`; `-1` splits into another field).
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-+1", "flags must be 2 lower-case hex digits"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A", "flags must be 2 lower-case hex digits"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7- 1", "flags must be 2 lower-case hex digits"),
    ];
    for (value, reason) in cases {
        let expected = Error::Header { header: "traceparent", value: value.to_owned(), reason };
        assert_eq!(Context::extract_strict(&[("traceparent", value)]).unwrap_err(), expected, "{value}");
        let extracted = Context::extract(&[("traceparent", value)]);
        assert_eq!(extracted, Extracted { context: Context::new(), rejected: vec![expected] }, "{value}");
    }
}

#[test]
fn correlation_headers_take_any_printable_token_and_reject_the_rest_precisely() {
    for (value, kept) in [
        ("req-42", "req-42"),
        ("0af7651916cd43dd8448eb211c80319c", "0af7651916cd43dd8448eb211c80319c"),
        ("Root=1-5759e988-bd862e3fe1be46a994272793", "Root=1-5759e988-bd862e3fe1be46a994272793"),
        ("  67e55044-10b1-426f-9247-bb680e5fe0c8\t", "67e55044-10b1-426f-9247-bb680e5fe0c8"),
    ] {
        let extracted = Context::extract(&[("x-correlation-id", value)]);
        assert_eq!(extracted.errors(), &[] as &[Error], "{value:?}");
        assert_eq!(extracted.context.correlation_id().map(|id| id.to_string()).as_deref(), Some(kept));
    }
    let longest = "x".repeat(flext_obs::MAX_CORRELATION_ID_LEN);
    assert_eq!(Context::extract_strict(&[("x-correlation-id", longest.as_str())]).unwrap().correlation_id(), Some(token(&longest)));
    let printable = "only printable ASCII (0x21..=0x7E) is allowed: no spaces inside, no control or non-ASCII characters";
    let too_long = format!("{longest}x");
    for (value, reason) in [
        ("has space", printable),
        ("a\u{1}b", printable),
        ("caf\u{e9}", printable),
        ("", "expected 1 to 64 printable ASCII characters, got none"),
        ("   ", "expected 1 to 64 printable ASCII characters, got none"),
        (too_long.as_str(), "longer than 64 characters"),
        ("00000000-0000-0000-0000-000000000000", "the nil UUID means no correlation ID"),
    ] {
        let expected = Error::Header { header: "x-correlation-id", value: value.to_owned(), reason };
        assert_eq!(Context::extract_strict(&[("x-correlation-id", value)]).unwrap_err(), expected, "{value:?}");
    }
    assert_eq!(
        Context::extract_strict(&[("x-correlation-id", "has space")]).unwrap_err().to_string(),
        format!(r#"malformed x-correlation-id header "has space": {printable}"#)
    );
}

#[test]
fn a_bad_header_drops_only_itself_and_says_why() {
    let span = Context::extract_strict(&[("traceparent", TRACEPARENT)]).unwrap().span().unwrap();
    let bad_id = Error::Header {
        header: "x-correlation-id",
        value: "has space".to_owned(),
        reason: "only printable ASCII (0x21..=0x7E) is allowed: no spaces inside, no control or non-ASCII characters",
    };
    let extracted = Context::extract(&[("traceparent", TRACEPARENT), ("x-correlation-id", "has space")]);
    assert_eq!(extracted.context, Context::new().with_remote_span(span), "the valid traceparent is kept");
    assert_eq!(extracted.rejected, vec![bad_id.clone()]);
    assert_eq!(Context::extract_strict(&[("traceparent", TRACEPARENT), ("x-correlation-id", "has space")]), Err(bad_id.clone()));

    let bad_parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7";
    let extracted = Context::extract(&[("traceparent", bad_parent), ("x-correlation-id", "req-42")]);
    assert_eq!(extracted.context, Context::new().with_correlation_id(token("req-42")), "the valid correlation ID is kept");
    assert_eq!(extracted.errors().len(), 1);
    assert!(matches!(&extracted.errors()[0], Error::Header { header: "traceparent", .. }));

    let both = Context::extract(&[("traceparent", bad_parent), ("x-correlation-id", "has space")]);
    assert_eq!(both.context, Context::new());
    assert_eq!(both.errors().len(), 2);
    assert_eq!(both.errors()[1], bad_id);
    assert!(matches!(both.into_result(), Err(Error::Header { header: "traceparent", .. })), "strict reports the first");
}

#[test]
fn extract_reads_every_usual_header_container_case_insensitively() {
    let expected = Context::new()
        .with_remote_span(Context::extract_strict(&[("traceparent", TRACEPARENT)]).unwrap().span().unwrap())
        .with_correlation_id(token("req-42"));
    let check = |name: &str, extracted: Extracted| {
        assert_eq!(extracted, Extracted { context: expected.clone(), rejected: Vec::new() }, "{name}");
    };
    check("array", Context::extract(&[("Traceparent", TRACEPARENT), ("X-Correlation-Id", "req-42")]));
    let pairs = [("TRACEPARENT", TRACEPARENT), ("x-correlation-id", "req-42")];
    check("array variable", Context::extract(&pairs));
    check("slice", Context::extract(&pairs[..]));
    check("Vec<(&str, &str)>", Context::extract(&pairs.to_vec()));
    let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    check("Vec<(String, String)>", Context::extract(&owned));
    check("HashMap<&str, &str>", Context::extract(&pairs.iter().copied().collect::<HashMap<&str, &str>>()));
    check("HashMap<String, String>", Context::extract(&owned.iter().cloned().collect::<HashMap<String, String>>()));
    check("BTreeMap<&str, &str>", Context::extract(&pairs.iter().copied().collect::<BTreeMap<&str, &str>>()));
    check("BTreeMap<String, String>", Context::extract(&owned.iter().cloned().collect::<BTreeMap<String, String>>()));
    let map: HashMap<&str, &str> = pairs.into();
    let by_ref = &map;
    check("a reference", Context::extract(&by_ref));
    let mut header_map = axum::http::HeaderMap::new();
    header_map.insert("traceparent", TRACEPARENT.parse().unwrap());
    header_map.insert("X-Correlation-ID", "req-42".parse().unwrap());
    check("http::HeaderMap", Context::extract(&header_map));
}

/// What each task saw: (task, correlation ID).
type Seen = Mutex<Vec<(usize, Option<CorrelationId>)>>;

#[flext_obs::flext_monitor]
fn unrelated_request(task: usize, seen: &Seen) -> Result<(), String> {
    let mut seen = seen.lock().unwrap();
    seen.push((task, context::current().correlation_id()));
    seen.push((task, flext_obs::create_log_entry("inside", flext_obs::LogLevel::Info).unwrap().correlation_id()));
    seen.push((task, flext_obs::create_alert("inside", "checking", flext_obs::Severity::Low).unwrap().correlation_id()));
    seen.push((task, flext_obs::create_trace("inside", "leak-test").unwrap().correlation_id()));
    seen.push((task, flext_obs::trace::start_trace("inside").unwrap().context().correlation_id()));
    drop(seen);
    flext_obs::log::info("inside", &[("task", task.into())]).unwrap();
    Err(format!("request {task} failed"))
}

#[test]
fn unrelated_tasks_on_shared_workers_never_share_a_correlation_id() {
    const TASKS: usize = 1_000;
    let captured = flext_obs::log::capture();
    flext_obs::alert::set_window(std::time::Duration::ZERO); // every failure its own alert
    let seen: Arc<Seen> = Arc::default();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let threads = runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let before = context::current().correlation_id();
                    let entry = flext_obs::create_log_entry("before", flext_obs::LogLevel::Info).unwrap().correlation_id();
                    flext_obs::log::info("before", &[("task", task.into())]).unwrap();
                    tokio::task::yield_now().await;
                    assert!(unrelated_request(task, &seen).is_err());
                    tokio::task::yield_now().await;
                    let after = context::current().correlation_id();
                    seen.lock().unwrap().extend([(task, before), (task, entry), (task, after)]);
                    std::thread::current().id()
                })
            })
            .collect();
        let all = async {
            let mut threads = HashSet::new();
            for task in tasks {
                threads.insert(task.await.unwrap());
            }
            threads
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), all).await.expect("the 1,000 tasks took over 60 s")
    });
    drop(runtime);
    assert!(threads.len() <= 2, "{TASKS} tasks ran on {} threads, so workers were reused", threads.len());

    let mut seen = Arc::try_unwrap(seen).unwrap().into_inner().unwrap();
    for line in captured.lines() {
        let line: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some(task) = line["task"].as_u64() {
            let id = line["labels"]["correlation_id"].as_str().map(|id| id.parse::<CorrelationId>().unwrap());
            seen.push((usize::try_from(task).unwrap(), id));
        }
    }
    assert_eq!(seen.len(), TASKS * 10, "every task reported what it saw and logged twice");
    // Failures within one clock tick may still count as repeats of one alert.
    let alerts: Vec<_> = flext_obs::alert::recent().into_iter().filter(|a| a.source_function() == Some("unrelated_request")).collect();
    assert!(alerts.len() > TASKS / 2, "the failed calls raised alerts: {}", alerts.len());
    for alert in alerts {
        let task = alert.message().strip_prefix("request ").and_then(|m| m.strip_suffix(" failed")).unwrap().parse().unwrap();
        seen.push((task, alert.correlation_id()));
    }
    let tasks_seen: HashSet<usize> = seen.iter().map(|(task, _)| *task).collect();
    assert_eq!(tasks_seen.len(), TASKS);
    let mut owner: HashMap<CorrelationId, usize> = HashMap::new();
    let mut ids = 0;
    for (task, id) in seen {
        let Some(id) = id else { continue };
        ids += 1;
        if let Some(other) = owner.insert(id, task) {
            panic!("correlation ID {id} seen by task {other} and again by task {task}");
        }
    }
    assert!(ids >= TASKS * 6, "the entities got IDs of their own: {ids}");
    assert_eq!(owner.len(), ids, "no ID was seen twice, not even within one task");
}

#[flext_obs::flext_monitor]
fn traced_step() -> u32 {
    7
}

#[test]
fn a_token_correlation_id_survives_the_span_ring_whole() {
    let longest: String = (0..flext_obs::MAX_CORRELATION_ID_LEN).map(|i| char::from(b'!' + u8::try_from(i % 94).unwrap())).collect();
    for text in ["r", "Root=1-5759e988-bd862e3fe1be46a994272793", longest.as_str()] {
        let id = token(text);
        std::thread::spawn(move || context::with_correlation_id(id, traced_step)).join().unwrap();
        let span = flext_obs::trace::recent_spans()
            .into_iter()
            .find(|s| s.name() == "traced_step" && s.correlation_id() == Some(id))
            .unwrap_or_else(|| panic!("no traced_step span carries {text}"));
        assert_eq!(span.attributes()["correlation_id"], text);
    }
}
