//! Service-level objectives from code, as the Autometrics specification defines them: an
//! [`Objective`] attached with `#[flext_monitor(objective = ..)]` adds `objective_name` and
//! `objective_percentile` to the function's `function_calls_total` series (success rate) and
//! `objective_name`, `objective_percentile` and `objective_latency_threshold` to its
//! `function_calls_duration_seconds` series (latency).

mod objective;

pub use objective::{Latency, Objective, Percentile};
