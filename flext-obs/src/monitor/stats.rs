//! Per-function totals read back from a snapshot.

use super::{CALLS, DURATION, PANICS};

/// Per-function totals read from a snapshot: what a dashboard shows first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FunctionStats {
    /// The `function` label.
    pub function: String,
    /// The `module` label.
    pub module: String,
    /// Calls, every result.
    pub calls: u64,
    /// Calls that ended well.
    pub ok: u64,
    /// Calls counted `result="error"`: those that returned an error or panicked.
    pub errors: u64,
    /// Of those, the calls that panicked (`flext_function_panics_total`).
    pub panics: u64,
    /// Calls by the value of their `result` label (`ok`, `error`), for a split by result.
    pub by_result: std::collections::BTreeMap<String, u64>,
    /// Estimated median duration, in seconds.
    pub p50: Option<f64>,
    /// Estimated 90th-percentile duration, in seconds.
    pub p90: Option<f64>,
    /// Estimated 99th-percentile duration, in seconds.
    pub p99: Option<f64>,
}

impl FunctionStats {
    /// Errors (panics included) over calls (0 without calls).
    #[allow(clippy::cast_precision_loss)]
    pub fn error_rate(&self) -> f64 {
        if self.calls == 0 { 0.0 } else { self.errors as f64 / self.calls as f64 }
    }
}

/// A function's duration series added up: count, sum, cumulative buckets.
type MergedDurations = (u64, f64, Vec<(f64, u64)>);

/// Per-function calls, errors, panics and latency quantiles from `snapshot`, sorted by function;
/// functions not called yet (whose counters read 0 from start-up) are left out.
///
/// ```
/// #[flext_obs::flext_monitor]
/// fn lookup(id: u32) -> Result<u32, String> { if id == 0 { Err("no id 0".into()) } else { Ok(id) } }
/// let _ = lookup(1);
/// let _ = lookup(0);
/// let stats = flext_obs::monitor::function_stats(&flext_obs::global().snapshot());
/// let lookup = stats.iter().find(|s| s.function == "lookup").unwrap();
/// assert_eq!((lookup.calls, lookup.errors, lookup.error_rate()), (2, 1, 0.5));
/// assert_eq!(lookup.by_result["ok"], 1); // split by result
/// assert_eq!(lookup.by_result["error"], 1);
/// ```
pub fn function_stats(snapshot: &crate::store::Snapshot) -> Vec<FunctionStats> {
    use crate::store::SeriesValue;
    let mut stats: std::collections::BTreeMap<(String, String), FunctionStats> = std::collections::BTreeMap::new();
    // A function's durations are one histogram series per `error_type` (and one for calls that
    // did not fail): added up here, bucket by bucket, before the quantiles are read.
    let mut durations: std::collections::BTreeMap<(String, String), MergedDurations> = std::collections::BTreeMap::new();
    for series in &snapshot.series {
        let (Some(function), Some(module)) = (series.labels.get("function"), series.labels.get("module")) else { continue };
        let entry = stats.entry((function.clone(), module.clone())).or_insert_with(|| FunctionStats {
            function: function.clone(),
            module: module.clone(),
            calls: 0,
            ok: 0,
            errors: 0,
            panics: 0,
            by_result: std::collections::BTreeMap::new(),
            p50: None,
            p90: None,
            p99: None,
        });
        match (series.name.as_str(), &series.value) {
            (CALLS, SeriesValue::Counter { value }) => {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // counts of whole calls
                let n = *value as u64;
                entry.calls += n;
                let result = series.labels.get("result").map_or("", String::as_str);
                if result == "error" {
                    entry.errors += n;
                } else {
                    entry.ok += n;
                }
                *entry.by_result.entry(result.to_owned()).or_default() += n;
            }
            (PANICS, SeriesValue::Counter { value }) => {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // counts of whole calls
                let n = *value as u64;
                entry.panics += n;
            }
            (DURATION, SeriesValue::Histogram(h)) => {
                let (count, sum, buckets) = durations.entry((function.clone(), module.clone())).or_default();
                if buckets.is_empty() {
                    buckets.clone_from(&h.buckets);
                } else if buckets.len() == h.buckets.len() && buckets.iter().zip(&h.buckets).all(|(a, b)| a.0.to_bits() == b.0.to_bits()) {
                    for (total, added) in buckets.iter_mut().zip(&h.buckets) {
                        total.1 += added.1;
                    }
                } else {
                    continue; // other bounds (a changed configuration): not mixed in
                }
                *count += h.count;
                *sum += h.sum;
            }
            _ => {}
        }
    }
    for (key, (count, sum, buckets)) in durations {
        if let Some(entry) = stats.get_mut(&key) {
            let merged = crate::store::HistogramValue::new(count, sum, buckets);
            (entry.p50, entry.p90, entry.p99) = (merged.p50, merged.p90, merged.p99);
        }
    }
    stats.into_values().filter(|s| s.calls > 0).collect()
}
