//! The OpenTelemetry environment: the `OTEL_EXPORTER_OTLP_*` transport variables (generic and
//! per signal), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SERVICE_NAME`'s place in the order,
//! `OTEL_SDK_DISABLED`, `OTEL_TRACES_SAMPLER`/`_ARG` (with `FLEXT_TRACE_*` winning),
//! `OTEL_PROPAGATORS`, the export timeouts, and the peers' access variables. Every bad value is
//! an error naming its variable, and the lenient reader sets aside just that variable.

#![allow(clippy::float_cmp)] // the ratios are exact values given in the variables

use flext_obs::config::{HttpAuth, OtlpCompression, OtlpProtocol, Propagators, Signal};
use flext_obs::{Config, Error};
use std::time::Duration;

fn with(vars: &[(&str, &str)]) -> Result<Config, Error> {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Config::from_lookup(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

fn lenient(vars: &[(&str, &str)]) -> (Config, Vec<Error>) {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Config::from_lookup_lenient(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

/// A file that exists, for the certificate variables (its content is read by the exporter).
fn some_file() -> String {
    let path = std::env::temp_dir().join(format!("flext-obs-config-otel-{}.pem", std::process::id()));
    std::fs::write(&path, "not read by the configuration").unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn transport_variables_resolve_per_signal_with_the_signal_s_own_winning() {
    let file = some_file();
    let config = with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=x%2Cy"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", &file),
        ("OTEL_EXPORTER_OTLP_INSECURE", "false"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4318/custom"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "c=3"),
        ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "700"),
        ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE", &file),
        ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY", &file),
    ])
    .unwrap();
    let transports = config.otlp_transports();
    let traces = transports.target(Signal::Traces).unwrap();
    assert_eq!(traces.url, "http://traces:4318/custom", "verbatim");
    assert_eq!(
        (traces.protocol, traces.compression, traces.timeout),
        (OtlpProtocol::HttpProtobuf, OtlpCompression::Gzip, Duration::from_millis(2500))
    );
    assert_eq!(traces.headers, [("a".to_owned(), "1".to_owned()), ("b".to_owned(), "x,y".to_owned())]);
    assert_eq!(traces.tls.ca_certificate.as_deref(), Some(std::path::Path::new(&file)));
    let logs = transports.target(Signal::Logs).unwrap();
    assert_eq!(logs.url, "http://collector:4318/v1/logs");
    assert_eq!(
        (logs.protocol, logs.compression, logs.timeout),
        (OtlpProtocol::HttpJson, OtlpCompression::None, Duration::from_millis(700))
    );
    assert_eq!(logs.headers, [("c".to_owned(), "3".to_owned())]);
    let metrics = transports.target(Signal::Metrics).unwrap();
    assert_eq!(metrics.url, "http://collector:4318/v1/metrics");
    assert!(metrics.tls.client_certificate.is_some() && metrics.tls.client_key.is_some());
    assert!(logs.tls.client_certificate.is_none());
    assert_eq!(transports.generic.insecure, Some(false));
    assert_eq!(with(&[]).unwrap().otlp_transports().target(Signal::Traces), None);
}

#[test]
fn bad_values_are_errors_naming_the_variable() {
    let file = some_file();
    let cases: &[(&str, &str, &str)] = &[
        ("OTEL_EXPORTER_OTLP_HEADERS", "novalue", "key=value"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "k=%zz", "%-escape"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "bad name=1", "token"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "k=a%0Db", "control characters"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "br", "gzip or none"),
        ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "zstd", "gzip or none"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "0", "milliseconds"),
        ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "10s", "milliseconds"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift", "http/protobuf, http/json or grpc"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"),
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://localhost:4317/v1/logs", "port 4317"),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "metrics:4318", "URL with a host"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem", "readable PEM file"),
        ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/nonexistent/key.pem", "readable PEM file"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "maybe", "a boolean"),
        ("OTEL_SDK_DISABLED", "perhaps", "a boolean"),
        ("OTEL_RESOURCE_ATTRIBUTES", "team", "key=value"),
        ("OTEL_TRACES_SAMPLER", "sometimes", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER", "jaeger_remote", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5", "a number from 0 to 1"),
        ("OTEL_PROPAGATORS", "tracecontext,b3", "tracecontext, baggage, or none"),
        ("OTEL_METRIC_EXPORT_TIMEOUT", "0", "milliseconds"),
        ("FLEXT_PUSH_GATEWAY_CERTIFICATE", "/nonexistent.pem", "readable PEM file"),
        ("FLEXT_PUSH_GATEWAY_PASSWORD", "secret", "needs its user in FLEXT_PUSH_GATEWAY_USER"),
        ("FLEXT_ALERTMANAGER_BEARER_TOKEN", "two words", "letters, digits"),
        ("FLEXT_ALERTMANAGER_USER", "a:b", "without ':'"),
        ("FLEXT_ALERTMANAGER_CLIENT_CERTIFICATE", &file, "needs its key in FLEXT_ALERTMANAGER_CLIENT_KEY"),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &file, "needs its certificate in OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
        ("OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE", &file, "needs its key in OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY"),
    ];
    for &(var, value, expected) in cases {
        let mut vars = vec![(var, value)];
        if var.starts_with("OTEL_EXPORTER_OTLP_") && !var.ends_with("ENDPOINT") {
            vars.push(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"));
        }
        let err = with(&vars).unwrap_err();
        let Error::Env { var: named, expected: said, .. } = &err else { panic!("{var}={value}: not an env error: {err}") };
        assert_eq!(*named, var, "{var}={value}: {err}");
        assert!(said.contains(expected), "{var}={value}: {said:?} should say {expected:?}");
        let (config, refused) =
            lenient(&[(var, value), ("FLEXT_SERVICE_NAME", "kept"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]);
        let refused: Vec<&str> = refused.iter().map(|e| if let Error::Env { var, .. } = e { *var } else { "?" }).collect();
        assert_eq!(refused, [var], "{var}={value}: the lenient reader sets aside just it");
        assert_eq!(config.service_name(), "kept");
    }
    // Secrets are not repeated in the error.
    let err = with(&[("FLEXT_PUSH_GATEWAY_PASSWORD", "hunter2")]).unwrap_err().to_string();
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn resource_attributes_service_name_order_disabled_and_propagators() {
    let config = with(&[
        ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-resource, deployment.environment.name=prod%20eu,team=a=b"),
        ("OTEL_SDK_DISABLED", "true"),
        ("OTEL_PROPAGATORS", "baggage"),
    ])
    .unwrap();
    assert_eq!(config.service_name(), "from-resource", "used when no service-name variable is set");
    assert_eq!(config.resource_attributes().get("deployment.environment.name"), Some("prod eu"));
    assert_eq!(config.resource_attributes().get("team"), Some("a=b"));
    assert!(config.sdk_disabled());
    assert_eq!(config.propagators(), Propagators { tracecontext: false, baggage: true });
    let named = with(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-resource"), ("OTEL_SERVICE_NAME", "from-otel")]).unwrap();
    assert_eq!(named.service_name(), "from-otel", "OTEL_SERVICE_NAME wins over the resource's service.name");
    let ours = with(&[("FLEXT_SERVICE_NAME", "ours"), ("OTEL_RESOURCE_ATTRIBUTES", "service.name=r")]).unwrap();
    assert_eq!(ours.service_name(), "ours");
    let auto = with(&[("AUTOMETRICS_SERVICE_NAME", "am"), ("OTEL_SERVICE_NAME", "otel")]).unwrap();
    assert_eq!(auto.service_name(), "am", "the Autometrics order: its own variable first");
    let default = with(&[]).unwrap();
    assert!(!default.sdk_disabled());
    assert_eq!(default.propagators(), Propagators { tracecontext: true, baggage: true });
    assert_eq!(with(&[("OTEL_PROPAGATORS", "none")]).unwrap().propagators(), Propagators { tracecontext: false, baggage: false });
}

#[test]
fn otel_samplers_map_onto_ours_and_flext_variables_win() {
    let sampler = |vars: &[(&str, &str)]| with(vars).unwrap().sampler();
    let s = sampler(&[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0.25")]);
    assert_eq!((s.ratio(), s.parent_based()), (0.25, false));
    let s = sampler(&[("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0.5")]);
    assert_eq!((s.ratio(), s.parent_based()), (0.5, true));
    let s = sampler(&[("OTEL_TRACES_SAMPLER", "always_off")]);
    assert_eq!((s.ratio(), s.parent_based(), s.keep_errors()), (0.0, false, false));
    let s = sampler(&[("OTEL_TRACES_SAMPLER", "always_on")]);
    assert_eq!((s.ratio(), s.parent_based()), (1.0, false));
    let s = sampler(&[("OTEL_TRACES_SAMPLER", "parentbased_always_off")]);
    assert_eq!((s.ratio(), s.parent_based()), (0.0, true));
    let s = sampler(&[("OTEL_TRACES_SAMPLER", "traceidratio")]);
    assert_eq!(s.ratio(), 1.0, "the argument defaults to 1");
    let s = sampler(&[
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
        ("FLEXT_TRACE_SAMPLE_RATIO", "0.1"),
        ("FLEXT_TRACE_PARENT_BASED", "false"),
    ]);
    assert_eq!((s.ratio(), s.parent_based()), (0.1, false), "FLEXT_TRACE_* win when both are set");
    let s = sampler(&[("OTEL_TRACES_SAMPLER", "always_off"), ("FLEXT_TRACE_KEEP_ERRORS", "true")]);
    assert!(s.keep_errors());
}

#[test]
fn export_timeouts_and_peer_access_are_read() {
    let config = with(&[
        ("OTEL_BSP_EXPORT_TIMEOUT", "1500"),
        ("OTEL_METRIC_EXPORT_TIMEOUT", "2500"),
        ("FLEXT_PUSH_GATEWAY_USER", "ci"),
        ("FLEXT_PUSH_GATEWAY_PASSWORD", "pw"),
        ("FLEXT_ALERTMANAGER_BEARER_TOKEN", "abc.def"),
    ])
    .unwrap();
    assert_eq!(config.otlp().export_timeout, Duration::from_millis(1500));
    assert_eq!(config.otlp().metric_export_timeout, Duration::from_millis(2500));
    assert_eq!(config.push_access().auth, HttpAuth::basic("ci", "pw").unwrap());
    assert_eq!(config.alertmanager_access().auth, HttpAuth::bearer("abc.def").unwrap());
    let both = with(&[("FLEXT_ALERTMANAGER_USER", "u"), ("FLEXT_ALERTMANAGER_BEARER_TOKEN", "t")]).unwrap_err();
    assert!(matches!(both, Error::Env { var: "FLEXT_ALERTMANAGER_BEARER_TOKEN", .. }), "{both}");
}

/// The variable names a table row covers: its backticked names, with
/// `OTEL_EXPORTER_OTLP[_{TRACES,METRICS,LOGS}]_X` (generic and per signal) and
/// `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_X` (per signal) spelled out.
fn covered(table: &str) -> Vec<String> {
    let mut names = Vec::new();
    for token in table.split('`').skip(1).step_by(2) {
        if let Some(suffix) = token.strip_prefix("OTEL_EXPORTER_OTLP[_{TRACES,METRICS,LOGS}]_") {
            names.push(format!("OTEL_EXPORTER_OTLP_{suffix}"));
            names.extend(["TRACES", "METRICS", "LOGS"].map(|s| format!("OTEL_EXPORTER_OTLP_{s}_{suffix}")));
        } else if let Some(suffix) = token.strip_prefix("OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_") {
            names.extend(["TRACES", "METRICS", "LOGS"].map(|s| format!("OTEL_EXPORTER_OTLP_{s}_{suffix}")));
        } else {
            names.push(token.to_owned());
        }
    }
    names
}

/// The rows of the table that starts with `| variable | meaning`.
fn table_of(text: &str, line_prefix: &str) -> String {
    let lines: Vec<&str> = text.lines().map(|l| l.strip_prefix(line_prefix).unwrap_or(l)).collect();
    let start = lines.iter().position(|l| l.starts_with("| variable | meaning")).expect("the variables table");
    lines[start..].iter().take_while(|l| l.starts_with('|')).copied().collect::<Vec<_>>().join("\n")
}

#[test]
fn the_readme_and_the_module_docs_list_every_variable_read_in_one_table() {
    let readme = table_of(include_str!("../../README.md"), "");
    let module = table_of(include_str!("../../flext-obs/src/config.rs"), "//! ");
    let module = module.replace("[`MAX_TEXT_BYTES`]", "4,096").replace("[`Config::propagators`]", "`Config::propagators()`");
    assert_eq!(readme, module, "the README's table and the config module's are the same");
    let names = covered(&readme);
    for var in flext_obs::config::ENV_VARS {
        assert!(names.iter().any(|n| n == var), "{var} is read but not in the table");
    }
    for name in names.iter().filter(|n| n.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') && n.contains('_')) {
        assert!(flext_obs::config::ENV_VARS.contains(&name.as_str()), "{name} is in the table but not read");
    }
}
