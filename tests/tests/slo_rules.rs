//! `flext_obs::slo` against the real tools: the rules file passes `promtool check rules`; its
//! alerts fire and stay silent as the multi-window, multi-burn-rate scheme says, shown by
//! `promtool test rules` on synthetic series (one sample a minute); every query of the
//! dashboards runs without error on a real Prometheus.

use flext_obs::slo::{Latency, Objective, Percentile};
use flext_obs_tests::{http, servers};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// 99.9 % of calls succeed: error budget 0.001, so 1 error in 1000 calls is a burn rate of 1.
const CHECKOUT: Objective = Objective::new("checkout").success_rate(Percentile::P99_9);
/// 99 % of calls take at most 250 ms: error budget 0.01, 10 slow calls in 1000 burn at 1.
const SEARCH: Objective = Objective::new("search").latency(Latency::Ms250, Percentile::P99);
/// Another objective with the same target as [`CHECKOUT`].
const CART: Objective = Objective::new("cart").success_rate(Percentile::P99_9);
/// Both targets, and a name that needs quoting in YAML, `PromQL`, Go templates and Grafana.
const ODD: Objective =
    Objective::new(r#"it's "odd" {{x}} $y: #z \ ok"#).success_rate(Percentile::P95).latency(Latency::S1, Percentile::P90);

/// Calls a minute in the synthetic traffic.
const CALLS: f64 = 1000.0;

fn promtool(args: &[&str], dir: &Path) -> (i32, String) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool not found: run `bash scripts/test.sh`, which installs the Debian package prometheus");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr))
}

/// A counter in promtool's expanding notation that grows by `per_minute` for `minutes`, span
/// after span: `[(1.0, 60), (20.0, 30)]` is `0+1x60 80+20x29` (samples at minutes 0..=90).
fn counter(spans: &[(f64, u32)]) -> String {
    let mut value = 0.0;
    let mut parts = Vec::new();
    for (i, &(per_minute, minutes)) in spans.iter().enumerate() {
        if i == 0 {
            parts.push(format!("0+{per_minute}x{minutes}"));
        } else {
            parts.push(format!("{}+{per_minute}x{}", value + per_minute, minutes - 1));
        }
        value += per_minute * f64::from(minutes);
    }
    parts.join(" ")
}

/// The series of both objectives burning their budgets at `burn` (times the sustainable rate)
/// span after span: `checkout` fails `burn / 1000` of its calls, `search` has `burn / 100` of its
/// calls slower than 0.25 s. Plus a function without objective that always fails and is always
/// slow, which no SLI may count.
fn traffic(spans: &[(f64, u32)]) -> Vec<Value> {
    let checkout =
        r#"function="checkout", module="shop::orders", service_name="shop", objective_name="checkout", objective_percentile="99.9""#;
    let search = r#"function="search", module="shop::catalog", service_name="shop", objective_name="search", objective_percentile="99", objective_latency_threshold="0.25""#;
    let plain = r#"function="health", module="shop", service_name="shop""#;
    let with =
        |per_minute: &dyn Fn(f64) -> f64| counter(&spans.iter().map(|&(burn, minutes)| (per_minute(burn), minutes)).collect::<Vec<_>>());
    let minutes: u32 = spans.iter().map(|s| s.1).sum();
    let series = |name: String, values: String| json!({ "series": name, "values": values });
    vec![
        series(format!("function_calls_total{{{checkout}, result=\"ok\"}}"), with(&|burn| CALLS - burn * CALLS * 0.001)),
        series(format!("function_calls_total{{{checkout}, result=\"error\"}}"), with(&|burn| burn * CALLS * 0.001)),
        series(
            format!("function_calls_duration_seconds_bucket{{{search}, le=\"0.1\"}}"),
            with(&|burn| (CALLS - burn * CALLS * 0.01) / 2.0),
        ),
        series(format!("function_calls_duration_seconds_bucket{{{search}, le=\"0.25\"}}"), with(&|burn| CALLS - burn * CALLS * 0.01)),
        series(format!("function_calls_duration_seconds_bucket{{{search}, le=\"+Inf\"}}"), with(&|_| CALLS)),
        series(format!("function_calls_duration_seconds_count{{{search}}}"), with(&|_| CALLS)),
        series(format!("function_calls_total{{{plain}, result=\"error\"}}"), format!("0+{CALLS}x{minutes}")),
        series(format!("function_calls_duration_seconds_bucket{{{plain}, le=\"0.25\"}}"), format!("0+0x{minutes}")),
        series(format!("function_calls_duration_seconds_count{{{plain}}}"), format!("0+{CALLS}x{minutes}")),
    ]
}

const PAGE: &str = "more than 14.4x as fast as sustainable over both 1h and 5m, or more than 6x over both 6h and 30m.";
const TICKET: &str = "more than 3x as fast as sustainable over both 1d and 2h, or more than 1x over both 3d and 6h.";

/// The alerts `name` must show at `at`: `Some(severity)` for the one alert of each objective of
/// that kind with its labels and annotations, `None` for none.
fn expect(name: &str, at: &str, fires: bool) -> Value {
    let page = name.ends_with("Page");
    let (severity, speed, windows) = if page { ("page", "fast", PAGE) } else { ("ticket", "steadily", TICKET) };
    let alert = if name.starts_with("FlextSloSuccessRate") {
        json!({
            "exp_labels": { "severity": severity, "objective_name": "checkout", "objective_percentile": "99.9", "service_name": "shop" },
            "exp_annotations": {
                "summary": format!("Success rate of objective \"checkout\" is burning its error budget {speed}"),
                "description": format!("Service shop: objective \"checkout\" targets 99.9 % of calls succeeding (error budget 0.001); errors are spending the budget {windows}"),
            }
        })
    } else {
        json!({
            "exp_labels": { "severity": severity, "objective_name": "search", "objective_percentile": "99",
                            "objective_latency_threshold": "0.25", "service_name": "shop" },
            "exp_annotations": {
                "summary": format!("Latency of objective \"search\" is burning its error budget {speed}"),
                "description": format!("Service shop: objective \"search\" targets 99 % of calls taking at most 0.25 s (error budget 0.01); calls slower than 0.25 s are spending the budget {windows}"),
            }
        })
    };
    json!({ "eval_time": at, "alertname": name, "exp_alerts": if fires { vec![alert] } else { vec![] } })
}

/// Both kinds (success rate, latency) of `severity` at `at`.
fn both(severity: &str, at: &str, fires: bool) -> [Value; 2] {
    [expect(&format!("FlextSloSuccessRate{severity}"), at, fires), expect(&format!("FlextSloLatency{severity}"), at, fires)]
}

/// The recorded burn rates over `window` at `at`, rounded to 0.01: `(success rate, latency)`.
fn burn_rates(window: &str, at: &str, success: f64, latency: f64) -> [Value; 2] {
    [
        json!({ "expr": format!("round(flext_slo:burn_rate:rate{window}, 0.01)"), "eval_time": at,
                "exp_samples": [{ "labels": r#"{objective_name="checkout", objective_percentile="99.9", service_name="shop"}"#, "value": success }] }),
        json!({ "expr": format!("round(flext_slo:latency_burn_rate:rate{window}, 0.01)"), "eval_time": at,
                "exp_samples": [{ "labels": r#"{objective_name="search", objective_percentile="99", objective_latency_threshold="0.25", service_name="shop"}"#, "value": latency }] }),
    ]
}

/// Writes the rules of [`CHECKOUT`] and [`SEARCH`] and a `promtool test rules` file (JSON, which
/// is YAML) with one test group, runs promtool on it, and returns its exit code and output.
fn run_unit_test(tag: &str, spans: &[(f64, u32)], alerts: &[Value], exprs: &[Value]) -> (i32, String) {
    let dir = servers::temp_dir(&format!("slo-{tag}"));
    std::fs::write(dir.join("rules.yml"), flext_obs::slo::rules(&[CHECKOUT, SEARCH])).expect("rules file");
    let test = json!({
        "rule_files": ["rules.yml"],
        // Rules have no `for:`, so evaluating every 5 minutes changes nothing but the run time.
        "evaluation_interval": "5m",
        "tests": [{ "name": tag, "interval": "1m", "input_series": traffic(spans), "alert_rule_test": alerts, "promql_expr_test": exprs }]
    });
    std::fs::write(dir.join("test.yml"), serde_json::to_string_pretty(&test).expect("json")).expect("test file");
    let result = promtool(&["test", "rules", "test.yml"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn assert_passes((code, output): (i32, String)) {
    assert_eq!(code, 0, "promtool test rules failed:\n{output}");
    assert!(output.contains("SUCCESS"), "{output}");
}

const DAY: u32 = 24 * 60;

#[test]
fn generated_rules_pass_promtool_check() {
    let dir = servers::temp_dir("slo-check");
    std::fs::write(dir.join("rules.yml"), flext_obs::slo::rules(&[CHECKOUT, SEARCH, CART, ODD, CHECKOUT])).expect("rules file");
    std::fs::write(dir.join("none.yml"), flext_obs::slo::rules(&[Objective::new("no-target")])).expect("rules file");
    let (code, output) = promtool(&["check", "rules", "rules.yml", "none.yml"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 0, "promtool check rules failed:\n{output}");
    // checkout 14 + 2, search 14 + 2, cart 14 + 2, odd 28 + 4 (the second CHECKOUT is dropped), none 0.
    assert!(output.contains("SUCCESS: 80 rules found"), "{output}");
    assert!(output.contains("SUCCESS: 0 rules found"), "{output}");
}

/// 20x (2 % errors, 20 % slow calls) for an hour after a clean day: the 5m window alone is not
/// enough (no page after 10 minutes, when the 1h burn rate is 3.33); after 50 minutes both the
/// 1h (16.67) and 5m (20) rates are above 14.4 and it pages, while the ticket stays silent (the
/// 1d rate is 0.69, the 6h 2.78 with the 3d 0.67); 15 minutes after the burn ends the 5m window
/// resets the page (1h 15 > 14.4 but 5m 0; 30m 10 > 6 but 6h 3.33).
#[test]
fn fast_burn_pages_on_both_windows_and_resets() {
    let h = |minutes: u32| format!("{}m", DAY + minutes);
    let mut alerts = Vec::new();
    alerts.extend(both("Page", &h(10), false));
    alerts.extend(both("Page", &h(50), true));
    alerts.extend(both("Ticket", &h(50), false));
    alerts.extend(both("Page", &h(75), false));
    let mut exprs = Vec::new();
    exprs.extend(burn_rates("1h", &h(10), 3.33, 3.33));
    exprs.extend(burn_rates("5m", &h(10), 20.0, 20.0));
    exprs.extend(burn_rates("1h", &h(50), 16.67, 16.67));
    exprs.extend(burn_rates("1d", &h(50), 0.69, 0.69));
    exprs.extend(burn_rates("5m", &h(75), 0.0, 0.0));
    assert_passes(run_unit_test("fast-burn", &[(0.0, DAY), (20.0, 60), (0.0, 30)], &alerts, &exprs));
}

/// 3.5x after three clean days: after 20 hours the 1d burn rate is 2.92 (and the 3d 0.97), no
/// ticket; after 22 hours the 1d rate is 3.21 and the 2h 3.5, above 3: ticket. 3.5 never pages.
#[test]
fn slow_burn_opens_a_ticket_over_one_day_and_two_hours() {
    let h = |hours: u32| format!("{}m", 3 * DAY + hours * 60);
    let mut alerts = Vec::new();
    alerts.extend(both("Ticket", &h(20), false));
    alerts.extend(both("Ticket", &h(22), true));
    alerts.extend(both("Page", &h(22), false));
    let mut exprs = Vec::new();
    exprs.extend(burn_rates("1d", &h(20), 2.92, 2.92));
    exprs.extend(burn_rates("3d", &h(20), 0.97, 0.97));
    exprs.extend(burn_rates("1d", &h(22), 3.21, 3.21));
    exprs.extend(burn_rates("2h", &h(22), 3.5, 3.5));
    assert_passes(run_unit_test("slow-burn", &[(0.0, 3 * DAY), (3.5, 22 * 60)], &alerts, &exprs));
}

/// 1.5x for three days: below 3 over 1d, but above 1 over 3d and 6h: ticket, no page.
#[test]
fn steady_burn_above_one_opens_a_ticket_over_three_days_and_six_hours() {
    let end = format!("{}m", 3 * DAY);
    let mut alerts = Vec::new();
    alerts.extend(both("Ticket", &end, true));
    alerts.extend(both("Page", &end, false));
    let mut exprs = Vec::new();
    exprs.extend(burn_rates("3d", &end, 1.5, 1.5));
    exprs.extend(burn_rates("6h", &end, 1.5, 1.5));
    exprs.extend(burn_rates("1d", &end, 1.5, 1.5));
    assert_passes(run_unit_test("steady-burn", &[(1.5, 3 * DAY)], &alerts, &exprs));
}

/// 0.9x for three days (just inside the budget), and the function without objective failing
/// every call all along: no alert of either kind or severity at any time.
#[test]
fn burn_below_one_stays_silent() {
    let mut alerts = Vec::new();
    for at in ["10m", "1h", "6h", "1d", "2d", "3d"] {
        alerts.extend(both("Page", at, false));
        alerts.extend(both("Ticket", at, false));
    }
    let mut exprs = Vec::new();
    exprs.extend(burn_rates("3d", "3d", 0.9, 0.9));
    exprs.extend(burn_rates("5m", "3d", 0.9, 0.9));
    assert_passes(run_unit_test("below-budget", &[(0.9, 3 * DAY)], &alerts, &exprs));
}

/// The unit tests above can fail: expecting a page at 0.9x makes promtool exit 1 and name the
/// alert.
#[test]
fn promtool_test_rules_reports_a_wrong_expectation() {
    let (code, output) = run_unit_test("wrong", &[(0.9, 120)], &[expect("FlextSloSuccessRatePage", "2h", true)], &[]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("FAILED") && output.contains("FlextSloSuccessRatePage"), "{output}");
}

/// Every `expr` of every panel (rows included) and every template variable query.
fn queries(dashboard: &Value) -> (Vec<String>, Vec<String>) {
    fn walk(panels: &Value, out: &mut Vec<String>) {
        for panel in panels.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.push(target["expr"].as_str().expect("a target has an expr").to_owned());
            }
            walk(&panel["panels"], out);
        }
    }
    let mut exprs = Vec::new();
    walk(&dashboard["panels"], &mut exprs);
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| v["query"].as_str().or_else(|| v["query"]["query"].as_str()).expect("a variable query").to_owned())
        .collect();
    (exprs, variables)
}

/// What Grafana sends for `query`: variables replaced (`$name`, `${name}`), `$__rate_interval` 5m.
fn substitute(query: &str) -> String {
    let mut out = query.to_owned();
    for (name, value) in [("__rate_interval", "5m"), ("function", "checkout"), ("module", "shop::orders"), ("service", "shop")] {
        out = out.replace(&format!("${{{name}}}"), value).replace(&format!("${name}"), value);
    }
    assert!(!out.contains('$'), "a variable Grafana would replace is left in {out:?}");
    out
}

fn api(prometheus: &servers::Server, path: &str) -> Value {
    let response = http::get(prometheus.addr, path, &[]).expect("prometheus answers");
    serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", response.body))
}

#[test]
fn every_dashboard_query_runs_on_prometheus() {
    let (prometheus, _sd) = servers::prometheus();
    let boards = flext_obs::slo::dashboards(&[CHECKOUT, SEARCH, ODD]);
    assert_eq!(boards.len(), 3);
    let mut checked = 0;
    for board in &boards {
        assert!(board.json["schemaVersion"].as_u64().is_some_and(|v| v >= 36), "{}", board.file_name);
        let (exprs, variables) = queries(&board.json);
        assert!(!exprs.is_empty() && !variables.is_empty(), "{}", board.file_name);
        for expr in exprs {
            let query = substitute(&expr);
            let answer = api(&prometheus, &format!("/api/v1/query?query={}", servers::encode(&query)));
            assert_eq!(answer["status"], "success", "{}: {query}\n{answer}", board.file_name);
            checked += 1;
        }
        for variable in variables {
            // Grafana runs `label_values(SELECTOR, LABEL)` as the label-values API with a match[].
            let inner = variable.strip_prefix("label_values(").and_then(|v| v.strip_suffix(')')).expect("label_values(...)");
            let (selector, label) = inner.rsplit_once(", ").expect("label_values(SELECTOR, LABEL)");
            let selector = substitute(selector);
            let answer = api(&prometheus, &format!("/api/v1/label/{label}/values?match[]={}", servers::encode(&selector)));
            assert_eq!(answer["status"], "success", "{}: {variable}\n{answer}", board.file_name);
            let answer = api(&prometheus, &format!("/api/v1/query?query={}", servers::encode(&format!("count by ({label}) ({selector})"))));
            assert_eq!(answer["status"], "success", "{}: {variable}\n{answer}", board.file_name);
            checked += 1;
        }
    }
    // Overview 7 + 1 variable, explorer 10 + 3, SLOs 1 variable + per objective (SLI 4 windows + target, 5 burn
    // rates) per kind and 1 alert table: checkout 11, search 11, odd 21.
    assert_eq!(checked, 65, "queries checked");
    let slos = boards[2].json.to_string();
    assert!(slos.contains(r#"objective_name=~\"it's \\\"odd\\\" \\\\{\\\\{x\\\\}\\\\} \\\\x24y: #z \\\\\\\\ ok\""#), "{slos}");
}
