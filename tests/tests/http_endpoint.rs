//! The HTTP endpoint: routes (default and opt-in), the token, status codes, content negotiation,
//! a slow client, load, shutdown. The faults (slowloris, stalled readers, limits) are in
//! `http_faults.rs`.

use flext_obs::config::{BearerToken, HttpSettings, Routes};
use flext_obs::export::http::{router, router_with, serve_router, serve_with};
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
    let all = HttpSettings { routes: Routes::ALL, ..HttpSettings::default() };
    let server = serve_router("127.0.0.1:0".parse().unwrap(), router_with(flext_obs::global().clone(), health, &all)).unwrap();
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

#[test]
fn the_opt_in_routes_are_off_by_default() {
    let server = serve_router("127.0.0.1:0".parse().unwrap(), router(instance(), HealthRegistry::builder().build().unwrap())).unwrap();
    let addr = server.local_addr();
    for path in ["/metrics", "/health", "/ready"] {
        assert_eq!(get(addr, path, &[]).unwrap().status, 200, "{path}");
    }
    for path in ["/snapshot", "/alerts", "/traces", "/logs"] {
        assert_eq!(get(addr, path, &[]).unwrap().status, 404, "{path} is opt-in");
    }
    let some = HttpSettings { routes: Routes::parse("alerts,logs").unwrap(), ..HttpSettings::default() };
    let server =
        serve_router("127.0.0.1:0".parse().unwrap(), router_with(instance(), HealthRegistry::builder().build().unwrap(), &some)).unwrap();
    let addr = server.local_addr();
    let statuses: Vec<u16> = ["/snapshot", "/alerts", "/traces", "/logs"].iter().map(|p| get(addr, p, &[]).unwrap().status).collect();
    assert_eq!(statuses, [404, 200, 404, 200]);
}

#[test]
fn the_token_guards_the_opt_in_routes_and_with_all_routes_every_route() {
    let token = BearerToken::new("s3cr3t-t0ken").unwrap();
    let settings = HttpSettings { routes: Routes::ALL, token: Some(token.clone()), ..HttpSettings::default() };
    let obs = instance();
    let server = serve_with("127.0.0.1:0".parse().unwrap(), obs, HealthRegistry::builder().build().unwrap(), &settings).unwrap();
    let addr = server.local_addr();
    let good = [("Authorization", "Bearer s3cr3t-t0ken")];
    for path in ["/snapshot", "/alerts", "/traces", "/logs"] {
        let refused = get(addr, path, &[]).unwrap();
        assert_eq!(refused.status, 401, "{path} without a token");
        assert_eq!(refused.headers["www-authenticate"], r#"Bearer realm="flext-obs""#);
        let wrong = get(addr, path, &[("Authorization", "Bearer s3cr3t-t0keN")]).unwrap();
        assert_eq!(wrong.status, 401, "{path} with a wrong token");
        assert!(wrong.headers["www-authenticate"].contains(r#"error="invalid_token""#));
        assert_eq!(get(addr, path, &[("Authorization", "Basic czNjcjN0LXQwa2Vu")]).unwrap().status, 401, "{path}: another scheme");
        assert_eq!(get(addr, path, &good).unwrap().status, 200, "{path} with the token");
        assert_eq!(get(addr, path, &[("authorization", "bearer s3cr3t-t0ken")]).unwrap().status, 200, "{path}: scheme case");
    }
    for path in ["/metrics", "/health", "/ready"] {
        assert_eq!(get(addr, path, &[]).unwrap().status, 200, "{path} stays open by default");
    }
    server.shutdown();

    let strict = HttpSettings { token_all_routes: true, ..settings };
    let server = serve_with("127.0.0.1:0".parse().unwrap(), instance(), HealthRegistry::builder().build().unwrap(), &strict).unwrap();
    let addr = server.local_addr();
    for path in ["/metrics", "/health", "/ready", "/alerts"] {
        assert_eq!(get(addr, path, &[]).unwrap().status, 401, "{path}");
        assert_eq!(get(addr, path, &good).unwrap().status, 200, "{path}");
    }
    assert!(
        HttpSettings { token: None, ..strict }.validate().unwrap_err().to_string().contains("needs a token"),
        "all routes guarded without a token is refused"
    );
    assert!(!format!("{token:?}").contains("s3cr3t"), "Debug hides the token");
}

#[test]
fn the_endpoint_settings_come_from_the_environment_and_bad_values_are_refused() {
    let vars = [
        ("FLEXT_HTTP_ROUTES", "snapshot, traces"),
        ("FLEXT_HTTP_TOKEN", "abc.DEF-123"),
        ("FLEXT_HTTP_TOKEN_ALL_ROUTES", "yes"),
        ("FLEXT_HTTP_HEADER_TIMEOUT_MS", "1500"),
        ("FLEXT_HTTP_IDLE_TIMEOUT_MS", "2500"),
        ("FLEXT_HTTP_WRITE_TIMEOUT_MS", "3500"),
        ("FLEXT_HTTP_SHUTDOWN_TIMEOUT_MS", "750"),
        ("FLEXT_HTTP_MAX_CONNECTIONS", "64"),
        ("FLEXT_HTTP_WORKERS", "3"),
        ("FLEXT_HTTP_RENDER_THREADS", "4"),
    ];
    let lookup = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
    let config = Config::from_lookup(lookup).unwrap();
    let http = config.http();
    assert_eq!(http.routes, Routes { snapshot: true, traces: true, ..Routes::NONE });
    assert_eq!(http.token.as_ref().map(BearerToken::expose), Some("abc.DEF-123"));
    assert!(http.token_all_routes);
    assert_eq!(
        (http.header_read_timeout, http.idle_timeout, http.write_timeout, http.shutdown_timeout),
        (Duration::from_millis(1500), Duration::from_millis(2500), Duration::from_millis(3500), Duration::from_millis(750))
    );
    assert_eq!((http.max_connections, http.workers, http.render_threads), (64, 3, 4));
    assert!(!format!("{config:?}").contains("abc.DEF-123"), "the token is not in the config's Debug");

    for (var, value, expected) in [
        ("FLEXT_HTTP_ROUTES", "metrics", "a comma-separated list of snapshot, alerts, traces, logs; or all; or none"),
        ("FLEXT_HTTP_HEADER_TIMEOUT_MS", "0", "a whole number of milliseconds from 1 to 3600000 (1 hour)"),
        ("FLEXT_HTTP_WRITE_TIMEOUT_MS", "18446744073709551615", "a whole number of milliseconds from 1 to 3600000 (1 hour)"),
        ("FLEXT_HTTP_MAX_CONNECTIONS", "100000", "a whole number from 1 to 65536"),
        ("FLEXT_HTTP_WORKERS", "0", "a whole number from 1 to 64"),
        ("FLEXT_HTTP_TOKEN_ALL_ROUTES", "maybe", "a boolean: true/false, 1/0, yes/no, on/off"),
    ] {
        let err = Config::from_lookup(|name| (name == var).then(|| value.to_owned())).unwrap_err();
        assert_eq!(err.to_string(), format!("environment variable {var}={value:?} is invalid: expected {expected}"));
    }
    let err = Config::from_lookup(|name| (name == "FLEXT_HTTP_TOKEN").then(|| "pass word".to_owned())).unwrap_err();
    assert!(err.to_string().starts_with("environment variable FLEXT_HTTP_TOKEN=\"<redacted>\""), "{err}");
    assert!(!err.to_string().contains("pass word"), "the refused token is not repeated");
    let err = Config::from_lookup(|name| (name == "FLEXT_HTTP_TOKEN_ALL_ROUTES").then(|| "true".to_owned())).unwrap_err();
    assert!(err.to_string().contains("needs a token"), "{err}");
}

#[test]
fn the_ui_page_is_opt_in_its_data_is_guarded_and_unchanged_data_answers_304() {
    for n in 1..4 {
        let _ = served_work(n);
    }
    let health = HealthRegistry::builder().build().unwrap();
    let server =
        serve_router("127.0.0.1:0".parse().unwrap(), router_with(flext_obs::global().clone(), health.clone(), &HttpSettings::default()))
            .unwrap();
    for path in ["/ui", "/ui/data", "/ui/app.js"] {
        assert_eq!(get(server.local_addr(), path, &[]).unwrap().status, 404, "{path} is opt-in");
    }
    server.shutdown();

    let token = BearerToken::new("ui-t0ken").unwrap();
    let settings = HttpSettings { routes: Routes { ui: true, ..Routes::NONE }, token: Some(token), ..HttpSettings::default() };
    let server = serve_router("127.0.0.1:0".parse().unwrap(), router_with(flext_obs::global().clone(), health, &settings)).unwrap();
    let addr = server.local_addr();
    // The page and its assets hold no data: no token needed, and they may load this origin only.
    for (path, kind) in [("/ui", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")] {
        let asset = get(addr, path, &[]).unwrap();
        assert_eq!(asset.status, 200, "{path}");
        assert!(asset.headers["content-type"].starts_with(kind), "{path}: {:?}", asset.headers);
        assert!(asset.headers["content-security-policy"].contains("default-src 'none'"), "{path}");
        assert_eq!(asset.headers["x-content-type-options"], "nosniff");
    }
    assert!(get(addr, "/ui", &[]).unwrap().body.contains("/ui/app.js"));
    // The data shows error text: guarded like the other opt-in routes.
    assert_eq!(get(addr, "/ui/data", &[]).unwrap().status, 401);
    assert_eq!(get(addr, "/ui/health", &[]).unwrap().status, 401);
    let auth = [("Authorization", "Bearer ui-t0ken")];
    let report: serde_json::Value = serde_json::from_str(&get(addr, "/ui/health", &auth).unwrap().body).unwrap();
    assert!(report["status"].is_string() && report["components"].is_array(), "{report}");
    let data = get(addr, "/ui/data", &auth).unwrap();
    assert_eq!(data.status, 200);
    let json: serde_json::Value = serde_json::from_str(&data.body).unwrap();
    let row = json["functions"].as_array().unwrap().iter().find(|f| f["function"] == "served_work").expect("a row for served_work");
    assert!(row["calls"].as_u64().unwrap() >= 3, "{row}");
    // With nothing recorded in between, the same tag comes back and If-None-Match gets a 304
    // (other tests of this binary may record meanwhile: then the body and its tag change, and
    // the newest tag is asked for again).
    let mut tag = data.headers["etag"].clone();
    let mut unchanged = None;
    for _ in 0..100 {
        let again = get(addr, "/ui/data", &[auth[0], ("If-None-Match", &tag)]).unwrap();
        if again.status == 304 {
            unchanged = Some(again);
            break;
        }
        assert_eq!(again.status, 200);
        assert_ne!(again.headers["etag"], tag, "a 200 to a matching tag");
        tag = again.headers["etag"].clone();
        std::thread::sleep(Duration::from_millis(50));
    }
    let unchanged = unchanged.expect("a 304 once nothing changes");
    assert!(unchanged.body.is_empty());
    assert_eq!(unchanged.headers["etag"], tag);
    server.shutdown();
}
