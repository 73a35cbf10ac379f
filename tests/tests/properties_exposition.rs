//! Property tests (proptest) over the store and its exposition: random metric names, labels and
//! values (many of them invalid or colliding on purpose) go through `record_metric`; a refused
//! record changes nothing, and whatever was accepted renders a text exposition that
//! `promtool check metrics` parses and an OpenMetrics exposition that a real Prometheus scrapes
//! with the target up.

use flext_obs::export::http::{router, serve_router};
use flext_obs::export::prometheus::{Format, render, render_export};
use flext_obs::{Config, Metric, MetricKind, Observability};
use flext_obs_tests::http::get;
use flext_obs_tests::servers::{encode, prometheus};
use flext_obs_tests::{parse_samples, promtool_check};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// One record: kind index, name, labels, value.
type Record = (usize, String, Vec<(String, String)>, f64);

fn metric_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z_:][a-zA-Z0-9_:]{0,16}",
        // Short names with the suffixes the exposition adds, so families collide often.
        4 => ("[ab]{1,2}", prop::sample::select(vec!["", "_total", "_count", "_sum", "_bucket", "_created", "_info", "_seconds"]))
            .prop_map(|(base, suffix)| format!("{base}{suffix}")),
        1 => prop::sample::select(vec!["flext_obs_series", "flext_obs_dropped_series_total", "build_info", "_total", "function_calls_total", "le"])
            .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
        1 => prop::sample::select(vec!["le", "quantile", "flext_overflow", "__name__", "metric", "service_name"]).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[\"\\\\\n{},=# a-z]{0,8}", Just(String::new()), Just("+Inf".to_owned())]
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        -1e3..1e9f64,
        prop::sample::select(vec![
            0.0,
            -0.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e15,
            9.007_199_254_740_993e15
        ]),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    (0..4usize, metric_name(), proptest::collection::vec((label_name(), label_value()), 0..4), value())
}

const KINDS: [MetricKind; 4] = [MetricKind::Counter, MetricKind::Gauge, MetricKind::Histogram, MetricKind::Summary];

/// Applies `records` (names prefixed with `prefix`) to `obs`; checks that a refused one changed
/// nothing. Returns how many were accepted.
fn apply(obs: &Observability, prefix: &str, records: &[Record]) -> Result<usize, TestCaseError> {
    let mut accepted = 0;
    for (kind, name, labels, value) in records {
        let Ok(metric) = Metric::builder(format!("{prefix}{name}"), *value).kind(KINDS[*kind]).labels(labels.clone()).build() else {
            continue;
        };
        let before = format!("{:?}", obs.snapshot().series);
        match obs.record_metric(&metric) {
            Ok(()) => accepted += 1,
            Err(err) => {
                prop_assert_eq!(&format!("{:?}", obs.snapshot().series), &before, "refused ({}) but changed the store", err);
                prop_assert!(obs.raw_records(metric.name()).iter().all(|kept| kept != &metric), "a refused record was kept");
            }
        }
    }
    Ok(accepted)
}

fn store() -> Observability {
    // A small cardinality limit, so overflow series show up too.
    Observability::new(Config::builder().service_name("props").max_series_per_metric(3).build().unwrap()).unwrap()
}

/// The family names of an exposition's `# TYPE` lines, each of which must appear once.
fn assert_families_unique(text: &str) -> Result<(), TestCaseError> {
    let mut seen = HashSet::new();
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let family = line.split(' ').nth(2).unwrap_or("");
        prop_assert!(seen.insert(family.to_owned()), "family {} twice:\n{}", family, text);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_records_render_an_exposition_promtool_accepts(records in proptest::collection::vec(record(), 1..24)) {
        let obs = store();
        apply(&obs, "", &records)?;
        let text = render_export(&obs.store().export_snapshot(), &[], Format::Text);
        prop_assert_eq!(&render(&obs.snapshot(), Format::Text), &text, "both render paths agree");
        let (code, problems) = promtool_check(&text);
        // 0: clean; 3: lint remarks only (a gauge named `a_count`, a counter without help...),
        // which Prometheus scrapes all the same. A parse error is exit code 1.
        prop_assert!(code == 0 || (code == 3 && !problems.contains("error")), "promtool {}: {}\n{}", code, problems, text);
        let samples = parse_samples(&text);
        let mut series = HashSet::new();
        for sample in &samples {
            prop_assert!(series.insert((sample.name.clone(), sample.labels.clone())), "duplicate series {:?}", sample);
        }
        assert_families_unique(&text)?;
        let open = render_export(&obs.store().export_snapshot(), &[], Format::OpenMetrics);
        prop_assert!(open.ends_with("# EOF\n") && open.matches("# EOF").count() == 1);
        assert_families_unique(&open)?;
        // OpenMetrics: no negative sample in a counter, histogram or summary family (their
        // parsers refuse the whole exposition); gauges may be negative.
        let types: std::collections::HashMap<&str, &str> =
            open.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split_once(' ')).collect();
        for sample in parse_samples(&open.replace("# EOF\n", "")) {
            let family = ["", "_total", "_sum", "_count", "_bucket"]
                .iter()
                .find_map(|suffix| sample.name.strip_suffix(suffix).and_then(|f| types.get(f)));
            prop_assert!(family.is_some(), "sample {} outside every family", sample.name);
            if family.is_some_and(|kind| *kind != "gauge") {
                prop_assert!(!sample.value.starts_with('-'), "negative counter-like sample {:?}", sample);
            }
        }
    }
}

/// One store filled from 32 generated record lists (fixed seed), each under a name prefix of its
/// own, plus hand-made extremes; served on 127.0.0.1 and scraped by the real Prometheus, which
/// asks for OpenMetrics first.
#[test]
fn a_real_prometheus_scrapes_an_adversarial_exposition_with_the_target_up() {
    let obs = store();
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(record(), 1..24);
    let mut accepted = 0;
    for case in 0..32 {
        let records = strategy.new_tree(&mut runner).unwrap().current();
        accepted += apply(&obs, &format!("c{case}_"), &records).unwrap();
    }
    assert!(accepted > 50, "the generated cases recorded something ({accepted})");
    let store = obs.store();
    let tricky = "quote \" backslash \\ newline \n unicode 日本 🚀 {braces}, = #";
    store.gauge("adv_gauge", &[("text", tricky), ("empty", "")]).unwrap().set(-1.5e-300).unwrap();
    store.gauge("adv_long", &[("v", &"x".repeat(4096))]).unwrap().set(f64::MAX).unwrap();
    store.counter("adv_plain", &[]).unwrap().add(0.1).unwrap();
    store.set_buckets("adv_one_bucket", &[0.5]).unwrap();
    store.histogram("adv_one_bucket", &[("le_not", "x")]).unwrap().record(7.0).unwrap();
    store.summary("adv:summary", &[]).unwrap().record(0.0).unwrap();
    store.set_info("adv_info", &[("text", tricky)], "Help with \\ and \n and \"quotes\".").unwrap();
    store.describe("adv_plain", MetricKind::Counter, "Help \\ \n \" text.").unwrap();

    let endpoint = serve_router("127.0.0.1:0".parse().unwrap(), router(obs.clone(), flext_obs::health::global().clone())).unwrap();
    let instance = endpoint.local_addr().to_string();
    let open = render_export(&store.export_snapshot(), &[], Format::OpenMetrics);
    let samples = open.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count();
    let (prometheus, sd) = prometheus();
    let file = format!("flext-obs-props-{}.json", std::process::id());
    std::fs::write(sd.join(format!("{file}.tmp")), format!(r#"[{{"targets":["{instance}"]}}]"#)).unwrap();
    std::fs::rename(sd.join(format!("{file}.tmp")), sd.join(&file)).unwrap();

    let query = |path: &str| -> serde_json::Value {
        let response = get(prometheus.addr, path, &[]).unwrap();
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        serde_json::from_str(&response.body).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let target = loop {
        let json = query("/api/v1/targets");
        let found = json["data"]["activeTargets"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["labels"]["instance"] == instance.as_str()).cloned());
        if let Some(t) = found.filter(|t| t["health"] != "unknown") {
            break t;
        }
        assert!(Instant::now() < deadline, "no scrape within 60 s; Prometheus log:\n{}", prometheus.log());
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!((&target["health"], &target["lastError"]), (&serde_json::json!("up"), &serde_json::json!("")), "{target}");
    let scraped = loop {
        let json = query(&format!("/api/v1/query?query={}", encode(&format!("scrape_samples_scraped{{instance=\"{instance}\"}}"))));
        if let Some(v) = json["data"]["result"][0]["value"][1].as_str() {
            break v.parse::<usize>().unwrap();
        }
        assert!(Instant::now() < deadline, "scrape_samples_scraped not seen");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(scraped, samples, "Prometheus took every sample line");
    let json = query(&format!("/api/v1/query?query={}", encode(&format!("adv_gauge{{instance=\"{instance}\"}}"))));
    assert_eq!(json["data"]["result"][0]["metric"]["text"], tricky, "escaping round-trips: {json}");
    let _ = std::fs::remove_file(sd.join(&file));
}
