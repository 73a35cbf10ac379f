//! The Prometheus rules file for a set of objectives: recording rules for the SLIs and burn rates,
//! and multi-window, multi-burn-rate alerts as the Google SRE workbook ("Alerting on SLOs")
//! recommends.
//!
//! The series and alerts are listed in the [`slo` module documentation](super).

use super::Objective;
use super::Percentile;
use super::quote::{promql_string, template_literal, yaml_string};
use std::fmt::Write as _;

/// The SLI windows, shortest first.
pub(crate) const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// The two kinds of target an objective can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Share of calls that end with `result="ok"`.
    SuccessRate,
    /// Share of calls at most as slow as a threshold.
    Latency,
}

impl Kind {
    /// The recorded error ratio over `window`: `flext_slo:error_ratio:rate5m`.
    pub(crate) fn ratio_record(self, window: &str) -> String {
        match self {
            Kind::SuccessRate => format!("flext_slo:error_ratio:rate{window}"),
            Kind::Latency => format!("flext_slo:latency_error_ratio:rate{window}"),
        }
    }

    /// The recorded burn rate over `window`: `flext_slo:burn_rate:rate5m`.
    pub(crate) fn burn_record(self, window: &str) -> String {
        match self {
            Kind::SuccessRate => format!("flext_slo:burn_rate:rate{window}"),
            Kind::Latency => format!("flext_slo:latency_burn_rate:rate{window}"),
        }
    }

    fn alert_name(self, severity: Severity) -> &'static str {
        match (self, severity) {
            (Kind::SuccessRate, Severity::Page) => "FlextSloSuccessRatePage",
            (Kind::SuccessRate, Severity::Ticket) => "FlextSloSuccessRateTicket",
            (Kind::Latency, Severity::Page) => "FlextSloLatencyPage",
            (Kind::Latency, Severity::Ticket) => "FlextSloLatencyTicket",
        }
    }
}

/// Who is told: a page wakes someone, a ticket waits for working hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Severity {
    Page,
    Ticket,
}

impl Severity {
    /// The `severity` label value.
    pub(crate) fn as_label(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }

    /// The two (long window, short window, burn-rate factor) conditions, either of which fires
    /// the alert (SRE workbook, table 5-8).
    pub(crate) fn conditions(self) -> [(&'static str, &'static str, &'static str); 2] {
        match self {
            Severity::Page => [("1h", "5m", "14.4"), ("6h", "30m", "6")],
            Severity::Ticket => [("1d", "2h", "3"), ("3d", "6h", "1")],
        }
    }
}

/// The error budget `1 - target`, written as a decimal (not `1.0 - 0.999`, which is
/// `0.0010000000000000009` in floating point).
pub(crate) fn error_budget(percentile: Percentile) -> &'static str {
    match percentile {
        Percentile::P90 => "0.1",
        Percentile::P95 => "0.05",
        Percentile::P99 => "0.01",
        Percentile::P99_9 => "0.001",
    }
}

/// The objectives in order, each name once (the first objective of a name wins): every function
/// with the same `objective_name` counts toward one SLI, so a second definition could only
/// disagree with the series.
pub(crate) fn distinct(objectives: &[Objective]) -> Vec<Objective> {
    let mut seen: Vec<Objective> = Vec::with_capacity(objectives.len());
    for objective in objectives {
        if !seen.iter().any(|o| o.name() == objective.name()) {
            seen.push(*objective);
        }
    }
    seen
}

/// A Prometheus rules file (YAML, for `rule_files:`) that records the success-rate and latency
/// SLIs and burn rates of `objectives` and alerts on them with multi-window, multi-burn-rate
/// alerts: `severity="page"` for a fast burn, `severity="ticket"` for a slow one. One rule group
/// per objective (`flext-slo:NAME`); an objective without targets gets none. Objectives are told
/// apart by name: of several with the same name, the first is used.
///
/// Why generated from code: the objective is declared once, next to the functions it covers, and
/// the rules, dashboards and the `objective_*` labels on the series cannot drift apart. The
/// recorded series and alerts are listed in the [module documentation](super).
///
/// ```
/// use flext_obs::slo::{Latency, Objective, Percentile};
///
/// const API: Objective = Objective::new("api").success_rate(Percentile::P99_9).latency(Latency::Ms250, Percentile::P99);
/// let yaml = flext_obs::slo::rules(&[API]);
/// assert!(yaml.contains("- record: flext_slo:error_ratio:rate5m"));
/// assert!(yaml.contains(r#"function_calls_duration_seconds_bucket{objective_name="api", le="0.25"}"#));
/// assert!(yaml.contains("- alert: FlextSloLatencyPage"));
/// ```
pub fn rules(objectives: &[Objective]) -> String {
    let mut out = String::from(
        "# Prometheus rules for flext-obs service-level objectives, generated by flext_obs::slo::rules.\n\
         # Recorded: flext_slo:{error_ratio,burn_rate,latency_error_ratio,latency_burn_rate}:rate{5m,30m,1h,2h,6h,1d,3d}.\n\
         # Alerts (multi-window, multi-burn-rate): FlextSlo{SuccessRate,Latency}{Page,Ticket}.\n\
         # Regenerate rather than edit.\n",
    );
    let objectives: Vec<Objective> =
        distinct(objectives).into_iter().filter(|o| o.success_rate_target().is_some() || o.latency_target().is_some()).collect();
    if objectives.is_empty() {
        out.push_str("groups: []\n");
        return out;
    }
    out.push_str("groups:\n");
    for objective in &objectives {
        let _ = writeln!(out, "  - name: {}\n    rules:", yaml_string(&format!("flext-slo:{}", objective.name())));
        let name = promql_string(objective.name());
        if let Some(percentile) = objective.success_rate_target() {
            let labels = [("objective_name", objective.name()), ("objective_percentile", percentile.as_label())];
            for window in WINDOWS {
                let total =
                    format!("sum by (objective_name, service_name) (rate(function_calls_total{{objective_name={name}}}[{window}]))");
                let errors = format!(
                    "sum by (objective_name, service_name) (rate(function_calls_total{{objective_name={name}, result=\"error\"}}[{window}]))"
                );
                // `or 0 * total`: a window without a single error records 0, not nothing.
                let expr = [format!("(\n  {errors}\n  or\n  0 * {total}\n)"), "/".to_owned(), total];
                record(&mut out, &Kind::SuccessRate.ratio_record(window), &expr, &labels);
            }
            burn_rates(&mut out, Kind::SuccessRate, objective, percentile);
        }
        if let Some((threshold, percentile)) = objective.latency_target() {
            let labels = [
                ("objective_name", objective.name()),
                ("objective_percentile", percentile.as_label()),
                ("objective_latency_threshold", threshold.as_label()),
            ];
            for window in WINDOWS {
                let fast = format!(
                    "sum by (objective_name, service_name) (rate(function_calls_duration_seconds_bucket{{objective_name={name}, {}}}[{window}]))",
                    le_matcher(threshold.as_label())
                );
                let all = format!(
                    "sum by (objective_name, service_name) (rate(function_calls_duration_seconds_count{{objective_name={name}}}[{window}]))"
                );
                let expr = [format!("1 - (\n  {fast}\n  /\n  {all}\n)")];
                record(&mut out, &Kind::Latency.ratio_record(window), &expr, &labels);
            }
            burn_rates(&mut out, Kind::Latency, objective, percentile);
        }
        if let Some(percentile) = objective.success_rate_target() {
            let target = format!("{} % of calls succeeding", percentile.as_label());
            for severity in [Severity::Page, Severity::Ticket] {
                alert(&mut out, objective, Kind::SuccessRate, severity, &name, &target, percentile);
            }
        }
        if let Some((threshold, percentile)) = objective.latency_target() {
            let target = format!("{} % of calls taking at most {} s", percentile.as_label(), threshold.as_label());
            for severity in [Severity::Page, Severity::Ticket] {
                alert(&mut out, objective, Kind::Latency, severity, &name, &target, percentile);
            }
        }
    }
    out
}

/// The burn rate of every window: the recorded error ratio over the budget. Like the ratios, it
/// names its objective in a static label too (the value the query gives it anyway), so the rules
/// of two objectives never look alike to `promtool check rules`'s duplicate-rule lint.
fn burn_rates(out: &mut String, kind: Kind, objective: &Objective, percentile: Percentile) {
    let name = promql_string(objective.name());
    for window in WINDOWS {
        let expr = [format!("{}{{objective_name={name}}} / {}", kind.ratio_record(window), error_budget(percentile))];
        record(out, &kind.burn_record(window), &expr, &[("objective_name", objective.name())]);
    }
}

fn record(out: &mut String, name: &str, expr: &[String], labels: &[(&str, &str)]) {
    let _ = writeln!(out, "      - record: {name}");
    write_expr(out, expr);
    if !labels.is_empty() {
        out.push_str("        labels:\n");
        for (key, value) in labels {
            let _ = writeln!(out, "          {key}: {}", yaml_string(value));
        }
    }
}

/// `expr: |-` and the lines, as a literal block: what is inside (quotes, `#`, `: `) stays literal.
fn write_expr(out: &mut String, parts: &[String]) {
    out.push_str("        expr: |-\n");
    for line in parts.iter().flat_map(|p| p.lines()) {
        let _ = writeln!(out, "          {line}");
    }
}

fn alert(out: &mut String, objective: &Objective, kind: Kind, severity: Severity, name: &str, target: &str, percentile: Percentile) {
    let [(long1, short1, factor1), (long2, short2, factor2)] = severity.conditions();
    let condition = |long: &str, short: &str, factor: &str| {
        format!(
            "(\n  {}{{objective_name={name}}} > {factor}\n  and\n  {}{{objective_name={name}}} > {factor}\n)",
            kind.burn_record(long),
            kind.burn_record(short)
        )
    };
    let _ = writeln!(out, "      - alert: {}", kind.alert_name(severity));
    write_expr(out, &[condition(long1, short1, factor1), "or".to_owned(), condition(long2, short2, factor2)]);
    let _ = writeln!(
        out,
        "        labels:\n          severity: {}\n          objective_name: {}",
        yaml_string(severity.as_label()),
        // Alert labels are templates too: `{{` in a name must print, not open an action.
        yaml_string(&template_literal(objective.name()))
    );
    let what = match kind {
        Kind::SuccessRate => "Success rate",
        Kind::Latency => "Latency",
    };
    let speed = match severity {
        Severity::Page => "fast",
        Severity::Ticket => "steadily",
    };
    let shown = template_literal(objective.name());
    let summary = format!("{what} of objective \"{shown}\" is burning its error budget {speed}");
    let cause = match kind {
        Kind::SuccessRate => "errors are".to_owned(),
        Kind::Latency => format!("calls slower than {} s are", objective.latency_target().map_or("", |(t, _)| t.as_label())),
    };
    let description = format!(
        "Service {{{{ $labels.service_name }}}}: objective \"{shown}\" targets {target} (error budget {budget}); \
         {cause} spending the budget more than {factor1}x as fast as sustainable over both {long1} and {short1}, \
         or more than {factor2}x over both {long2} and {short2}.",
        budget = error_budget(percentile),
    );
    let _ = writeln!(
        out,
        "        annotations:\n          summary: {}\n          description: {}",
        yaml_string(&summary),
        yaml_string(&description)
    );
}

/// The `le` matcher of the bucket at `bound`: exact for `0.25`; for a whole number both the
/// spelling of Prometheus 2 and of flext-obs (`le="1"`) and that of Prometheus 3, which stores
/// bounds as floats (`le="1.0"`).
fn le_matcher(bound: &str) -> String {
    if bound.contains('.') {
        format!("le={}", promql_string(bound))
    } else {
        format!("le=~{}", promql_string(&format!("{bound}|{bound}\\.0")))
    }
}
