//! Prometheus text and OpenMetrics exposition: promtool finds nothing to report, and a strict
//! reader finds every family whole, every histogram complete and every label value intact.

#![allow(clippy::float_cmp)]

use flext_obs::export::prometheus::{Format, render, render_export, render_with_exemplars};
use flext_obs::{Config, Observability, flext_monitor};
use flext_obs_tests::{parse_samples, promtool_check};
use std::collections::{BTreeMap, HashSet};

fn fresh() -> Observability {
    Observability::new(Config::builder().service_name("exposition").build().unwrap()).unwrap()
}

#[test]
fn a_small_store_renders_exactly_in_both_formats() {
    let obs = Observability::new(Config::builder().service_name("exposition").build_info("2.0.0", "abc123").build().unwrap()).unwrap();
    let store = obs.store();
    store.describe("requests_total", flext_obs::MetricKind::Counter, "Requests \\ handled.\nBy route.").unwrap();
    store.counter("requests_total", &[("route", "/a")]).unwrap().increment_by(3);
    store.gauge("queue_depth", &[]).unwrap().set(-1.5).unwrap();
    store.set_buckets("latency_seconds", &[0.1, 1.0]).unwrap();
    let h = store.histogram("latency_seconds", &[]).unwrap();
    h.record(0.05).unwrap();
    h.record(0.5).unwrap();
    let snapshot = obs.snapshot();
    let text = render(&snapshot, Format::Text);
    // flext-obs shares the workspace version with this crate.
    let build_info = format!(
        "build_info{{autometrics_version=\"1.0.0\",branch=\"\",commit=\"abc123\",flext_obs_version=\"{}\",repository_provider=\"\",repository_url=\"\",service_name=\"exposition\",version=\"2.0.0\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    let expected_text = String::from("# HELP build_info Version and commit of the running service (always 1).\n# TYPE build_info gauge\n")
        + &build_info
        + r#"# HELP flext_obs_dropped_series_total Label sets refused by the cardinality limit.
# TYPE flext_obs_dropped_series_total counter
flext_obs_dropped_series_total{metric="latency_seconds"} 0
flext_obs_dropped_series_total{metric="queue_depth"} 0
flext_obs_dropped_series_total{metric="requests_total"} 0
# HELP flext_obs_series Live series per metric.
# TYPE flext_obs_series gauge
flext_obs_series{metric="latency_seconds"} 1
flext_obs_series{metric="queue_depth"} 1
flext_obs_series{metric="requests_total"} 1
# HELP latency_seconds The latency seconds histogram.
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 1
latency_seconds_bucket{le="1"} 2
latency_seconds_bucket{le="+Inf"} 2
latency_seconds_sum 0.55
latency_seconds_count 2
# HELP queue_depth The queue depth gauge.
# TYPE queue_depth gauge
queue_depth -1.5
# HELP requests_total Requests \\ handled.\nBy route.
# TYPE requests_total counter
requests_total{route="/a"} 3
"#;
    assert_eq!(text, expected_text);
    let open = render(&snapshot, Format::OpenMetrics);
    assert!(open.ends_with("# EOF\n"));
    assert!(!open.contains("# TYPE requests counter\n# UNIT"), "a counter without a unit suffix has no UNIT line");
    assert!(
        open.contains("# HELP requests Requests \\\\ handled.\\nBy route.\n# TYPE requests counter\nrequests_total{route=\"/a\"} 3\n"),
        "{open}"
    );
    assert!(open.contains("# TYPE latency_seconds histogram\n# UNIT latency_seconds seconds\n"), "{open}");
    assert_eq!(promtool_check(&text), (0, String::new()));
}

/// A tiny deterministic generator, so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.next() % items.len() as u64).unwrap()]
    }
    /// A valid name made of 4-to-8-letter words: promtool's naming lints (abbreviated units
    /// such as `_ms` or `_m`) judge the user's choice of words, not the exposition, so the
    /// generator does not pick them.
    fn name(&mut self, first: &[char], rest: &[char]) -> String {
        let mut name: String = std::iter::once(*self.pick(first)).collect();
        for word in 0..=self.next() % 2 {
            if word > 0 {
                name.push('_');
            }
            for _ in 0..4 + self.next() % 5 {
                name.push(*self.pick(rest));
            }
        }
        name
    }
    fn value(&mut self) -> String {
        const PIECES: &[&str] = &["a", "Z", "0", " ", "\"", "\\", "\n", "ü", "日本", "🚀", "=", ",", "{", "}", "#", "\t", "é"];
        (0..self.next() % 10).map(|_| *self.pick(PIECES)).collect()
    }
}

#[test]
fn random_names_labels_and_values_always_render_to_a_valid_exposition() {
    let first: Vec<char> = ('a'..='z').chain(['_']).collect();
    let rest: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    for seed in 1..=60u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let obs = fresh();
        let store = obs.store();
        let mut expected: BTreeMap<(String, BTreeMap<String, String>), f64> = BTreeMap::new();
        for i in 0..20 {
            let name = format!("{}_{i}", rng.name(&first, &rest));
            let labels: Vec<(String, String)> =
                (0..rng.next() % 4).map(|j| (format!("{}{j}", rng.name(&first, &rest)), rng.value())).collect();
            let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            #[allow(clippy::cast_precision_loss)]
            let value = (rng.next() % 1_000_000) as f64 / 7.0;
            let label_map: BTreeMap<String, String> = labels.iter().cloned().collect();
            match rng.next() % 4 {
                0 => {
                    let c = store.counter(&format!("{name}_total"), &pairs).unwrap();
                    c.add(value).unwrap();
                    expected.insert((format!("{name}_total"), label_map), c.value());
                }
                1 => {
                    store.gauge(&name, &pairs).unwrap().set(-value).unwrap();
                    expected.insert((name, label_map), -value);
                }
                2 => {
                    let h = store.histogram(&name, &pairs).unwrap();
                    h.record(value / 1e6).unwrap();
                    h.record(value).unwrap();
                }
                _ => store.summary(&name, &pairs).unwrap().record(value).unwrap(),
            }
        }
        let snapshot = obs.snapshot();
        let text = render(&snapshot, Format::Text);
        assert_eq!(render_export(&store.export_snapshot(), &[], Format::Text), text, "seed {seed}: the scrape path renders the same text");
        let (code, problems) = promtool_check(&text);
        assert_eq!((code, problems.as_str()), (0, ""), "seed {seed}:\n{text}");
        let samples = parse_samples(&text);
        let mut seen = HashSet::new();
        for sample in &samples {
            assert!(seen.insert((sample.name.clone(), sample.labels.clone())), "seed {seed}: duplicate series {sample:?}");
            if let Some(want) = expected.get(&(sample.name.clone(), sample.labels.clone())) {
                assert_eq!(sample.value.parse::<f64>().unwrap(), *want, "seed {seed}: {sample:?}");
            }
        }
        for (name, labels) in expected.keys() {
            assert!(samples.iter().any(|s| s.name == *name && s.labels == *labels), "seed {seed}: {name} {labels:?} missing or mangled");
        }
        for sample in samples.iter().filter(|s| s.name.ends_with("_count")) {
            let base = sample.name.trim_end_matches("_count");
            let mut inf = sample.labels.clone();
            inf.insert("le".into(), "+Inf".into());
            if let Some(bucket) = samples.iter().find(|s| s.name == format!("{base}_bucket") && s.labels == inf) {
                assert_eq!(bucket.value, sample.value, "seed {seed}: +Inf bucket must equal the count");
            }
        }
        assert!(samples.iter().filter(|s| s.name.ends_with("_total")).all(|s| s.value.parse::<f64>().unwrap() >= 0.0));
        let open = render(&snapshot, Format::OpenMetrics);
        assert!(open.ends_with("# EOF\n") && open.matches("# EOF").count() == 1);
    }
}

#[flext_monitor]
fn traced_work(n: u64) -> Result<u64, String> {
    if n == 0 { Err("zero".into()) } else { Ok(n) }
}

#[test]
fn monitored_functions_get_exemplars_with_recent_trace_ids_in_openmetrics_only() {
    for n in 0..5 {
        let _ = traced_work(n);
    }
    let snapshot = flext_obs::global().snapshot();
    let spans = flext_obs::trace::recent_spans();
    let open = render_with_exemplars(&snapshot, &spans, Format::OpenMetrics);
    let samples = parse_samples(open.trim_end_matches("# EOF\n"));
    let trace_ids: HashSet<String> = spans.iter().filter(|s| s.name() == "traced_work").map(|s| s.trace_id().to_string()).collect();
    let with_exemplar: Vec<_> =
        samples.iter().filter(|s| s.labels.get("function").is_some_and(|f| f == "traced_work") && s.exemplar.is_some()).collect();
    assert!(with_exemplar.iter().any(|s| s.name == "function_calls_duration_seconds_bucket"), "{open}");
    let ok = with_exemplar.iter().find(|s| s.name == "function_calls_total" && s.labels["result"] == "ok").expect("ok counter exemplar");
    let error =
        with_exemplar.iter().find(|s| s.name == "function_calls_total" && s.labels["result"] == "error").expect("error counter exemplar");
    for sample in [ok, error] {
        let exemplar = sample.exemplar.as_deref().unwrap();
        let id = exemplar.strip_prefix("{trace_id=\"").and_then(|r| r.get(..32)).unwrap();
        assert!(trace_ids.contains(id), "{exemplar}");
    }
    let text = render_with_exemplars(&snapshot, &spans, Format::Text);
    assert!(!text.contains("trace_id"), "no exemplars in the text format");
    assert_eq!(promtool_check(&text).0, 0);
}

#[test]
fn a_user_series_cannot_take_a_self_metric_s_name() {
    let obs = fresh();
    let store = obs.store();
    // Its `metric` label would repeat the store's own rows (`flext_obs_series{metric="x"}` for every
    // family x), so the store's self-metric names are reserved rather than merged.
    let err = store.gauge("flext_obs_series", &[("metric", "aaa")]).unwrap_err();
    assert!(err.to_string().contains("a name of the flext-obs self-metric \"flext_obs_series\""), "{err}");
    assert!(store.counter("flext_obs_dropped_series_total", &[("metric", "zzz")]).is_err());
    store.gauge("other", &[]).unwrap().set(1.0).unwrap();
    let text = render_export(&store.export_snapshot(), &[], Format::Text);
    assert_eq!(text.matches("# TYPE flext_obs_series gauge\n").count(), 1, "{text}");
    assert!(text.contains("flext_obs_series{metric=\"other\"} 1\n"), "{text}");
    assert_eq!(text, render(&obs.snapshot(), Format::Text));
}
