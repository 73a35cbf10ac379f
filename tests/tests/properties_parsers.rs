//! Property tests (proptest) over what parses outside input: `traceparent`, correlation IDs,
//! header extraction, configuration values and the entity deserializers. Each never panics,
//! refuses exactly what its rule refuses, and round-trips what it accepts. Case counts are
//! bounded so CI stays fast.

use flext_obs::config::ENV_VARS;
use flext_obs::context::{Context, SpanContext};
use flext_obs::{Alert, Config, CorrelationId, Error, HealthCheck, LogEntry, Metric, MetricKind, Span, SpanId, TraceId};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// The nil UUID, which a correlation ID may not be.
const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() }
}

/// Text that is mostly near the rules: hex-ish, dashes, signs, spaces, some Unicode.
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-fA-F+ -]{0,60}",
        "[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-fA-F+ -]{1,3}",
        "[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-[a-z0-9]{0,4})?",
        any::<String>(),
    ]
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn traceparent_parsing_never_panics_and_accepts_only_lower_hex_flags(value in header_text()) {
        let strict = Context::extract_strict(&[("traceparent", value.as_str())]);
        let lenient = Context::extract(&[("traceparent", value.as_str())]);
        prop_assert_eq!(strict.is_ok(), lenient.rejected.is_empty());
        if let Ok(context) = &strict {
            let span = context.span().expect("an accepted traceparent gives a span");
            let parts: Vec<&str> = value.trim().split('-').collect();
            prop_assert!(parts.len() >= 4);
            prop_assert!(parts[3].len() == 2 && is_lower_hex(parts[3]), "flags {:?} accepted", parts[3]);
            prop_assert_eq!(span.trace_id.to_string(), parts[1]);
            prop_assert_eq!(span.span_id.to_string(), parts[2]);
            prop_assert_eq!(span.sampled, u8::from_str_radix(parts[3], 16).unwrap() & 1 == 1);
        }
    }

    #[test]
    fn the_flags_field_is_two_lower_case_hex_digits_exactly(flags in "[0-9a-gA-G+ _]{2}") {
        let value = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
        let parsed = Context::extract_strict(&[("traceparent", value.as_str())]);
        prop_assert_eq!(parsed.is_ok(), is_lower_hex(&flags), "{}", value);
    }

    #[test]
    fn a_span_context_round_trips_through_inject_and_extract(trace in 1..=u128::MAX, span in 1..=u64::MAX, sampled: bool, id in "[!-~]{1,64}") {
        prop_assume!(id != NIL_UUID);
        let span_context = SpanContext {
            trace_id: TraceId::from_bytes(trace.to_be_bytes()).unwrap(),
            span_id: SpanId::from_bytes(span.to_be_bytes()).unwrap(),
            sampled,
        };
        let correlation: CorrelationId = id.parse().unwrap();
        // What comes out of headers is another process's span.
        let context = Context::new().with_remote_span(span_context).with_correlation_id(correlation);
        let mut headers: HashMap<String, String> = HashMap::new();
        context.inject(&mut headers);
        prop_assert_eq!(Context::extract_strict(&headers).unwrap(), context);
    }

    #[test]
    fn baggage_values_round_trip_and_parsing_never_panics(
        pairs in proptest::collection::vec(("[A-Za-z0-9!#$&'*+.^_`|~-]{1,12}", any::<String>()), 0..8),
        text in any::<String>(),
    ) {
        let mut baggage = flext_obs::context::Baggage::new();
        for (key, value) in &pairs {
            baggage = baggage.with(key, value).unwrap();
        }
        let parsed: flext_obs::context::Baggage = baggage.to_string().parse().unwrap();
        prop_assert_eq!(&parsed, &baggage);
        let headers = [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), ("baggage", text.as_str()), ("tracestate", text.as_str())];
        let extracted = Context::extract(&headers);
        prop_assert!(extracted.context.span().is_some(), "a bad baggage or tracestate never costs the traceparent");
        let mut out: HashMap<String, String> = HashMap::new();
        extracted.context.inject(&mut out);
        if let Some(value) = out.get("baggage") {
            prop_assert!(value.len() <= flext_obs::context::MAX_BAGGAGE_BYTES);
        }
    }

    #[test]
    fn correlation_ids_are_kept_exactly_or_refused_by_their_rule(token in prop_oneof!["[!-~]{0,70}", any::<String>(), "[ -~]{0,10}"]) {
        let parsed = token.parse::<CorrelationId>();
        let nil_uuid = token == NIL_UUID;
        let valid = (1..=64).contains(&token.len()) && token.bytes().all(|b| (0x21..=0x7e).contains(&b)) && !nil_uuid;
        prop_assert_eq!(parsed.is_ok(), valid, "{:?}", token);
        if let Ok(id) = parsed {
            prop_assert_eq!(id.as_str(), token.as_str());
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<CorrelationId>(&json).unwrap(), id);
        }
        // Through a header: the same verdict on the value without its surrounding whitespace.
        let extracted = Context::extract(&[("X-Correlation-ID", token.as_str())]);
        let expected = token.trim().parse::<CorrelationId>().ok();
        prop_assert_eq!(extracted.context.correlation_id(), expected);
        prop_assert_eq!(extracted.rejected.len(), usize::from(expected.is_none()));
    }

    #[test]
    fn header_extraction_never_panics_and_keeps_each_valid_header(headers in proptest::collection::vec((prop_oneof!["traceparent", "TraceParent", "x-correlation-id", "X-CORRELATION-ID", "[a-z-]{0,12}"], header_text()), 0..6)) {
        let extracted = Context::extract(&headers);
        prop_assert!(extracted.rejected.len() <= 2, "at most one error per header we read");
        let map: BTreeMap<String, String> = headers.iter().cloned().collect();
        let _ = Context::extract(&map);
        let strict = Context::extract_strict(&headers);
        if let Ok(context) = strict {
            prop_assert_eq!(context, extracted.context);
        }
    }

    #[test]
    fn any_configuration_values_give_a_config_or_an_error_naming_the_variable(values in proptest::collection::vec((0..ENV_VARS.len(), prop_oneof!["[0-9a-z:/.,-]{0,24}", any::<String>(), "(http|https)://[a-z0-9.]{1,10}(:[0-9]{1,5})?", "[0-9]{1,22}"]), 0..6)) {
        let vars: Vec<(&str, String)> = values.iter().map(|(i, v)| (ENV_VARS[*i], v.clone())).collect();
        let lookup = |name: &str| vars.iter().rev().find(|(var, _)| *var == name).map(|(_, v)| v.clone());
        let strict = Config::from_lookup(lookup);
        let (lenient, refused) = Config::from_lookup_lenient(lookup);
        match &strict {
            Ok(config) => {
                prop_assert!(refused.is_empty());
                prop_assert_eq!(config, &lenient);
            }
            Err(Error::Env { var, .. }) => {
                prop_assert!(vars.iter().any(|(v, _)| v == var), "the error names a variable that was set: {}", var);
                prop_assert!(!refused.is_empty());
            }
            Err(other) => prop_assert!(false, "not an Env error: {other}"),
        }
        for err in &refused {
            let Error::Env { var, .. } = err else { return Err(TestCaseError::fail(format!("not an Env error: {err}"))) };
            prop_assert!(vars.iter().any(|(v, _)| v == var));
        }
        // What the lenient reading keeps is a config the instance accepts.
        prop_assert!(Config::builder().service_name(lenient.service_name()).build().is_ok());
    }

    #[test]
    fn the_metric_deserializer_refuses_exactly_what_the_builder_refuses(
        name in prop_oneof!["[a-zA-Z_:][a-zA-Z0-9_:]{0,12}", any::<String>()],
        value in prop_oneof![any::<f64>(), -10.0..10.0f64],
        unit in prop_oneof!["[a-z_]{0,8}", any::<String>()],
        labels in proptest::collection::btree_map(prop_oneof!["[a-z_][a-z0-9_]{0,6}", "__[a-z]{1,3}", any::<String>()], any::<String>(), 0..4),
        kind in 0..4usize,
    ) {
        let kind = [MetricKind::Counter, MetricKind::Gauge, MetricKind::Histogram, MetricKind::Summary][kind];
        let built = Metric::builder(name.clone(), value).kind(kind).unit(unit.clone()).labels(labels.clone()).build();
        let template = Metric::builder("x", 1.0).build().unwrap();
        let mut json = serde_json::to_value(&template).unwrap();
        json["name"] = name.into();
        json["value"] = serde_json::Number::from_f64(value).map_or(serde_json::Value::Null, serde_json::Value::Number);
        json["unit"] = unit.into();
        json["labels"] = serde_json::to_value(&labels).unwrap();
        json["kind"] = serde_json::to_value(kind).unwrap();
        let decoded = serde_json::from_value::<Metric>(json);
        prop_assert_eq!(decoded.is_ok(), built.is_ok(), "builder {:?} vs deserializer {:?}", built, decoded);
        if let Ok(metric) = built {
            // Through a JSON value (serde_json's text parser rounds some floats' last digit
            // without its `float_roundtrip` feature; that is serde_json, not the entity).
            let value = serde_json::to_value(&metric).unwrap();
            prop_assert_eq!(serde_json::from_value::<Metric>(value).unwrap(), metric);
        }
    }

    #[test]
    fn entity_deserializers_never_panic_on_any_json(json in json_value()) {
        let text = json.to_string();
        let _ = serde_json::from_str::<Metric>(&text);
        let _ = serde_json::from_str::<Span>(&text);
        let _ = serde_json::from_str::<Alert>(&text);
        let _ = serde_json::from_str::<HealthCheck>(&text);
        let _ = serde_json::from_str::<LogEntry>(&text);
        let _ = serde_json::from_str::<TraceId>(&text);
        let _ = serde_json::from_str::<SpanId>(&text);
        let _ = serde_json::from_str::<CorrelationId>(&text);
    }

    #[test]
    fn entities_built_from_any_text_round_trip_or_are_refused_both_ways(title in any::<String>(), message in any::<String>(), component in any::<String>()) {
        for (built, kind) in [
            (flext_obs::create_alert(&title, &message, flext_obs::Severity::High).map(|a| serde_json::to_string(&a).unwrap()), "alert"),
            (flext_obs::create_log_entry(&message, flext_obs::LogLevel::Info).map(|l| serde_json::to_string(&l).unwrap()), "log"),
            (flext_obs::create_health_check(&component, flext_obs::HealthStatus::Healthy, &message).map(|h| serde_json::to_string(&h).unwrap()), "health"),
            (flext_obs::create_trace(&title, &component).map(|s| serde_json::to_string(&s).unwrap()), "span"),
        ] {
            let Ok(text) = built else { continue };
            let ok = match kind {
                "alert" => serde_json::from_str::<Alert>(&text).is_ok(),
                "log" => serde_json::from_str::<LogEntry>(&text).is_ok(),
                "health" => serde_json::from_str::<HealthCheck>(&text).is_ok(),
                _ => serde_json::from_str::<Span>(&text).is_ok(),
            };
            prop_assert!(ok, "{} did not round-trip: {}", kind, text);
        }
        // A field the constructor refuses (blank text) is refused by the deserializer too.
        let alert = flext_obs::create_alert("t", "m", flext_obs::Severity::Low).unwrap();
        let mut json = serde_json::to_value(&alert).unwrap();
        json["title"] = " ".into();
        prop_assert!(serde_json::from_value::<Alert>(json).is_err());
    }
}

/// Any JSON, shaped a little like our entities (their field names are likely keys).
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
        "[0-9a-f]{16,32}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("2024-01-01T00:00:00Z")),
        Just(serde_json::Value::from("00000000-0000-0000-0000-000000000000")),
    ];
    let key = prop_oneof![
        Just("id"),
        Just("name"),
        Just("value"),
        Just("kind"),
        Just("labels"),
        Just("timestamp"),
        Just("created_at"),
        Just("title"),
        Just("message"),
        Just("severity"),
        Just("status"),
        Just("trace_id"),
        Just("span_id"),
        Just("duration"),
        Just("component"),
        Just("level"),
        Just("fields"),
        Just("count"),
        Just("start"),
        Just("attributes"),
        Just("correlation_id"),
        Just("x"),
    ];
    leaf.prop_recursive(3, 32, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(key.clone().prop_map(str::to_owned), inner, 0..10)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
