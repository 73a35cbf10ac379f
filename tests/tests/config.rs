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
        ("FLEXT_LOG_LEVEL", "verbose", "one of debug, info, warning, error, critical"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", "an http:// URL with a host"),
        ("PROMETHEUS_PUSH_GATEWAY", "http://", "an http:// URL with a host"),
        ("FLEXT_ALERTMANAGER_URL", "ftp://x", "an http:// URL with a host"),
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
    ];
    for (var, value, expected) in cases {
        let err = with(&[(var, value)]).unwrap_err();
        assert_eq!(err, Error::Env { var, value: value.to_owned(), expected: expected.to_owned() }, "{var}={value}");
        assert_eq!(err.to_string(), format!("environment variable {var}={value:?} is invalid: expected {expected}"));
    }
}

#[test]
fn the_builder_validates_too() {
    assert!(Config::builder().push_gateway("nope").build().unwrap_err().to_string().contains("must be an http:// URL"));
    assert!(Config::builder().max_series_per_metric(0).build().is_err());
    assert!(Config::builder().default_buckets(&[]).build().is_err());
    assert!(Config::builder().retention(Some(Duration::ZERO)).build().is_err());
}
