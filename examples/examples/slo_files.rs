//! Rules and dashboards from code: one objective, and the two subcommands of
//! `flext_obs::slo::cli` that turn it into a Prometheus rules file and Grafana dashboards.
//!
//! ```text
//! cargo run -p flext-obs-examples --example slo_files -- rules > rules.yml
//! promtool check rules rules.yml
//! cargo run -p flext-obs-examples --example slo_files -- dashboards grafana/
//! ```

use flext_obs::slo::{Latency, Objective, Percentile};

/// 99.9 % of calls succeed and 99 % take at most 250 ms.
const API: Objective = Objective::new("api").success_rate(Percentile::P99_9).latency(Latency::Ms250, Percentile::P99);

fn main() -> Result<(), flext_obs::Error> {
    if let Some(output) = flext_obs::slo::cli(std::env::args().skip(1), &[API]) {
        print!("{}", output?);
        return Ok(());
    }
    eprintln!("usage: slo_files rules > rules.yml | slo_files dashboards DIR");
    Ok(())
}
