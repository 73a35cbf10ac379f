//! Service-level objectives from code, as the Autometrics specification defines them: an
//! [`Objective`] attached with `#[flext_monitor(objective = ..)]` adds `objective_name` and
//! `objective_percentile` to the function's `function_calls_total` series (success rate) and
//! `objective_name`, `objective_percentile` and `objective_latency_threshold` to its
//! `function_calls_duration_seconds` series (latency).
//!
//! From the same objectives, [`rules`] writes the Prometheus recording and alerting rules
//! (multi-window, multi-burn-rate), [`dashboards`] the Grafana dashboards, and [`cli`] offers both as `rules` / `dashboards DIR` subcommands of a
//! service binary.
//!
//! # Recorded series
//!
//! For each objective `X` and each window `W` in 5m, 30m, 1h, 2h, 6h, 1d, 3d, grouped
//! `by (objective_name, service_name)` and carrying `objective_percentile` (and, for latency,
//! `objective_latency_threshold`) as labels:
//!
//! | Series | Value |
//! |--------|-------|
//! | `flext_slo:error_ratio:rateW` | share of calls with `result="error"` over `W` (0 when none failed) |
//! | `flext_slo:burn_rate:rateW` | that share divided by the error budget, `1 - target` |
//! | `flext_slo:latency_error_ratio:rateW` | share of calls slower than the threshold over `W` |
//! | `flext_slo:latency_burn_rate:rateW` | that share divided by the error budget |
//!
//! A burn rate of 1 spends exactly the budget over the SLO period; 14.4 spends 2 % of a 30-day
//! budget in one hour.
//!
//! # Alerts
//!
//! | Alert | Fires when the burn rate is above | `severity` |
//! |-------|-----------------------------------|------------|
//! | `FlextSloSuccessRatePage`, `FlextSloLatencyPage` | 14.4 over 1h and 5m, or 6 over 6h and 30m | `page` |
//! | `FlextSloSuccessRateTicket`, `FlextSloLatencyTicket` | 3 over 1d and 2h, or 1 over 3d and 6h | `ticket` |
//!
//! Each alert carries `severity`, `objective_name`, `service_name`, `objective_percentile` (and for
//! latency `objective_latency_threshold`), and `summary` and `description` annotations naming the
//! objective, its target and the windows.
//!
//! The long window makes an alert significant (enough budget spent); the short one makes it reset
//! soon after the burn stops. No `for:` clause: the short window already filters blips.

mod cli;
mod dashboards;
mod objective;
mod quote;
mod rules;

pub use cli::cli;
pub use dashboards::{Dashboard, dashboards};
pub use objective::{Latency, Objective, Percentile};
pub use rules::rules;
