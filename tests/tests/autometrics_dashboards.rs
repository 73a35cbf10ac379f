//! The real Prometheus 2.42 scraping the main example (`examples/service`, the README's first
//! command) with the rules it generates loaded: every recording rule has series, every panel and
//! variable query of the dashboards it generates returns data without error (variables
//! substituted as Grafana does), a panicking call shows in the error rate, and the public
//! Autometrics dashboards' `build_info` join runs without error.

use flext_obs_tests::example::{Example, example_command};
use flext_obs_tests::http::get;
use flext_obs_tests::servers::{encode, free_port, prometheus_with_rules, temp_dir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn query(prometheus: SocketAddr, promql: &str) -> Value {
    let response = get(prometheus, &format!("/api/v1/query?query={}", encode(promql)), &[]).expect("Prometheus answers");
    serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("{promql}: {e}: {}", response.body))
}

fn has_data(answer: &Value) -> bool {
    answer["status"] == "success" && answer["data"]["result"].as_array().is_some_and(|r| !r.is_empty())
}

/// Polls `check` for at most `limit`.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every `PromQL` expression of a dashboard: panel targets (rows' panels included) and the
/// template variables' queries, the latter as `(name, query)`.
fn dashboard_queries(dashboard: &Value) -> (Vec<String>, Vec<(String, String)>) {
    fn walk(panels: &Value, out: &mut Vec<String>) {
        for panel in panels.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(expr.to_owned());
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut exprs = Vec::new();
    walk(&dashboard["panels"], &mut exprs);
    let variables = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["type"] == "query")
        .filter_map(|v| {
            let query = v["query"].as_str().map(str::to_owned).or_else(|| v["query"]["query"].as_str().map(str::to_owned))?;
            Some((v["name"].as_str()?.to_owned(), query))
        })
        .collect();
    (exprs, variables)
}

/// The values of a Grafana `label_values(label)` / `label_values(selector, label)` query, read
/// through the series API as Grafana does.
fn label_values(prometheus: SocketAddr, query: &str, chosen: &BTreeMap<String, String>) -> Vec<String> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unsupported variable query {query}"));
    let inner = substitute(inner, chosen);
    let (selector, label) = match inner.rsplit_once(',') {
        Some((selector, label)) => (Some(selector.trim().to_owned()), label.trim().to_owned()),
        None => (None, inner.trim().to_owned()),
    };
    let path = match &selector {
        Some(selector) => format!("/api/v1/label/{label}/values?match[]={}", encode(selector)),
        None => format!("/api/v1/label/{label}/values"),
    };
    let response = get(prometheus, &path, &[]).expect("Prometheus answers");
    let json: Value = serde_json::from_str(&response.body).expect("JSON");
    assert_eq!(json["status"], "success", "{query}: {}", response.body);
    json["data"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

/// Grafana's substitution: chosen variable values, and its interval macros.
fn substitute(expr: &str, chosen: &BTreeMap<String, String>) -> String {
    let mut out = expr.replace("$__rate_interval", "1m").replace("${__rate_interval}", "1m");
    out = out.replace("$__interval", "15s").replace("${__interval}", "15s").replace("$__range", "5m").replace("${__range}", "5m");
    // Longest names first, so `$function` does not eat `$function_module`.
    let mut names: Vec<&String> = chosen.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        let value = regex_escape(&chosen[name]);
        out = out.replace(&format!("${{{name}}}"), &value).replace(&format!("${name}"), &value);
    }
    out
}

/// A value as Grafana writes it into a query: regex metacharacters escaped (it may sit in `=~`);
/// our values (`Inventory::place_order`) have none but `.`.
fn regex_escape(value: &str) -> String {
    value.replace('.', "\\\\.")
}

#[test]
fn the_main_example_fills_every_generated_rule_and_dashboard_in_the_real_prometheus() {
    let dir = temp_dir("autometrics-dashboards");
    let rules = example_command(&["rules"]).output().expect("the example runs");
    assert!(rules.status.success(), "`service -- rules` failed: {}", String::from_utf8_lossy(&rules.stderr));
    let rules_file = dir.join("rules.yml");
    std::fs::write(&rules_file, &rules.stdout).unwrap();
    let dashboards_dir = dir.join("dashboards");
    let written = example_command(&["dashboards", dashboards_dir.to_str().unwrap()]).output().expect("the example runs");
    assert!(written.status.success(), "`service -- dashboards` failed: {}", String::from_utf8_lossy(&written.stderr));

    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let example = Example(
        example_command(&["--seconds", "120"])
            .env("FLEXT_METRICS_ADDR", addr.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the example starts"),
    );
    assert!(
        eventually(Duration::from_secs(120), || get(addr, "/metrics", &[]).is_ok_and(|r| r.status == 200)),
        "the example serves /metrics"
    );
    let prometheus = prometheus_with_rules(&[addr], std::slice::from_ref(&rules_file));
    let server = prometheus.addr;

    // The rules load, and every recording rule has series.
    let rules_answer: Value = serde_json::from_str(&get(server, "/api/v1/rules", &[]).unwrap().body).unwrap();
    let groups = rules_answer["data"]["groups"].as_array().expect("rule groups");
    let recording: Vec<String> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["type"] == "recording")
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    let alerting =
        groups.iter().flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default()).filter(|r| r["type"] == "alerting").count();
    assert!(!recording.is_empty() && alerting > 0, "rules loaded: {rules_answer}");
    let mut empty_rules = recording.clone();
    eventually(Duration::from_secs(90), || {
        empty_rules.retain(|name| !has_data(&query(server, name)));
        empty_rules.is_empty()
    });
    assert!(
        empty_rules.is_empty(),
        "recording rules without series: {empty_rules:?} of {}; Prometheus log:\n{}",
        recording.len(),
        prometheus.log()
    );
    let rule_health: Vec<String> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["health"] == "err")
        .map(|r| format!("{}: {}", r["name"], r["lastError"]))
        .collect();
    assert!(rule_health.is_empty(), "rules failing: {rule_health:?}");

    // A panicking call is in the error rate.
    assert!(
        eventually(Duration::from_secs(30), || has_data(&query(
            server,
            "sum(rate(function_calls_total{function=\"Inventory::audit\",result=\"error\"}[1m])) > 0"
        ))),
        "the audit's panics show as errors"
    );

    // Every panel and variable query of every generated dashboard returns data.
    let mut report = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dashboards_dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 3, "overview, function explorer, SLOs: {files:?}");
    for file in files {
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let (exprs, variables) = dashboard_queries(&dashboard);
        let mut chosen: BTreeMap<String, String> = BTreeMap::new();
        for (name, variable_query) in &variables {
            let values = label_values(server, variable_query, &chosen);
            assert!(!values.is_empty(), "{}: variable {name} ({variable_query}) has no values", file.display());
            let pick = values.iter().find(|v| v.as_str() == "Inventory::place_order").unwrap_or(&values[0]).clone();
            chosen.insert(name.clone(), pick);
        }
        let mut without_data = Vec::new();
        eventually(Duration::from_secs(30), || {
            without_data = exprs.iter().filter(|expr| !has_data(&query(server, &substitute(expr, &chosen)))).cloned().collect();
            without_data.is_empty()
        });
        for expr in &exprs {
            let answer = query(server, &substitute(expr, &chosen));
            assert_eq!(answer["status"], "success", "{}: {expr}: {answer}", file.display());
        }
        assert!(without_data.is_empty(), "{}: queries without data: {without_data:#?}", file.display());
        report.push(format!(
            "{}: {} of {} panel queries and {} variables return data",
            file.display(),
            exprs.len(),
            exprs.len(),
            variables.len()
        ));
    }
    println!("{}", report.join("\n"));

    // The public Autometrics dashboards' join onto build_info runs and finds the one series.
    let join = query(
        server,
        "sum by (function, module, version, commit) (rate(function_calls_total[1m]) * on(instance, job) group_left(version, commit) (last_over_time(build_info[1m]) or on(instance, job) up))",
    );
    assert!(has_data(&join), "the build_info join: {join}");
    drop(example);
    let _ = std::fs::remove_dir_all(dir);
}
