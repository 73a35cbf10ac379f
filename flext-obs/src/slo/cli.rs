//! The two subcommands a service binary can offer so that its rules and dashboards come from the
//! objectives it is compiled with: `rules` and `dashboards DIR`.

use super::Objective;
use super::dashboards::dashboards;
use super::rules::rules;
use crate::Error;
use std::fmt::Write as _;
use std::path::Path;

/// Runs `rules` (returns the rules file of [`rules`](super::rules) to print) or
/// `dashboards DIR` (writes the JSON files of [`dashboards`](super::dashboards) into `DIR`,
/// creating it, and returns the list of files written) for `objectives`. `args` are the
/// program's arguments without the program name (`std::env::args().skip(1)`).
///
/// Returns `None` when the first argument is neither subcommand, so a service calls this first
/// and otherwise runs as usual. Why in the library: the binary that declares the objectives is
/// the only place that knows them all, and each service would otherwise write the same glue.
///
/// ```no_run
/// use flext_obs::slo::{Objective, Percentile};
/// const API: Objective = Objective::new("api").success_rate(Percentile::P99_9);
///
/// fn main() -> Result<(), flext_obs::Error> {
///     if let Some(output) = flext_obs::slo::cli(std::env::args().skip(1), &[API]) {
///         print!("{}", output?); // `my-service rules > rules.yml`, `my-service dashboards grafana/`
///         return Ok(());
///     }
///     // ... the service itself
///     Ok(())
/// }
/// ```
///
/// ```
/// use flext_obs::slo::{Objective, Percentile, cli};
/// const API: Objective = Objective::new("api").success_rate(Percentile::P99_9);
///
/// let rules = cli(["rules".to_owned()], &[API]).expect("a subcommand")?;
/// assert!(rules.starts_with("# Prometheus rules"));
/// let dir = std::env::temp_dir().join(format!("flext-obs-cli-doctest-{}", std::process::id()));
/// let written = cli(["dashboards".to_owned(), dir.display().to_string()], &[API]).expect("a subcommand")?;
/// assert_eq!(written.lines().count(), 3);
/// assert!(dir.join("flext-slos.json").exists());
/// assert!(cli(["--seconds".to_owned(), "5".to_owned()], &[API]).is_none());
/// assert!(cli(["dashboards".to_owned()], &[API]).expect("a subcommand").is_err());
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn cli(args: impl IntoIterator<Item = String>, objectives: &[Objective]) -> Option<Result<String, Error>> {
    let mut args = args.into_iter();
    let command = args.next()?;
    let rest: Vec<String> = args.collect();
    match (command.as_str(), rest.as_slice()) {
        ("rules", []) => Some(Ok(rules(objectives))),
        ("dashboards", [dir]) => Some(write_dashboards(Path::new(dir), objectives)),
        ("rules" | "dashboards", _) => Some(Err(Error::invalid(
            "slo::cli",
            "args",
            std::iter::once(command).chain(rest).collect::<Vec<_>>().join(" "),
            "expected `rules` or `dashboards DIR`",
        ))),
        _ => None,
    }
}

fn write_dashboards(dir: &Path, objectives: &[Objective]) -> Result<String, Error> {
    let io = |path: &Path, e: std::io::Error| Error::Io { path: path.display().to_string(), message: e.to_string() };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut written = String::new();
    for dashboard in dashboards(objectives) {
        let path = dir.join(&dashboard.file_name);
        let mut text = serde_json::to_string_pretty(&dashboard.json).expect("a serde_json::Value always serializes");
        text.push('\n');
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        let _ = writeln!(written, "wrote {}", path.display());
    }
    Ok(written)
}
