//! The OpenTelemetry SDK variables besides the exporter's: `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_SDK_DISABLED`, `OTEL_TRACES_SAMPLER`/`_ARG` (mapped onto [`Sampler`]),
//! `OTEL_PROPAGATORS`. Each bad value is an error naming its variable.

use super::MAX_TEXT_BYTES;
use super::env::{Get, env_err, parse_bool};
use super::otlp::parse_pairs;
use crate::error::{Error, Result};
use crate::sample::SamplerBuilder;

/// Most resource attributes accepted.
const MAX_RESOURCE_ATTRIBUTES: usize = 128;

/// Attributes of the OTLP resource, as `OTEL_RESOURCE_ATTRIBUTES` gives them (`key=value` list,
/// values percent-decoded). `service.name` among them is used only when no service name is set
/// otherwise (the specification's order: `OTEL_SERVICE_NAME` wins).
///
/// ```
/// use flext_obs::config::ResourceAttributes;
/// let attributes = ResourceAttributes::new(vec![("deployment.environment.name".into(), "prod".into())])?;
/// assert_eq!(attributes.get("deployment.environment.name"), Some("prod"));
/// assert!(ResourceAttributes::new(vec![("".into(), "x".into())]).is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceAttributes(Vec<(String, String)>);

impl ResourceAttributes {
    /// Checked attributes: keys non-empty, keys and values at most [`MAX_TEXT_BYTES`] bytes, at
    /// most 128 of them; a key given twice keeps its last value.
    pub fn new(pairs: Vec<(String, String)>) -> Result<Self> {
        let mut attributes: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            match attributes.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => attributes.push((key, value)),
            }
        }
        let attributes = ResourceAttributes(attributes);
        attributes.check()?;
        Ok(attributes)
    }

    /// Checks the bounds [`new`](ResourceAttributes::new) promises.
    pub fn check(&self) -> Result<()> {
        if self.0.len() > MAX_RESOURCE_ATTRIBUTES {
            return Err(Error::invalid("ResourceAttributes", "count", self.0.len(), "at most 128 attributes"));
        }
        for (key, value) in &self.0 {
            if key.is_empty() || key.len() > MAX_TEXT_BYTES || value.len() > MAX_TEXT_BYTES {
                return Err(Error::invalid(
                    "ResourceAttributes",
                    "attribute",
                    key,
                    format!("keys non-empty, keys and values at most {MAX_TEXT_BYTES} bytes"),
                ));
            }
        }
        Ok(())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every attribute, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The context propagation formats asked for (`OTEL_PROPAGATORS`): W3C Trace Context and W3C
/// Baggage are the ones flext-obs speaks; others are refused.
///
/// ```
/// use flext_obs::config::Propagators;
/// assert_eq!(Propagators::parse("tracecontext")?, Propagators { tracecontext: true, baggage: false });
/// assert_eq!(Propagators::parse("none")?, Propagators { tracecontext: false, baggage: false });
/// assert_eq!(Propagators::default(), Propagators::parse("tracecontext,baggage")?);
/// assert!(Propagators::parse("b3").unwrap_err().to_string().contains("b3"));
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagators {
    /// W3C `traceparent`/`tracestate`.
    pub tracecontext: bool,
    /// W3C `baggage`.
    pub baggage: bool,
}

impl Default for Propagators {
    /// `tracecontext,baggage`, the specification's default.
    fn default() -> Self {
        Propagators { tracecontext: true, baggage: true }
    }
}

impl Propagators {
    /// Reads a comma-separated list of `tracecontext`, `baggage`, or `none`.
    pub fn parse(list: &str) -> Result<Self> {
        let mut propagators = Propagators { tracecontext: false, baggage: false };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "tracecontext" => propagators.tracecontext = true,
                "baggage" => propagators.baggage = true,
                "none" => {}
                other => {
                    return Err(Error::invalid(
                        "Propagators",
                        "name",
                        other,
                        "flext-obs propagates tracecontext and baggage only (or none); b3, jaeger, xray and ottrace are not supported",
                    ));
                }
            }
        }
        Ok(propagators)
    }
}

/// The pieces of a [`crate::Config`] read here.
pub(super) struct OtelVars {
    pub(super) resource_attributes: ResourceAttributes,
    pub(super) sdk_disabled: bool,
    pub(super) propagators: Propagators,
}

pub(super) fn otel_from_vars(get: &Get<'_>) -> Result<OtelVars> {
    let mut vars =
        OtelVars { resource_attributes: ResourceAttributes::default(), sdk_disabled: false, propagators: Propagators::default() };
    if let Some((var, v)) = get("OTEL_RESOURCE_ATTRIBUTES") {
        let pairs = parse_pairs(&v).map_err(|why| env_err(var, &v, format!("a list of key=value pairs, values %-encoded: {why}")))?;
        vars.resource_attributes = ResourceAttributes::new(pairs).map_err(|_| {
            env_err(
                var,
                &super::text_head(&v),
                format!("at most 128 attributes, keys non-empty, keys and values at most {MAX_TEXT_BYTES} bytes"),
            )
        })?;
    }
    if let Some((var, v)) = get("OTEL_SDK_DISABLED") {
        vars.sdk_disabled = parse_bool(var, &v)?;
    }
    if let Some((var, v)) = get("OTEL_PROPAGATORS") {
        vars.propagators =
            Propagators::parse(&v).map_err(|_| env_err(var, &v, "a comma-separated list of tracecontext, baggage, or none"))?;
    }
    Ok(vars)
}

/// Applies `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` to `sampler`:
///
/// | sampler | ratio | parent based |
/// |---|---|---|
/// | `always_on` | 1 | no |
/// | `always_off` | 0 (failed calls not kept either) | no |
/// | `traceidratio` | the argument (default 1) | no |
/// | `parentbased_always_on` (default) | 1 | yes |
/// | `parentbased_always_off` | 0 | yes |
/// | `parentbased_traceidratio` | the argument (default 1) | yes |
///
/// The `FLEXT_TRACE_*` variables are applied after, so they win.
pub(super) fn otel_sampler(get: &Get<'_>, mut sampler: SamplerBuilder) -> Result<SamplerBuilder> {
    let arg = match get("OTEL_TRACES_SAMPLER_ARG") {
        Some((var, v)) => {
            let ratio = v.trim().parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r));
            Some(ratio.ok_or_else(|| env_err(var, &v, "a number from 0 to 1 (the trace ID ratio)"))?)
        }
        None => None,
    };
    let Some((var, v)) = get("OTEL_TRACES_SAMPLER") else { return Ok(sampler) };
    let (ratio, parent_based) = match v.trim() {
        "always_on" => (1.0, false),
        "always_off" => {
            sampler = sampler.keep_errors(false);
            (0.0, false)
        }
        "traceidratio" => (arg.unwrap_or(1.0), false),
        "parentbased_always_on" => (1.0, true),
        "parentbased_always_off" => (0.0, true),
        "parentbased_traceidratio" => (arg.unwrap_or(1.0), true),
        _ => {
            return Err(env_err(
                var,
                &v,
                "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio",
            ));
        }
    };
    Ok(sampler.ratio(ratio).parent_based(parent_based))
}
