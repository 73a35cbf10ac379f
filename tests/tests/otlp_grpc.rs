//! OTLP/gRPC (feature `otlp-grpc`): a tonic receiver serving the official collector trace
//! service decodes the same trace the HTTP tests check, with the configured headers as metadata
//! and gzip message compression; the specification's retryable codes are retried, others not;
//! a `:4317` endpoint needs `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`.

use flext_obs::config::OtlpSettings;
use flext_obs::export::otlp::OtlpExporter;
use flext_obs::{Config, Error, flext_monitor};
use flext_obs_tests::grpc_receiver::GrpcReceiver;
use flext_obs_tests::otlp_receiver::string_attr;
use std::time::Duration;

#[flext_monitor]
fn reserve(seats: u32) -> Result<u32, String> {
    if seats > 9 { Err(format!("{seats} seats is too many")) } else { Ok(seats) }
}

fn config(vars: &[(&'static str, String)]) -> Result<Config, Error> {
    Config::from_lookup(|var| vars.iter().find(|(k, _)| *k == var).map(|(_, v)| v.clone()))
}

#[test]
fn a_tonic_receiver_decodes_the_trace_with_metadata_gzip_and_retries() {
    flext_obs::init(Config::builder().service_name("grpc-caller").build().unwrap()).unwrap();
    let receiver = GrpcReceiver::start();
    let config = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k%3D1,tenant=acme".to_owned()),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_owned()),
    ])
    .unwrap();
    let settings =
        OtlpSettings { schedule_delay: Duration::from_secs(600), export_timeout: Duration::from_secs(5), ..OtlpSettings::default() };
    let exporter = OtlpExporter::from_config(&config).unwrap().unwrap().settings(settings).metrics(false).logs(false);
    assert_eq!(exporter.traces_url(), Some(receiver.endpoint().as_str()), "gRPC takes the endpoint as it is");
    let handle = exporter.install(flext_obs::global().clone()).unwrap();

    assert_eq!(reserve(2), Ok(2));
    assert!(reserve(12).is_err());
    handle.flush().unwrap();
    let calls = receiver.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    let meta = |name: &str| call.metadata.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(meta("x-api-key").as_deref(), Some("k=1"));
    assert_eq!(meta("tenant").as_deref(), Some("acme"));
    assert_eq!(meta("grpc-encoding").as_deref(), Some("gzip"));
    let resource = &call.request.resource_spans[0];
    assert_eq!(string_attr(&resource.resource.as_ref().unwrap().attributes, "service.name").as_deref(), Some("grpc-caller"));
    let spans: Vec<_> = resource.scope_spans.iter().flat_map(|s| &s.spans).filter(|s| s.name == "reserve").collect();
    assert_eq!(spans.len(), 2);
    assert!(spans.iter().all(|s| s.trace_id.len() == 16 && s.span_id.len() == 8));
    let failed = spans.iter().find(|s| s.status.as_ref().is_some_and(|st| st.message.contains("too many"))).expect("the failed call");
    assert_eq!(failed.status.as_ref().unwrap().code, 2, "STATUS_CODE_ERROR");

    receiver.refuse_next(tonic::Code::Unavailable);
    reserve(1).unwrap();
    handle.flush().unwrap();
    assert_eq!(receiver.calls().len(), 3, "UNAVAILABLE is retried");
    receiver.refuse_next(tonic::Code::InvalidArgument);
    reserve(1).unwrap();
    let err = handle.flush().unwrap_err().to_string();
    assert!(err.contains("InvalidArgument"), "{err}");
    assert_eq!(receiver.calls().len(), 4, "INVALID_ARGUMENT is not");
    drop(handle);

    // Port 4317 is gRPC's: with the protocol set it is taken, without it refused.
    assert!(config_with_port_4317(true).is_ok());
    let err = config_with_port_4317(false).unwrap_err();
    assert!(matches!(&err, Error::Env { var: "OTEL_EXPORTER_OTLP_ENDPOINT", .. }), "{err}");
    assert!(err.to_string().contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc"), "{err}");

    grpc_over_tls();
}

/// Over TLS: only with the test's CA, and the trace arrives.
fn grpc_over_tls() {
    let pki = flext_obs_tests::tls_peer::Pki::generate("grpc-tls");
    let receiver = GrpcReceiver::start_tls(&pki);
    let attempt = |ca: Option<&std::path::Path>| {
        let mut vars =
            vec![("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint()), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned())];
        if let Some(ca) = ca {
            vars.push(("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.to_str().unwrap().to_owned()));
        }
        let settings =
            OtlpSettings { schedule_delay: Duration::from_secs(600), export_timeout: Duration::from_secs(2), ..OtlpSettings::default() };
        let handle = OtlpExporter::from_config(&config(&vars).unwrap())
            .unwrap()
            .unwrap()
            .settings(settings)
            .install(flext_obs::global().clone())
            .unwrap();
        reserve(3).unwrap();
        let result = handle.flush();
        drop(handle);
        result
    };
    assert!(attempt(None).is_err(), "the platform's roots do not know the test's CA");
    assert!(receiver.calls().is_empty());
    attempt(Some(&pki.ca)).unwrap();
    assert_eq!(receiver.calls().len(), 1);
    assert!(receiver.calls()[0].request.resource_spans[0].scope_spans[0].spans.iter().any(|s| s.name == "reserve"));
    let _ = std::fs::remove_dir_all(&pki.dir);
}

fn config_with_port_4317(grpc: bool) -> Result<Config, Error> {
    let mut vars = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317".to_owned())];
    if grpc {
        vars.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()));
    }
    config(&vars)
}
