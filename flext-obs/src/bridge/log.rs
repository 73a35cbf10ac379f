//! The `log` facade's logger: every `log::info!`/`warn!`/... of the process (the user's and
//! every library's) becomes a flext-obs log entry: one ECS JSON line with the current
//! correlation, trace and span IDs, kept in the `/logs` buffer and sent as an OTLP log record
//! when OTLP export is on, exactly as [`crate::log::log`] writes them.
//!
//! The level filter is `FLEXT_LOG_LEVEL` (`debug`, `info`, `warning` or `warn`, `error`,
//! `critical`); `log`'s `trace` counts as debug. The record's target is written as
//! `log.logger`, its file and line as `log.origin.file.name` / `log.origin.file.line`, its
//! key-values (`log::info!(order = 42; "...")`) as fields.
//!
//! ```
//! let captured = flext_obs::log::capture();
//! let logger = flext_obs::bridge::log::Logger::new();
//! log::Log::log(&logger, &log::Record::builder().args(format_args!("disk nearly full")).level(log::Level::Warn).target("app::disk").build());
//! let line: serde_json::Value = serde_json::from_str(&captured.lines()[0]).unwrap();
//! assert_eq!((line["log.level"].as_str(), line["log.logger"].as_str()), (Some("warning"), Some("app::disk")));
//! ```

use crate::entity::LogLevel;
use crate::error::{Error, Result};
use serde_json::Value;

/// The `log::Log` that writes flext-obs log entries (see the [module docs](self)).
#[derive(Debug, Default, Clone, Copy)]
pub struct Logger;

impl Logger {
    /// The logger.
    pub const fn new() -> Self {
        Logger
    }
}

/// Makes [`Logger`] the process's `log` logger, with `log`'s maximum level set from the
/// configured `FLEXT_LOG_LEVEL` (so records below it cost one comparison); an error if another
/// logger is already set.
///
/// ```no_run
/// flext_obs::bridge::log::install()?;
/// log::warn!("cache miss ratio {}", 0.4); // an ECS JSON line with the current IDs
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn install() -> Result<()> {
    static LOGGER: Logger = Logger::new();
    log::set_logger(&LOGGER).map_err(|_| Error::invalid("bridge::log", "logger", "install", "another log logger is already set"))?;
    log::set_max_level(level_filter(crate::api::instance().config().log_level()));
    Ok(())
}

/// `log`'s filter that lets through what `level` does.
///
/// ```
/// use flext_obs::LogLevel;
/// assert_eq!(flext_obs::bridge::log::level_filter(LogLevel::Debug), log::LevelFilter::Trace);
/// assert_eq!(flext_obs::bridge::log::level_filter(LogLevel::Warning), log::LevelFilter::Warn);
/// assert_eq!(flext_obs::bridge::log::level_filter(LogLevel::Critical), log::LevelFilter::Error);
/// ```
pub fn level_filter(level: LogLevel) -> log::LevelFilter {
    match level {
        LogLevel::Debug => log::LevelFilter::Trace,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Warning => log::LevelFilter::Warn,
        LogLevel::Error | LogLevel::Critical => log::LevelFilter::Error,
    }
}

fn level_of(level: log::Level) -> LogLevel {
    match level {
        log::Level::Error => LogLevel::Error,
        log::Level::Warn => LogLevel::Warning,
        log::Level::Info => LogLevel::Info,
        log::Level::Debug | log::Level::Trace => LogLevel::Debug,
    }
}

/// A record's key-values as JSON fields.
struct Fields(Vec<(String, Value)>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: log::kv::Key<'kvs>, value: log::kv::Value<'kvs>) -> std::result::Result<(), log::kv::Error> {
        let json = if let Some(b) = value.to_bool() {
            Value::Bool(b)
        } else if let Some(n) = value.to_u64() {
            n.into()
        } else if let Some(n) = value.to_i64() {
            n.into()
        } else if let Some(x) = value.to_f64().filter(|x| x.is_finite()) {
            x.into()
        } else {
            Value::String(value.to_string())
        };
        self.0.push((key.as_str().to_owned(), json));
        Ok(())
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        crate::log::enabled(level_of(metadata.level()))
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = level_of(record.level());
        if !crate::log::enabled(level) {
            return;
        }
        let mut fields = Fields(Vec::new());
        let _ = record.key_values().visit(&mut fields);
        let mut pairs: Vec<(&str, Value)> = fields.0.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        pairs.push(("log.logger", Value::String(record.target().to_owned())));
        if let Some(file) = record.file() {
            pairs.push(("log.origin.file.name", Value::String(file.to_owned())));
        }
        if let Some(line) = record.line() {
            pairs.push(("log.origin.file.line", line.into()));
        }
        let message = record.args().to_string();
        let message = if message.trim().is_empty() { record.target().to_owned() } else { message };
        // A message the entity refuses (control characters only, say) is dropped, never a panic.
        let _ = crate::log::log(level, &message, &pairs);
    }

    fn flush(&self) {}
}
