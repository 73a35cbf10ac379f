//! `global()` on a bad environment: every valid variable still applies, the refused ones are
//! reported once on standard error and by `flext_obs::config_errors()`. The environment must be
//! set before the process-wide instance exists, so the test runs itself again as a child process.

use std::process::Command;

const CHILD: &str = "FLEXT_TEST_GLOBAL_ENV_CHILD";

#[test]
fn global_on_a_bad_environment_keeps_every_valid_setting_and_names_the_refused_ones() {
    let exe = std::env::current_exe().unwrap();
    let long = "x".repeat(5_000);
    let output = Command::new(exe)
        .args(["--exact", "child_reads_the_global_instance", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("FLEXT_SERVICE_NAME", "kept-service")
        .env("FLEXT_SERVICE_VERSION", &long)
        .env("FLEXT_MAX_SERIES_PER_METRIC", "lots")
        .env("FLEXT_RAW_HISTORY", "7")
        .env("FLEXT_LOG_LEVEL", "warning")
        .env("FLEXT_SUMMARY_WINDOW", "0")
        .env("FLEXT_TRACING_SPANS", "on")
        .env("FLEXT_EXCEPTION_LOGS_PER_SECOND", "off")
        .env_remove("AUTOMETRICS_SERVICE_NAME")
        .env_remove("OTEL_SERVICE_NAME")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child test ran:\n{stdout}");
    for var in ["FLEXT_SERVICE_VERSION", "FLEXT_MAX_SERIES_PER_METRIC", "FLEXT_SUMMARY_WINDOW"] {
        let reports = stderr.lines().filter(|l| l.starts_with(&format!("flext-obs: environment variable {var}="))).count();
        assert_eq!(reports, 1, "{var} reported once on stderr:\n{stderr}");
    }
    assert!(!stderr.contains("using the default configuration"), "{stderr}");
}

#[test]
fn child_reads_the_global_instance() {
    if std::env::var_os(CHILD).is_none() {
        return; // only meaningful in the child process started above
    }
    let config = flext_obs::global().config();
    assert_eq!(config.service_name(), "kept-service");
    assert_eq!(config.store().raw_history, 7);
    assert_eq!(config.log_level(), flext_obs::LogLevel::Warning);
    assert_eq!(config.store().max_series_per_metric, 2_000, "refused: the default");
    assert_eq!(config.store().summary_window, 1_024, "refused: the default");
    assert_eq!(config.version(), None);
    let refused: Vec<&str> =
        flext_obs::config_errors().iter().map(|e| if let flext_obs::Error::Env { var, .. } = e { *var } else { "?" }).collect();
    assert_eq!(refused, ["FLEXT_MAX_SERIES_PER_METRIC", "FLEXT_SUMMARY_WINDOW", "FLEXT_SERVICE_VERSION"]);
    assert_eq!(flext_obs::config_errors().len(), 3, "the same list on every call");
    // The runtime switches follow the process-wide configuration.
    assert!(flext_obs::monitor::tracing_spans(), "FLEXT_TRACING_SPANS=on");
    assert_eq!(config.exception_logs_per_second(), 0, "FLEXT_EXCEPTION_LOGS_PER_SECOND=off");
    // The instance works with what was kept.
    flext_obs::global().store().counter("child_total", &[]).unwrap().increment();
    assert_eq!(flext_obs::global().metric_value("child_total", &[]), Some(1.0));
}
