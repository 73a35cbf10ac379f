//! Three Grafana dashboards over the Autometrics series and the recorded SLO series: a service
//! overview, a function explorer, and one for the objectives.
//!
//! Every query selects the data source through the `datasource` template variable (type
//! `datasource`, Prometheus), so the files import or provision into any Grafana (9 or later:
//! `schemaVersion` 39) without editing; `service`, `module` and `function` are `label_values`
//! variables.

use super::Objective;
use super::quote::grafana_matcher;
use super::rules::{Kind, distinct, error_budget};
use serde_json::{Value, json};

/// One Grafana dashboard: the file name to write it under and its JSON model.
///
/// ```
/// let boards = flext_obs::slo::dashboards(&[]);
/// let overview = &boards[0];
/// assert_eq!(overview.file_name, "flext-service-overview.json");
/// assert_eq!(overview.json["uid"], "flext-service-overview");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Dashboard {
    /// `flext-service-overview.json`, `flext-function-explorer.json` or `flext-slos.json`.
    pub file_name: String,
    /// The dashboard model, as Grafana's "Import dashboard" and file provisioning read it.
    pub json: Value,
}

/// The three dashboards for `objectives`: service overview (calls/s, error ratio, p95/p99
/// latency and in-flight calls per function, calls per build version), function explorer (one
/// function's rate by result, error ratio, latency quantiles, callers and callees) and SLOs (per
/// objective: success rate and latency SLI against the target, burn rates from the recording
/// rules of [`rules`](super::rules), firing alerts).
///
/// Why generated: the SLO dashboard needs each objective's name and target, which only the code
/// knows; the other two are the same for every service but ship with the library so their
/// queries are tested against the series names it writes.
///
/// ```
/// use flext_obs::slo::{Objective, Percentile};
///
/// const API: Objective = Objective::new("api").success_rate(Percentile::P99_9);
/// let boards = flext_obs::slo::dashboards(&[API]);
/// let names: Vec<&str> = boards.iter().map(|d| d.file_name.as_str()).collect();
/// assert_eq!(names, ["flext-service-overview.json", "flext-function-explorer.json", "flext-slos.json"]);
/// assert!(boards[2].json.to_string().contains(r#"flext_slo:burn_rate:rate1h{objective_name=\"api\""#));
/// ```
pub fn dashboards(objectives: &[Objective]) -> Vec<Dashboard> {
    vec![
        Dashboard { file_name: "flext-service-overview.json".to_owned(), json: service_overview() },
        Dashboard { file_name: "flext-function-explorer.json".to_owned(), json: function_explorer() },
        Dashboard { file_name: "flext-slos.json".to_owned(), json: slos(&distinct(objectives)) },
    ]
}

fn datasource() -> Value {
    json!({ "type": "prometheus", "uid": "${datasource}" })
}

fn datasource_variable() -> Value {
    json!({
        "name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
        "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []
    })
}

/// A `label_values` variable; with `all`, an "All" entry matching `.*` (queries use `=~`).
fn query_variable(name: &str, label: &str, query: &str, all: bool) -> Value {
    json!({
        "name": name, "label": label, "type": "query", "datasource": datasource(),
        "query": query, "definition": query, "refresh": 2, "sort": 1,
        "includeAll": all, "allValue": if all { Value::from(".*") } else { Value::Null },
        "multi": false, "current": {}, "options": [], "hide": 0, "regex": ""
    })
}

fn dashboard(uid: &str, title: &str, description: &str, variables: &[Value], panels: &[Value]) -> Value {
    json!({
        "uid": uid, "title": title, "description": description,
        "tags": ["flext-obs", "autometrics"], "timezone": "browser", "editable": true, "graphTooltip": 1,
        "schemaVersion": 39, "version": 1, "time": { "from": "now-6h", "to": "now" }, "refresh": "30s",
        "templating": { "list": variables }, "annotations": { "list": [] },
        "links": [{ "type": "dashboards", "tags": ["flext-obs"], "asDropdown": true, "title": "flext-obs",
                    "includeVars": true, "keepTime": true }],
        "panels": panels
    })
}

/// Lays panels out two per row, numbering them.
#[derive(Default)]
struct Layout {
    panels: Vec<Value>,
    x: u32,
    y: u32,
}

impl Layout {
    fn add(&mut self, kind: &str, title: &str, unit: &str, targets: &[(String, &str)]) -> &mut Value {
        self.add_with(kind, title, unit, targets, &json!({ "mode": "absolute", "steps": [{ "color": "green", "value": null }] }))
    }

    fn add_with(&mut self, kind: &str, title: &str, unit: &str, targets: &[(String, &str)], thresholds: &Value) -> &mut Value {
        let id = self.panels.len() + 1;
        let targets: Vec<Value> = targets
            .iter()
            .zip('A'..='Z')
            .map(|((expr, legend), ref_id)| {
                json!({ "refId": ref_id.to_string(), "datasource": datasource(), "expr": expr, "legendFormat": legend,
                        "range": kind != "table", "instant": kind == "table", "format": if kind == "table" { "table" } else { "time_series" } })
            })
            .collect();
        let threshold_style = if thresholds["steps"].as_array().is_some_and(|s| s.len() > 1) { "line" } else { "off" };
        self.panels.push(json!({
            "id": id, "type": kind, "title": title, "datasource": datasource(),
            "gridPos": { "h": 8, "w": 12, "x": self.x, "y": self.y },
            "fieldConfig": { "defaults": { "unit": unit, "thresholds": thresholds,
                                           "custom": { "thresholdsStyle": { "mode": threshold_style } } },
                             "overrides": [] },
            "options": { "legend": { "displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"] },
                         "tooltip": { "mode": "multi", "sort": "desc" } },
            "targets": targets
        }));
        if self.x == 0 {
            self.x = 12;
        } else {
            self.x = 0;
            self.y += 8;
        }
        self.panels.last_mut().expect("just pushed")
    }

    fn row(&mut self, title: &str) {
        if self.x != 0 {
            self.x = 0;
            self.y += 8;
        }
        let id = self.panels.len() + 1;
        self.panels.push(json!({ "id": id, "type": "row", "title": title, "collapsed": false, "panels": [],
                                 "gridPos": { "h": 1, "w": 24, "x": 0, "y": self.y } }));
        self.y += 1;
    }
}

const RATE: &str = "[$__rate_interval]";

fn service_overview() -> Value {
    let sel = r#"service_name=~"$service""#;
    let by = "sum by (function, module)";
    let calls = format!("{by} (rate(function_calls_total{{{sel}}}{RATE}))");
    let errors = format!("{by} (rate(function_calls_total{{{sel}, result=\"error\"}}{RATE}))");
    let quantile = |q: &str| {
        format!("histogram_quantile({q}, sum by (le, function, module) (rate(function_calls_duration_seconds_bucket{{{sel}}}{RATE})))")
    };
    let legend = "{{module}}::{{function}}";
    let mut layout = Layout::default();
    layout.add("timeseries", "Calls per second by function", "reqps", &[(calls.clone(), legend)]);
    layout.add("timeseries", "Error ratio by function", "percentunit", &[(format!("{errors}\n/\n{calls}"), legend)]);
    layout.add("timeseries", "p95 latency by function", "s", &[(quantile("0.95"), legend)]);
    layout.add("timeseries", "p99 latency by function", "s", &[(quantile("0.99"), legend)]);
    layout.add("timeseries", "In-flight calls by function", "short", &[(format!("{by} (function_calls_concurrent{{{sel}}})"), legend)]);
    // The join: every call series gets its process's version and commit from build_info; a target
    // without build_info still shows, through `up`, without them.
    let by_version = format!(
        "sum by (service_name, version, commit) (\n  rate(function_calls_total{{{sel}}}{RATE})\n  * on (instance, job) group_left (version, commit)\n  (last_over_time(build_info[1m]) or on (instance, job) up)\n)"
    );
    layout.add("timeseries", "Calls per second by version", "reqps", &[(by_version, "{{service_name}} {{version}} ({{commit}})")]);
    layout.add(
        "table",
        "Running builds",
        "short",
        &[(format!("max by (service_name, version, commit, branch) (last_over_time(build_info{{{sel}}}[1m]))"), "")],
    );
    dashboard(
        "flext-service-overview",
        "flext-obs / Service overview",
        "Calls, errors, latency and in-flight calls of every #[flext_monitor] function (Autometrics series).",
        &[datasource_variable(), query_variable("service", "Service", "label_values(function_calls_total, service_name)", true)],
        &layout.panels,
    )
}

fn function_explorer() -> Value {
    let sel = r#"service_name=~"$service", module=~"$module", function="$function""#;
    let calls = format!("sum(rate(function_calls_total{{{sel}}}{RATE}))");
    let errors = format!("sum(rate(function_calls_total{{{sel}, result=\"error\"}}{RATE}))");
    let quantile = |q: &str| format!("histogram_quantile({q}, sum by (le) (rate(function_calls_duration_seconds_bucket{{{sel}}}{RATE})))");
    let mut layout = Layout::default();
    layout.add(
        "timeseries",
        "Calls per second by result",
        "reqps",
        &[(format!("sum by (result) (rate(function_calls_total{{{sel}}}{RATE}))"), "{{result}}")],
    );
    layout.add("timeseries", "Error ratio", "percentunit", &[(format!("{errors}\n/\n{calls}"), "error ratio")]);
    layout.add(
        "timeseries",
        "Latency quantiles",
        "s",
        &[(quantile("0.5"), "p50"), (quantile("0.9"), "p90"), (quantile("0.95"), "p95"), (quantile("0.99"), "p99")],
    );
    layout.add(
        "timeseries",
        "Average latency and in-flight calls",
        "short",
        &[
            (
                format!(
                    "sum(rate(function_calls_duration_seconds_sum{{{sel}}}{RATE}))\n/\nsum(rate(function_calls_duration_seconds_count{{{sel}}}{RATE}))"
                ),
                "average (s)",
            ),
            (format!("sum(function_calls_concurrent{{{sel}}})"), "in flight"),
        ],
    );
    layout.add(
        "timeseries",
        "Callers (calls per second)",
        "reqps",
        &[(
            format!("sum by (caller_function, caller_module) (rate(function_calls_total{{{sel}}}{RATE}))"),
            "{{caller_module}}::{{caller_function}}",
        )],
    );
    layout.add(
        "timeseries",
        "Callees (calls per second)",
        "reqps",
        &[(
            format!(
                "sum by (function, module) (rate(function_calls_total{{service_name=~\"$service\", caller_module=~\"$module\", caller_function=\"$function\"}}{RATE}))"
            ),
            "{{module}}::{{function}}",
        )],
    );
    dashboard(
        "flext-function-explorer",
        "flext-obs / Function explorer",
        "One #[flext_monitor] function: rate by result, error ratio, latency quantiles, who calls it and what it calls.",
        &[
            datasource_variable(),
            query_variable("service", "Service", "label_values(function_calls_total, service_name)", true),
            query_variable("module", "Module", r#"label_values(function_calls_total{service_name=~"$service"}, module)"#, true),
            query_variable(
                "function",
                "Function",
                r#"label_values(function_calls_total{service_name=~"$service", module=~"$module"}, function)"#,
                false,
            ),
        ],
        &layout.panels,
    )
}

fn slos(objectives: &[Objective]) -> Value {
    let mut layout = Layout::default();
    let service = r#"service_name=~"$service""#;
    for objective in objectives {
        let name = objective.name();
        let sel = format!("{}, {service}", grafana_matcher("objective_name", name));
        let targets = [
            (Kind::SuccessRate, objective.success_rate_target().map(|p| (p, None))),
            (Kind::Latency, objective.latency_target().map(|(t, p)| (p, Some(t)))),
        ];
        if targets.iter().all(|(_, t)| t.is_none()) {
            continue;
        }
        layout.row(&format!("Objective {name}"));
        for (kind, target) in targets {
            let Some((percentile, threshold)) = target else { continue };
            let what = match threshold {
                None => "Success rate".to_owned(),
                Some(t) => format!("Calls within {} s", t.as_label()),
            };
            let mut sli_targets: Vec<(String, &str)> = [
                ("5m", "{{service_name}} 5m"),
                ("1h", "{{service_name}} 1h"),
                ("1d", "{{service_name}} 1d"),
                ("3d", "{{service_name}} 3d"),
            ]
            .iter()
            .map(|(w, legend)| (format!("1 - {}{{{sel}}}", kind.ratio_record(w)), *legend))
            .collect();
            sli_targets.push((format!("vector({})", percentile.fraction()), "target"));
            layout.add("timeseries", &format!("{what} vs target {} % ({name})", percentile.as_label()), "percentunit", &sli_targets);
            let burn: Vec<(String, &str)> = [
                ("5m", "{{service_name}} 5m"),
                ("1h", "{{service_name}} 1h"),
                ("6h", "{{service_name}} 6h"),
                ("1d", "{{service_name}} 1d"),
                ("3d", "{{service_name}} 3d"),
            ]
            .iter()
            .map(|(w, legend)| (format!("{}{{{sel}}}", kind.burn_record(w)), *legend))
            .collect();
            let thresholds = json!({ "mode": "absolute", "steps": [
                { "color": "green", "value": null }, { "color": "orange", "value": 1 }, { "color": "red", "value": 14.4 } ] });
            layout.add_with(
                "timeseries",
                &format!(
                    "{} burn rate, error budget {} ({name}): ticket above 3 (1d) / 1 (3d), page above 14.4 (1h) / 6 (6h)",
                    if threshold.is_some() { "Latency" } else { "Success-rate" },
                    error_budget(percentile)
                ),
                "short",
                &burn,
                &thresholds,
            );
        }
        layout.add(
            "table",
            &format!("Firing alerts ({name})"),
            "short",
            &[(format!("sum by (alertname, severity, service_name) (ALERTS{{{sel}, alertstate=\"firing\"}})"), "")],
        );
    }
    dashboard(
        "flext-slos",
        "flext-obs / SLOs",
        "Per objective: the SLIs against their targets and the burn rates that page (14.4 over 1h and 5m, 6 over 6h and 30m) or open a ticket (3 over 1d and 2h, 1 over 3d and 6h).",
        &[datasource_variable(), query_variable("service", "Service", r#"label_values({__name__=~"flext_slo:.+"}, service_name)"#, true)],
        &layout.panels,
    )
}
