//! Configuration from the environment: every malformed value is an error naming the variable.

#![allow(clippy::float_cmp)] // exact totals are the point: no lost or invented increments

use flext_obs::{Config, Error, LogLevel};
use std::time::Duration;

fn with(vars: &[(&str, &str)]) -> Result<Config, Error> {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Config::from_lookup(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

#[test]
fn good_values_are_read() {
    let config = with(&[
        ("FLEXT_OBSERVABILITY_ENABLED", "off"),
        ("FLEXT_LOG_LEVEL", "WARNING"),
        ("OTEL_SERVICE_NAME", "otel-name"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        ("PROMETHEUS_PUSH_GATEWAY", "http://127.0.0.1:9091"),
        ("FLEXT_ALERTMANAGER_URL", "http://127.0.0.1:9093/"),
        ("FLEXT_METRICS_ADDR", "127.0.0.1:9464"),
        ("FLEXT_MAX_SERIES_PER_METRIC", "50"),
        ("FLEXT_SERIES_RETENTION_SECS", "off"),
        ("FLEXT_SWEEP_INTERVAL_SECS", "30"),
        ("FLEXT_RAW_HISTORY", "0"),
        ("FLEXT_SUMMARY_WINDOW", "64"),
        ("FLEXT_HISTOGRAM_BUCKETS", "0.1, 1, 10"),
    ])
    .unwrap();
    assert!(!config.enabled());
    assert_eq!(config.log_level(), LogLevel::Warning);
    assert_eq!(config.service_name(), "otel-name");
    assert_eq!(config.otlp_endpoint(), Some("http://127.0.0.1:4318"));
    assert_eq!(config.push_gateway(), Some("http://127.0.0.1:9091"));
    assert_eq!(config.alertmanager_url(), Some("http://127.0.0.1:9093/"));
    assert_eq!(config.metrics_addr(), Some("127.0.0.1:9464".parse().unwrap()));
    assert_eq!(config.store().max_series_per_metric, 50);
    assert_eq!(config.store().retention, None);
    assert_eq!(config.sweep_interval(), Some(Duration::from_secs(30)));
    assert_eq!(config.store().raw_history, 0);
    assert_eq!(config.store().summary_window, 64);
    assert_eq!(&*config.store().default_buckets, &[0.1, 1.0, 10.0]);
}

#[test]
fn service_name_follows_the_autometrics_order_and_empty_counts_as_unset() {
    let all = [("AUTOMETRICS_SERVICE_NAME", "am-name"), ("OTEL_SERVICE_NAME", "otel-name"), ("FLEXT_SERVICE_NAME", "flext-name")];
    assert_eq!(with(&all).unwrap().service_name(), "am-name", "AUTOMETRICS_SERVICE_NAME first");
    assert_eq!(with(&all[1..]).unwrap().service_name(), "otel-name", "then OTEL_SERVICE_NAME");
    assert_eq!(with(&all[2..]).unwrap().service_name(), "flext-name", "then ours");
    let config =
        with(&[("AUTOMETRICS_SERVICE_NAME", " "), ("OTEL_SERVICE_NAME", "otel-name"), ("FLEXT_OBSERVABILITY_ENABLED", "")]).unwrap();
    assert_eq!(config.service_name(), "otel-name");
    assert!(config.enabled());
    let default = with(&[]).unwrap();
    assert_eq!(default.service_name(), "config", "the test binary's name without cargo's build hash");
    assert_eq!(default, with(&[]).unwrap());
}

#[test]
fn malformed_values_name_the_variable_the_value_and_what_was_expected() {
    let cases = [
        ("FLEXT_OBSERVABILITY_ENABLED", "maybe", "a boolean: true/false, 1/0, yes/no, on/off"),
        ("FLEXT_LOG_LEVEL", "verbose", "one of debug, info, warning, error, critical (or warn)"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", "an http:// or https:// URL with a host"),
        ("PROMETHEUS_PUSH_GATEWAY", "http://", "an http:// or https:// URL with a host"),
        ("FLEXT_ALERTMANAGER_URL", "ftp://x", "an http:// or https:// URL with a host"),
        ("FLEXT_METRICS_ADDR", "9464", "a socket address such as 127.0.0.1:9464"),
        ("FLEXT_MAX_SERIES_PER_METRIC", "0", "a whole number >= 1"),
        ("FLEXT_MAX_SERIES_PER_METRIC", "-5", "a whole number >= 1"),
        ("FLEXT_SERIES_RETENTION_SECS", "1.5", "a whole number of seconds >= 1, or off"),
        ("FLEXT_SWEEP_INTERVAL_SECS", "0", "a whole number of seconds >= 1, or off"),
        ("FLEXT_RAW_HISTORY", "lots", "a whole number >= 0"),
        ("FLEXT_SUMMARY_WINDOW", "0", "a whole number >= 1"),
        ("FLEXT_HISTOGRAM_BUCKETS", "1,x", "comma-separated numbers"),
        ("FLEXT_HISTOGRAM_BUCKETS", "2,1", "finite, strictly increasing numbers"),
        ("FLEXT_HISTOGRAM_BUCKETS", "1,inf", "finite, strictly increasing numbers"),
        ("FLEXT_STORE_LANES", "0", "a whole number from 1 to 64, or auto"),
        ("FLEXT_STORE_LANES", "65", "a whole number from 1 to 64, or auto"),
        ("FLEXT_STORE_LANES", "many", "a whole number from 1 to 64, or auto"),
    ];
    for (var, value, expected) in cases {
        let err = with(&[(var, value)]).unwrap_err();
        assert_eq!(err, Error::Env { var, value: value.to_owned(), expected: expected.to_owned() }, "{var}={value}");
        assert_eq!(err.to_string(), format!("environment variable {var}={value:?} is invalid: expected {expected}"));
    }
}

#[test]
fn the_builder_validates_too() {
    assert!(Config::builder().push_gateway("nope").build().unwrap_err().to_string().contains("an http:// or https:// URL"));
    assert!(Config::builder().max_series_per_metric(0).build().is_err());
    assert!(Config::builder().default_buckets(&[]).build().is_err());
    assert!(Config::builder().retention(Some(Duration::ZERO)).build().is_err());
    assert!(Config::builder().store_lanes(Some(0)).build().unwrap_err().to_string().contains("must be from 1 to 64"));
    assert!(Config::builder().store_lanes(Some(65)).build().is_err());
}

#[test]
fn the_lane_count_is_read_from_the_environment() {
    assert_eq!(with(&[("FLEXT_STORE_LANES", "64")]).unwrap().store().lanes, Some(64));
    assert_eq!(with(&[("FLEXT_STORE_LANES", " 1 ")]).unwrap().store().lanes, Some(1));
    assert_eq!(with(&[("FLEXT_STORE_LANES", "AUTO")]).unwrap().store().lanes, None);
    assert_eq!(with(&[]).unwrap().store().lanes, None);
}

fn lenient(vars: &[(&str, &str)]) -> (Config, Vec<Error>) {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Config::from_lookup_lenient(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

fn refused_vars(errors: &[Error]) -> Vec<&'static str> {
    errors.iter().map(|e| if let Error::Env { var, .. } = e { *var } else { panic!("not an env error: {e}") }).collect()
}

#[test]
fn texts_over_the_byte_limit_are_refused_where_the_config_is_built_naming_the_variable() {
    let limit = flext_obs::config::MAX_TEXT_BYTES;
    assert_eq!(limit, 4096, "the label value bound of the store");
    let fits = "v".repeat(limit);
    let long = "v".repeat(limit + 1);
    for var in ["AUTOMETRICS_SERVICE_NAME", "OTEL_SERVICE_NAME", "FLEXT_SERVICE_NAME", "FLEXT_SERVICE_VERSION", "FLEXT_SERVICE_COMMIT"] {
        assert!(with(&[(var, &fits)]).is_ok(), "{var} at the limit");
        let err = with(&[(var, &long)]).unwrap_err();
        let Error::Env { var: named, value, expected } = &err else { panic!("{err}") };
        assert_eq!((*named, expected.as_str()), (var, "text of at most 4096 bytes"));
        assert_eq!(value, &format!("{}...<4097 bytes>", "v".repeat(32)), "the value is quoted by its head and length");
    }
    // A config that passes is one the store takes: build_info gets the longest version.
    let config = with(&[("FLEXT_SERVICE_VERSION", &fits), ("FLEXT_SERVICE_NAME", &fits)]).unwrap();
    let obs = flext_obs::Observability::new(config).unwrap();
    assert!(obs.snapshot().series("build_info", &[("version", &fits)]).next().is_some());
    for build in [
        Config::builder().service_name(long.clone()).build(),
        Config::builder().build_info(long.clone(), "abc").build(),
        Config::builder().build_info("1.0", long.clone()).build(),
    ] {
        assert!(build.unwrap_err().to_string().contains("must be at most 4096 bytes"));
    }
}

#[test]
fn the_lenient_reading_keeps_every_valid_setting_and_returns_each_refused_variable() {
    let long = "n".repeat(5_000);
    let (config, errors) = lenient(&[
        ("AUTOMETRICS_SERVICE_NAME", &long),
        ("OTEL_SERVICE_NAME", "orders"),
        ("FLEXT_LOG_LEVEL", "loud"),
        ("FLEXT_METRICS_ADDR", "127.0.0.1:9999"),
        ("FLEXT_MAX_SERIES_PER_METRIC", "lots"),
        ("FLEXT_RAW_HISTORY", "7"),
        ("FLEXT_SERVICE_COMMIT", &long),
        ("FLEXT_TRACE_SAMPLE_RATIO", "2"),
        ("FLEXT_MAX_SERIES", "100"),
    ]);
    assert_eq!(
        refused_vars(&errors),
        ["FLEXT_LOG_LEVEL", "AUTOMETRICS_SERVICE_NAME", "FLEXT_MAX_SERIES_PER_METRIC", "FLEXT_SERVICE_COMMIT", "FLEXT_TRACE_SAMPLE_RATIO"]
    );
    assert_eq!(config.service_name(), "orders", "the next variable in the service-name order applies");
    assert_eq!(config.metrics_addr(), Some("127.0.0.1:9999".parse().unwrap()));
    assert_eq!(config.store().raw_history, 7);
    assert_eq!(config.store().max_series, Some(100));
    assert_eq!(config.log_level(), LogLevel::Info, "a refused variable leaves its default");
    assert_eq!(config.commit(), None);
    // All valid: the same config as the strict reading, and no error.
    let good = [("FLEXT_SERVICE_NAME", "a"), ("FLEXT_RAW_HISTORY", "3")];
    assert_eq!(lenient(&good), (with(&good).unwrap(), vec![]));
    // The strict reading still fails on the first.
    assert!(matches!(with(&[("FLEXT_LOG_LEVEL", "loud"), ("FLEXT_RAW_HISTORY", "x")]), Err(Error::Env { var: "FLEXT_LOG_LEVEL", .. })));
}

#[test]
fn the_new_store_bounds_are_read_from_the_environment() {
    let config = with(&[("FLEXT_RAW_HISTORY_NAMES", "12"), ("FLEXT_MAX_SERIES", "off")]).unwrap();
    assert_eq!((config.store().raw_history_names, config.store().max_series), (12, None));
    assert_eq!(with(&[]).unwrap().store().raw_history_names, 256);
    let err = with(&[("FLEXT_RAW_HISTORY_NAMES", "-1")]).unwrap_err();
    assert_eq!(err.to_string(), "environment variable FLEXT_RAW_HISTORY_NAMES=\"-1\" is invalid: expected a whole number >= 0");
}

#[test]
fn the_log_level_takes_warn_as_well_as_warning() {
    for spelling in ["warn", "WARN", "warning"] {
        let config = Config::from_lookup(|var| (var == "FLEXT_LOG_LEVEL").then(|| spelling.to_owned())).unwrap();
        assert_eq!(config.log_level(), LogLevel::Warning, "{spelling}");
    }
}
