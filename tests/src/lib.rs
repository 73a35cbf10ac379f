//! Behaviour tests for flext-obs live in `tests/`; this library only holds shared helpers.

use flext_obs::store::SeriesValue;
use flext_obs::{Config, Observability};

/// A fresh, isolated instance for one test.
///
/// # Panics
/// When the default configuration is refused, which would be a bug in itself.
pub fn fresh() -> Observability {
    Observability::new(Config::builder().service_name("tests").build().expect("valid config")).expect("valid store")
}

/// Sum of every series of metric `name` in the global store whose labels include all of `labels`.
pub fn sum(name: &str, labels: &[(&str, &str)]) -> f64 {
    flext_obs::global()
        .snapshot()
        .series
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|have| have == v)))
        .map(|s| match &s.value {
            SeriesValue::Histogram(h) => {
                #[allow(clippy::cast_precision_loss)]
                let count = h.count as f64;
                count
            }
            other => other.scalar().unwrap_or(0.0),
        })
        .sum()
}

/// Calls of `function` with `result` (ok, error, panic), over every caller.
pub fn calls(function: &str, result: &str) -> f64 {
    sum("function_calls_total", &[("function", function), ("result", result)])
}

/// Observations in `function`'s duration histogram.
pub fn timed(function: &str) -> f64 {
    sum("function_calls_duration_seconds", &[("function", function)])
}

/// `function`'s in-flight gauge.
pub fn in_flight(function: &str) -> f64 {
    sum("function_calls_concurrent", &[("function", function)])
}

/// The recent alerts raised by `function`.
pub fn alerts_of(function: &str) -> Vec<flext_obs::Alert> {
    flext_obs::alert::recent().into_iter().filter(|a| a.source_function() == Some(function)).collect()
}

/// The recent spans of `function`.
pub fn spans_of(function: &str) -> Vec<flext_obs::Span> {
    flext_obs::trace::recent_spans().into_iter().filter(|s| s.name() == function).collect()
}
