//! A real Prometheus server scrapes the endpoint: the target is up with no error, the call
//! counts match, `histogram_quantile` works on the buckets, and exemplars carry trace IDs.

#![allow(clippy::float_cmp)] // counts read back exactly

use flext_obs::export::http::{router, serve_router};
use flext_obs::flext_monitor;
use flext_obs_tests::http::get;
use flext_obs_tests::servers::{encode, prometheus};
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[flext_monitor]
fn scraped_work(n: u32) -> Result<u32, String> {
    std::hint::black_box(n.pow(2));
    if n % 4 == 0 { Err(format!("{n} refused")) } else { Ok(n) }
}

fn query(prometheus: &flext_obs_tests::servers::Server, path: &str) -> serde_json::Value {
    let response = get(prometheus.addr, path, &[]).unwrap();
    assert_eq!(response.status, 200, "{path}: {}", response.body);
    serde_json::from_str(&response.body).unwrap()
}

/// Polls `check` until it returns `Some`, for at most 30 s (Prometheus' first scrape of a new
/// target comes 4-6 s after it is listed).
fn eventually<T>(what: &str, server: &flext_obs_tests::servers::Server, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} not seen within 30 s; Prometheus log:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn prometheus_scrapes_the_endpoint_and_reads_counts_quantiles_and_exemplars() {
    const CALLS: u32 = 37;
    for n in 1..=CALLS {
        let _ = scraped_work(n);
    }
    let endpoint =
        serve_router("127.0.0.1:0".parse().unwrap(), router(flext_obs::global().clone(), flext_obs::health::global().clone())).unwrap();
    let (prometheus, sd) = prometheus();
    let file = format!("flext-obs-test-{}.json", std::process::id());
    let instance = endpoint.local_addr().to_string();
    let targets = format!(r#"[{{"targets":["{}"],"labels":{{"env":"test"}}}}]"#, endpoint.local_addr());
    std::fs::write(sd.join(format!("{file}.tmp")), targets).unwrap();
    std::fs::rename(sd.join(format!("{file}.tmp")), sd.join(&file)).unwrap();

    let target = eventually("an up target", &prometheus, || {
        let json = query(&prometheus, "/api/v1/targets");
        json["data"]["activeTargets"].as_array()?.iter().find(|t| t["health"] == "up" && t["labels"]["instance"] == instance).cloned()
    });
    assert_eq!(target["lastError"], "", "the exposition parsed cleanly: {target}");

    let total = eventually("function_calls_total", &prometheus, || {
        let json = query(
            &prometheus,
            &format!(
                "/api/v1/query?query={}",
                encode(&format!("sum(function_calls_total{{function=\"scraped_work\",instance=\"{instance}\"}})"))
            ),
        );
        json["data"]["result"].as_array()?.first()?["value"][1].as_str()?.parse::<f64>().ok()
    });
    assert_eq!(total, f64::from(CALLS));
    let errors = query(
        &prometheus,
        &format!(
            "/api/v1/query?query={}",
            encode(&format!("sum(function_calls_total{{function=\"scraped_work\",instance=\"{instance}\",result=\"error\"}})"))
        ),
    );
    assert_eq!(errors["data"]["result"][0]["value"][1], "9");

    let quantile = query(
        &prometheus,
        &format!(
            "/api/v1/query?query={}",
            encode(&format!(
                "histogram_quantile(0.9, sum by (le) (function_calls_duration_seconds_bucket{{function=\"scraped_work\",instance=\"{instance}\"}}))"
            ))
        ),
    );
    let p90: f64 = quantile["data"]["result"][0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(p90 > 0.0 && p90 < 1.0, "p90 of a microsecond function: {p90}");

    let ours: HashSet<String> =
        flext_obs::trace::recent_spans().iter().filter(|s| s.name() == "scraped_work").map(|s| s.trace_id().to_string()).collect();
    let now = chrono::Utc::now().timestamp();
    let exemplars = eventually("an exemplar", &prometheus, || {
        let path = format!(
            "/api/v1/query_exemplars?query={}&start={}&end={}",
            encode(&format!("function_calls_duration_seconds_bucket{{function=\"scraped_work\",instance=\"{instance}\"}}")),
            now - 3600,
            now + 3600
        );
        let json = query(&prometheus, &path);
        let ids: Vec<String> = json["data"]
            .as_array()?
            .iter()
            .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["labels"]["trace_id"].as_str().map(str::to_owned))
            .collect();
        (!ids.is_empty()).then_some(ids)
    });
    assert!(exemplars.iter().all(|id| ours.contains(id)), "exemplar trace IDs {exemplars:?} are recent calls' traces");

    let build_info = query(&prometheus, &format!("/api/v1/query?query={}", encode(&format!("build_info{{instance=\"{instance}\"}}"))));
    let series = build_info["data"]["result"].as_array().expect("a vector");
    assert_eq!(series.len(), 1, "one build_info series per instance: {build_info}");
    assert_eq!(series[0]["value"][1], "1");
    // Unknown version and commit are empty, which Prometheus stores as absent (the spec allows both).
    assert_eq!(series[0]["metric"]["autometrics_version"], "1.0.0", "{build_info}");
    let metadata = query(&prometheus, "/api/v1/metadata?metric=function_calls_duration_seconds");
    assert_eq!(metadata["data"]["function_calls_duration_seconds"][0]["type"], "histogram");
    let _ = std::fs::remove_file(sd.join(&file));
}
