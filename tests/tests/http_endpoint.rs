//! The HTTP endpoint: routes, status codes, content negotiation, a slow client, load, shutdown.

use flext_obs::export::http::{router, serve_router};
use flext_obs::health::{CheckOptions, HealthRegistry};
use flext_obs::{Config, Observability, flext_monitor};
use flext_obs_tests::http::{get, request};
use flext_obs_tests::parse_samples;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn instance() -> Observability {
    Observability::new(Config::builder().service_name("http-test").build().unwrap()).unwrap()
}

#[flext_monitor]
fn served_work(n: u32) -> Result<u32, String> {
    if n % 5 == 0 { Err(format!("{n} is a multiple of 5")) } else { Ok(n) }
}

#[test]
fn every_route_answers_with_the_right_status_and_type() {
    for n in 0..10 {
        let _ = served_work(n);
    }
    let health = HealthRegistry::builder().build().unwrap();
    health.register("db", CheckOptions::new(), || true).unwrap();
    let server = serve_router("127.0.0.1:0".parse().unwrap(), router(flext_obs::global().clone(), health)).unwrap();
    let addr = server.local_addr();

    let text = get(addr, "/metrics", &[]).unwrap();
    assert_eq!(text.status, 200);
    assert_eq!(text.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let samples = parse_samples(&text.body);
    let ok = samples.iter().find(|s| {
        s.name == "function_calls_total"
            && s.labels.get("function").map(String::as_str) == Some("served_work")
            && s.labels["result"] == "ok"
    });
    assert_eq!(ok.map(|s| s.value.as_str()), Some("8"));

    let open = get(addr, "/metrics", &[("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")]).unwrap();
    assert_eq!(open.headers["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
    assert!(open.body.ends_with("# EOF\n"));
    assert!(open.body.contains("# {trace_id=\""), "exemplars in OpenMetrics");

    let health = get(addr, "/health", &[]).unwrap();
    assert_eq!(health.status, 200);
    let json: serde_json::Value = serde_json::from_str(&health.body).unwrap();
    assert_eq!(json["status"], "healthy");
    assert_eq!(json["components"][0]["component"], "db");

    assert_eq!(get(addr, "/ready", &[]).unwrap().status, 200);
    let snapshot: serde_json::Value = serde_json::from_str(&get(addr, "/snapshot", &[]).unwrap().body).unwrap();
    assert!(snapshot["series"].as_array().unwrap().iter().any(|s| s["name"] == "function_calls_total"));
    let alerts: serde_json::Value = serde_json::from_str(&get(addr, "/alerts", &[]).unwrap().body).unwrap();
    assert!(alerts.as_array().unwrap().iter().any(|a| a["source_function"] == "served_work"));
    let traces: serde_json::Value = serde_json::from_str(&get(addr, "/traces", &[]).unwrap().body).unwrap();
    assert!(traces.as_object().unwrap().values().any(|spans| spans[0]["name"] == "served_work"));

    flext_obs::log::info("served", &[]).unwrap();
    let logs: serde_json::Value = serde_json::from_str(&get(addr, "/logs", &[]).unwrap().body).unwrap();
    assert!(logs.as_array().unwrap().iter().any(|l| l["message"] == "served"));
    let snapshot: serde_json::Value = serde_json::from_str(&get(addr, "/snapshot", &[]).unwrap().body).unwrap();
    assert!(snapshot["logs"].as_array().unwrap().iter().any(|l| l["message"] == "served"), "recent logs are in /snapshot too");
    assert_eq!(get(addr, "/nope", &[]).unwrap().status, 404);
    assert_eq!(request(addr, "POST", "/metrics", &[], "x").unwrap().status, 405);
    assert_eq!(request(addr, "DELETE", "/health", &[], "").unwrap().status, 405);

    server.shutdown();
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(), "closed after shutdown");
}

#[test]
fn an_unhealthy_critical_component_is_served_as_503() {
    let health = HealthRegistry::builder().build().unwrap();
    health.register("database", CheckOptions::new().critical(), || Err::<(), _>("connection refused")).unwrap();
    let server = serve_router("127.0.0.1:0".parse().unwrap(), router(instance(), health)).unwrap();
    let response = get(server.local_addr(), "/health", &[]).unwrap();
    assert_eq!(response.status, 503);
    let json: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!((json["status"].as_str(), json["components"][0]["message"].as_str()), (Some("unhealthy"), Some("connection refused")));
}

#[test]
fn a_half_sent_request_does_not_block_other_scrapes() {
    let obs = instance();
    obs.store().counter("ticks_total", &[]).unwrap().increment();
    let server = serve_router("127.0.0.1:0".parse().unwrap(), router(obs, HealthRegistry::builder().build().unwrap())).unwrap();
    let addr = server.local_addr();
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    let mut garbage = std::net::TcpStream::connect(addr).unwrap();
    garbage.write_all(b"\x00\x01 not http at all\r\n\r\n").unwrap();
    for _ in 0..20 {
        let response = get(addr, "/metrics", &[]).unwrap();
        assert_eq!(response.status, 200);
        assert!(response.body.contains("ticks_total 1\n"));
    }
    drop(slow);
}

#[test]
fn scrapes_succeed_during_a_write_load() {
    let obs = instance();
    let server = serve_router("127.0.0.1:0".parse().unwrap(), router(obs.clone(), HealthRegistry::builder().build().unwrap())).unwrap();
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (obs, stop) = (obs.clone(), stop.clone());
            std::thread::spawn(move || {
                let counter = obs.store().counter("load_total", &[]).unwrap();
                let histogram = obs.store().histogram("load_seconds", &[]).unwrap();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    counter.increment();
                    #[allow(clippy::cast_precision_loss)]
                    histogram.record((i % 100) as f64 / 1000.0).unwrap();
                    if i % 1000 == 0 {
                        let _ = obs.store().gauge("load_labels", &[("writer", &format!("{w}-{}", i % 50))]).unwrap().set(1.0);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let value =
        |body: &str| parse_samples(body).into_iter().find(|s| s.name == "load_total").map_or(0.0, |s| s.value.parse::<f64>().unwrap());
    let mut last = 0.0;
    for _ in 0..1_000 {
        let response = get(addr, "/metrics", &[]).unwrap();
        assert_eq!(response.status, 200);
        let now = value(&response.body);
        assert!(now >= last, "a counter never goes back: {now} < {last}");
        last = now;
    }
    let concurrent: Vec<_> = (0..50).map(|_| std::thread::spawn(move || get(addr, "/metrics", &[]).map(|r| (r.status, r.body)))).collect();
    for scrape in concurrent {
        let (status, body) = scrape.join().unwrap().unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("# TYPE load_seconds histogram"));
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    assert!(last > 0.0);
}
