//! Reading a [`Config`] from the process environment or any lookup: the strict readers (the
//! first refused variable is the error) and the lenient ones [`crate::global`] uses (a refused
//! variable is set aside and reported, every other one applies), with the value parsers they
//! share with the settings modules.

use super::otel::{otel_from_vars, otel_sampler};
use super::otlp::transports_from_vars;
use super::tls::{ALERTMANAGER_VARS, PUSH_VARS, access_from_vars};
use super::url::check_url;
use super::{Config, ConfigBuilder, ENV_VARS, HttpSettings, MAX_QUEUE_SIZE, MAX_TEXT_BYTES, MAX_WAIT, text_head};
use crate::entity::LogLevel;
use crate::error::{Error, Result};
use crate::sample::Sampler;
use crate::store::{StoreSettings, check_buckets};
use std::time::Duration;

/// A variable's value when it is set and not blank, with its name (`'static`, for the error).
pub(super) type Get<'a> = dyn Fn(&'static str) -> Option<(&'static str, String)> + 'a;

impl Config {
    /// Reads the process environment (see the table in the [module docs](crate::config)).
    ///
    /// ```
    /// let config = flext_obs::Config::from_env()?;
    /// assert!(!config.service_name().is_empty());
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn from_env() -> Result<Self> {
        let mut values = Vec::new();
        for &var in ENV_VARS {
            match std::env::var(var) {
                Ok(value) => values.push((var, value)),
                Err(std::env::VarError::NotPresent) => {}
                Err(std::env::VarError::NotUnicode(raw)) => {
                    return Err(Error::Env { var, value: raw.to_string_lossy().into_owned(), expected: "valid UTF-8".into() });
                }
            }
        }
        Self::from_lookup(|name| values.iter().find(|(var, _)| *var == name).map(|(_, v)| v.clone()))
    }

    /// Like [`from_env`](Config::from_env) but reads variables through `lookup`, so tests and
    /// embedders need not touch the process environment.
    ///
    /// ```
    /// let err = flext_obs::Config::from_lookup(|var| (var == "FLEXT_OBSERVABILITY_ENABLED").then(|| "maybe".to_owned())).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"environment variable FLEXT_OBSERVABILITY_ENABLED="maybe" is invalid: expected a boolean: true/false, 1/0, yes/no, on/off"#
    /// );
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |var: &'static str| lookup(var).filter(|v| !v.trim().is_empty()).map(|v| (var, v));
        let mut builder = Config::builder();
        if let Some((var, v)) = get("FLEXT_OBSERVABILITY_ENABLED") {
            builder = builder.enabled(parse_bool(var, &v)?);
        }
        if let Some((var, v)) = get("FLEXT_LOG_LEVEL") {
            // `warn` too: the spelling of `log`, `tracing` and most loggers.
            let name = v.trim().to_ascii_lowercase();
            let name = if name == "warn" { "warning".to_owned() } else { name };
            let level = name.parse().map_err(|_| env_err(var, &v, format!("one of {} (or warn)", LogLevel::NAMES.join(", "))))?;
            builder = builder.log_level(level);
        }
        let otel = otel_from_vars(&get)?;
        // The Autometrics specification's order: its own variable, then OpenTelemetry's, then
        // ours; then `service.name` of OTEL_RESOURCE_ATTRIBUTES (which OTEL_SERVICE_NAME beats,
        // as the OpenTelemetry specification says).
        if let Some((var, v)) = get("AUTOMETRICS_SERVICE_NAME").or_else(|| get("OTEL_SERVICE_NAME")).or_else(|| get("FLEXT_SERVICE_NAME")) {
            builder = builder.service_name(env_text(var, v.trim())?);
        } else if let Some(name) = otel.resource_attributes.get("service.name").filter(|n| !n.trim().is_empty()) {
            builder = builder.service_name(env_text("OTEL_RESOURCE_ATTRIBUTES", name.trim())?);
        }
        builder.0.resource_attributes = otel.resource_attributes;
        builder.0.sdk_disabled = otel.sdk_disabled;
        builder.0.propagators = otel.propagators;
        builder.0.otlp_transports = transports_from_vars(&get)?;
        if let Some((var, v)) = get("PROMETHEUS_PUSH_GATEWAY") {
            builder.0.push_gateway = Some(parse_url(var, &v)?);
        }
        builder.0.push_access = access_from_vars(&get, &PUSH_VARS)?;
        if let Some((var, v)) = get("FLEXT_ALERTMANAGER_URL") {
            builder.0.alertmanager_url = Some(parse_url(var, &v)?);
        }
        builder.0.alertmanager_access = access_from_vars(&get, &ALERTMANAGER_VARS)?;
        if let Some((var, v)) = get("FLEXT_METRICS_ADDR") {
            builder.0.metrics_addr = Some(v.trim().parse().map_err(|_| env_err(var, &v, "a socket address such as 127.0.0.1:9464"))?);
        }
        if let Some((var, v)) = get("FLEXT_MAX_SERIES_PER_METRIC") {
            builder.0.store.max_series_per_metric = parse_count(var, &v, 1)?;
        }
        if let Some((var, v)) = get("FLEXT_SERIES_RETENTION_SECS") {
            builder.0.store.retention = parse_seconds(var, &v)?;
        }
        if let Some((var, v)) = get("FLEXT_SWEEP_INTERVAL_SECS") {
            builder.0.sweep_interval = parse_seconds(var, &v)?;
        }
        if let Some((var, v)) = get("FLEXT_RAW_HISTORY") {
            builder.0.store.raw_history = parse_count(var, &v, 0)?;
        }
        builder = monitor_switches(builder, &get)?;
        if let Some((var, v)) = get("FLEXT_SUMMARY_WINDOW") {
            builder.0.store.summary_window = parse_count(var, &v, 1)?;
        }
        if let Some((var, v)) = get("FLEXT_RAW_HISTORY_NAMES") {
            builder.0.store.raw_history_names = parse_count(var, &v, 0)?;
        }
        if let Some((var, v)) = get("FLEXT_MAX_SERIES") {
            builder.0.store.max_series = if v.trim().eq_ignore_ascii_case("off") {
                None
            } else {
                Some(parse_count(var, &v, 1).map_err(|_| env_err(var, &v, "a whole number >= 1, or off"))?)
            };
        }
        if let Some((var, v)) = get("FLEXT_SERVICE_VERSION") {
            builder.0.version = Some(env_text(var, v.trim())?.to_owned());
        }
        if let Some((var, v)) = get("FLEXT_SERVICE_COMMIT") {
            builder.0.commit = Some(env_text(var, v.trim())?.to_owned());
        }
        builder.0.sampler = sampler_from_vars(&get)?;
        if let Some((var, v)) = get("OTEL_BSP_MAX_QUEUE_SIZE") {
            builder.0.otlp.max_queue_size = parse_count_upto(var, &v, MAX_QUEUE_SIZE)?;
            // A queue smaller than the default batch (512) sends batches of the whole queue,
            // rather than refusing a setting the user never made.
            builder.0.otlp.max_export_batch_size = builder.0.otlp.max_export_batch_size.min(builder.0.otlp.max_queue_size);
        }
        if let Some((var, v)) = get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            let batch = parse_count_upto(var, &v, MAX_QUEUE_SIZE)?;
            let queue = builder.0.otlp.max_queue_size;
            if batch > queue {
                return Err(env_err(var, &v, format!("a whole number from 1 to OTEL_BSP_MAX_QUEUE_SIZE ({queue})")));
            }
            builder.0.otlp.max_export_batch_size = batch;
        }
        let waits: [(&'static str, &mut Duration); 8] = [
            ("OTEL_BSP_SCHEDULE_DELAY", &mut builder.0.otlp.schedule_delay),
            ("OTEL_METRIC_EXPORT_INTERVAL", &mut builder.0.otlp.metric_interval),
            ("OTEL_BSP_EXPORT_TIMEOUT", &mut builder.0.otlp.export_timeout),
            ("OTEL_METRIC_EXPORT_TIMEOUT", &mut builder.0.otlp.metric_export_timeout),
            ("FLEXT_OTLP_SHUTDOWN_TIMEOUT_MS", &mut builder.0.otlp.shutdown_timeout),
            ("FLEXT_EXPORT_REQUEST_TIMEOUT_MS", &mut builder.0.export_timeouts.request),
            ("FLEXT_PUSH_STOP_TIMEOUT_MS", &mut builder.0.export_timeouts.push_stop),
            ("FLEXT_ALERTMANAGER_STOP_TIMEOUT_MS", &mut builder.0.export_timeouts.alertmanager_stop),
        ];
        for (var, slot) in waits {
            if let Some((var, v)) = get(var) {
                *slot = parse_millis(var, &v)?;
            }
        }
        store_shape_from_vars(&get, &mut builder.0.store)?;
        builder.0.http = HttpSettings::from_vars(&get)?;
        builder.build()
    }

    /// Like [`from_env`](Config::from_env), but a variable that cannot be used is set aside
    /// instead of failing the whole configuration: every other setting is kept, and the errors
    /// of the refused variables are returned (empty when all were valid). [`crate::global`]
    /// builds the process-wide instance this way.
    pub fn from_env_lenient() -> (Self, Vec<Error>) {
        let mut values = Vec::new();
        let mut errors = Vec::new();
        for &var in ENV_VARS {
            match std::env::var(var) {
                Ok(value) => values.push((var, value)),
                Err(std::env::VarError::NotPresent) => {}
                Err(std::env::VarError::NotUnicode(raw)) => {
                    errors.push(Error::Env { var, value: raw.to_string_lossy().into_owned(), expected: "valid UTF-8".into() });
                }
            }
        }
        let (config, mut refused) = Self::from_lookup_lenient(|name| values.iter().find(|(var, _)| *var == name).map(|(_, v)| v.clone()));
        errors.append(&mut refused);
        (config, errors)
    }

    /// [`from_env_lenient`](Config::from_env_lenient) through `lookup`: each variable whose value
    /// is refused is treated as unset and reported, and the rest still apply.
    ///
    /// ```
    /// let (config, refused) = flext_obs::Config::from_lookup_lenient(|var| match var {
    ///     "FLEXT_SERVICE_NAME" => Some("checkout".to_owned()),
    ///     "FLEXT_MAX_SERIES_PER_METRIC" => Some("lots".to_owned()),
    ///     "FLEXT_LOG_LEVEL" => Some("loud".to_owned()),
    ///     _ => None,
    /// });
    /// assert_eq!(config.service_name(), "checkout");                 // kept
    /// assert_eq!(config.store().max_series_per_metric, 2_000);        // the default
    /// let vars: Vec<_> = refused.iter().map(|e| match e { flext_obs::Error::Env { var, .. } => *var, _ => "?" }).collect();
    /// assert_eq!(vars, ["FLEXT_LOG_LEVEL", "FLEXT_MAX_SERIES_PER_METRIC"]);
    /// ```
    pub fn from_lookup_lenient(lookup: impl Fn(&str) -> Option<String>) -> (Self, Vec<Error>) {
        let mut refused: Vec<&'static str> = Vec::new();
        let mut errors = Vec::new();
        // Each round refuses one more variable, so this ends after at most one round per variable.
        for _ in 0..=ENV_VARS.len() {
            match Self::from_lookup(|var| if refused.contains(&var) { None } else { lookup(var) }) {
                Ok(config) => return (config, errors),
                Err(err) => match err {
                    Error::Env { var, .. } if !refused.contains(&var) => {
                        refused.push(var);
                        errors.push(err);
                    }
                    // An error no single variable is blamed for: nothing can be kept apart.
                    other => {
                        errors.push(other);
                        break;
                    }
                },
            }
        }
        (Config::default(), errors)
    }
}

/// The variables that shape every series: `FLEXT_HISTOGRAM_BUCKETS` and `FLEXT_STORE_LANES`.
fn store_shape_from_vars(get: &dyn Fn(&'static str) -> Option<(&'static str, String)>, store: &mut StoreSettings) -> Result<()> {
    if let Some((var, v)) = get("FLEXT_HISTOGRAM_BUCKETS") {
        let bounds: Vec<f64> = v
            .split(',')
            .map(|b| b.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| env_err(var, &v, "comma-separated numbers"))?;
        check_buckets(&bounds).map_err(|_| env_err(var, &v, "finite, strictly increasing numbers"))?;
        store.default_buckets = bounds.into();
    }
    if let Some((var, v)) = get("FLEXT_STORE_LANES") {
        store.lanes = if v.trim().eq_ignore_ascii_case("auto") {
            None
        } else {
            let lanes = parse_count_upto(var, &v, crate::store::MAX_LANES);
            Some(lanes.map_err(|_| env_err(var, &v, "a whole number from 1 to 64, or auto"))?)
        };
    }
    Ok(())
}

/// `value` if it fits [`MAX_TEXT_BYTES`], else an error naming `var` (with the value's head
/// and length, not the whole text).
fn env_text<'v>(var: &'static str, value: &'v str) -> Result<&'v str> {
    if value.len() > MAX_TEXT_BYTES {
        return Err(env_err(var, &text_head(value), format!("text of at most {MAX_TEXT_BYTES} bytes")));
    }
    Ok(value)
}

/// The sampler the `FLEXT_TRACE_*` variables ask for (`get` yields a set, non-empty variable).
/// `OTEL_TRACES_SAMPLER`/`_ARG` first, so that `FLEXT_TRACE_*` win where both are set.
fn sampler_from_vars(get: &Get<'_>) -> Result<Sampler> {
    let mut sampler = otel_sampler(get, Sampler::builder())?;
    if let Some((var, v)) = get("FLEXT_TRACE_SAMPLE_RATIO") {
        let ratio = v.trim().parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r));
        sampler = sampler.ratio(ratio.ok_or_else(|| env_err(var, &v, "a number from 0 to 1"))?);
    }
    if let Some((var, v)) = get("FLEXT_TRACE_PARENT_BASED") {
        sampler = sampler.parent_based(parse_bool(var, &v)?);
    }
    if let Some((var, v)) = get("FLEXT_TRACE_KEEP_ERRORS") {
        sampler = sampler.keep_errors(parse_bool(var, &v)?);
    }
    if let Some((var, v)) = get("FLEXT_TRACE_MAX_PER_SECOND") {
        if !v.trim().eq_ignore_ascii_case("off") {
            let limit = v.trim().parse::<u32>().ok().filter(|n| *n >= 1);
            sampler = sampler.max_per_second(limit.ok_or_else(|| env_err(var, &v, "a whole number >= 1, or off"))?);
        }
    }
    sampler.build()
}

/// The monitored calls' switches: exception log records per second and `tracing` spans.
fn monitor_switches(mut builder: ConfigBuilder, get: &impl Fn(&'static str) -> Option<(&'static str, String)>) -> Result<ConfigBuilder> {
    if let Some((var, v)) = get("FLEXT_EXCEPTION_LOGS_PER_SECOND") {
        let per_second = if v.trim().eq_ignore_ascii_case("off") { Some(0) } else { v.trim().parse::<u32>().ok() };
        builder = builder.exception_logs_per_second(per_second.ok_or_else(|| env_err(var, &v, "a whole number, or 0 / off for none"))?);
    }
    if let Some((var, v)) = get("FLEXT_TRACING_SPANS") {
        builder = builder.tracing_spans(parse_bool(var, &v)?);
    }
    Ok(builder)
}

pub(super) fn env_err(var: &'static str, value: &str, expected: impl Into<String>) -> Error {
    Error::Env { var, value: value.to_owned(), expected: expected.into() }
}

pub(super) fn parse_bool(var: &'static str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(env_err(var, value, "a boolean: true/false, 1/0, yes/no, on/off")),
    }
}

pub(super) fn parse_count(var: &'static str, value: &str, min: usize) -> Result<usize> {
    value.trim().parse::<usize>().ok().filter(|n| *n >= min).ok_or_else(|| env_err(var, value, format!("a whole number >= {min}")))
}

fn parse_seconds(var: &'static str, value: &str) -> Result<Option<Duration>> {
    if value.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    parse_count(var, value, 1)
        .map(|secs| Some(Duration::from_secs(secs as u64)))
        .map_err(|_| env_err(var, value, "a whole number of seconds >= 1, or off"))
}

pub(super) fn parse_count_upto(var: &'static str, value: &str, max: usize) -> Result<usize> {
    let count = value.trim().parse::<usize>().ok().filter(|n| (1..=max).contains(n));
    count.ok_or_else(|| env_err(var, value, format!("a whole number from 1 to {max}")))
}

/// Milliseconds from 1 to [`MAX_WAIT`].
pub(super) fn parse_millis(var: &'static str, value: &str) -> Result<Duration> {
    let max = u64::try_from(MAX_WAIT.as_millis()).unwrap_or(u64::MAX);
    let millis = value.trim().parse::<u64>().ok().filter(|n| (1..=max).contains(n));
    millis.map(Duration::from_millis).ok_or_else(|| env_err(var, value, format!("a whole number of milliseconds from 1 to {max} (1 hour)")))
}

fn parse_url(var: &'static str, value: &str) -> Result<String> {
    let url = value.trim();
    check_url(url).map_err(|why| env_err(var, value, why))?;
    Ok(url.to_owned())
}
