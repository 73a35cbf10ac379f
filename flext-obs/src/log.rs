//! Structured JSON log lines that carry the correlation and trace IDs, one object per line,
//! with Elastic Common Schema field names so the ELK stack takes them without a mapping:
//! `@timestamp` (RFC 3339, UTC), `log.level`, `message`, `service.name`, `trace.id`,
//! `span.id`, `transaction.id` and `labels.correlation_id` (the correlation ID), `error.type` /
//! `error.message` when given, then the caller's fields (a field named like one of those is
//! written as `field.<name>`). The most recent entries stay readable ([`recent`]).
//!
//! ```
//! use flext_obs::log;
//! let captured = log::capture();                 // send lines to a buffer instead of stdout
//! let request: flext_obs::CorrelationId = "req-42".parse()?;
//! flext_obs::context::with_correlation_id(request, || log::info("order stored", &[("order.id", 42.into())]))?;
//! let line: serde_json::Value = serde_json::from_str(&captured.lines()[0]).unwrap();
//! assert_eq!(line["log.level"], "info");
//! assert_eq!(line["order.id"], 42);
//! assert_eq!(line["labels"]["correlation_id"], "req-42");
//! # Ok::<(), flext_obs::Error>(())
//! ```

use crate::context;
use crate::entity::{LogEntry, LogLevel};
use crate::error::Result;
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// Entries kept for [`recent`].
pub const RECENT_LOGS: usize = 1_000;

/// Field names the line itself uses.
const RESERVED: [&str; 9] =
    ["@timestamp", "log.level", "message", "service.name", "trace.id", "span.id", "transaction.id", "labels", "error.message"];

struct Output {
    writer: Box<dyn Write + Send>,
    recent: VecDeque<LogEntry>,
}

static OUTPUT: LazyLock<Mutex<Output>> =
    LazyLock::new(|| Mutex::new(Output { writer: Box::new(std::io::stdout()), recent: VecDeque::new() }));

/// Sends the lines to `writer` instead of standard output.
pub fn set_writer(writer: impl Write + Send + 'static) {
    OUTPUT.lock().unwrap_or_else(PoisonError::into_inner).writer = Box::new(writer);
}

/// Lines written to memory, for tests and examples ([`capture`]).
#[derive(Clone, Debug, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Every line captured so far.
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).lines().map(str::to_owned).collect()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends the lines to a memory buffer and returns it.
pub fn capture() -> Captured {
    let captured = Captured::default();
    set_writer(captured.clone());
    captured
}

/// Whether `level` passes the configured `FLEXT_LOG_LEVEL` of the process-wide instance.
pub fn enabled(level: LogLevel) -> bool {
    level >= crate::api::instance().config().log_level()
}

/// Logs `message` at `level` with `fields`, in the current correlation context (a line logged
/// where no correlation ID is set gets a new one of its own). Below the configured level
/// nothing happens; an empty message is an error.
pub fn log(level: LogLevel, message: &str, fields: &[(&str, Value)]) -> Result<()> {
    if !enabled(level) {
        return Ok(());
    }
    let mut builder = LogEntry::builder(message, level).correlation_id(context::correlation_id());
    if let Some(span) = context::current().span() {
        builder = builder.trace(span.trace_id, span.span_id);
    }
    for (key, value) in fields {
        builder = builder.field(*key, value.clone());
    }
    write(&builder.build()?);
    Ok(())
}

/// [`log`](fn@log) at debug level.
pub fn debug(message: &str, fields: &[(&str, Value)]) -> Result<()> {
    log(LogLevel::Debug, message, fields)
}
/// [`log`](fn@log) at info level.
pub fn info(message: &str, fields: &[(&str, Value)]) -> Result<()> {
    log(LogLevel::Info, message, fields)
}
/// [`log`](fn@log) at warning level.
pub fn warning(message: &str, fields: &[(&str, Value)]) -> Result<()> {
    log(LogLevel::Warning, message, fields)
}
/// [`log`](fn@log) at error level; put `error.type` / `error.message` in `fields` to fill ECS' error
/// fields.
pub fn error(message: &str, fields: &[(&str, Value)]) -> Result<()> {
    log(LogLevel::Error, message, fields)
}
/// [`log`](fn@log) at critical level.
pub fn critical(message: &str, fields: &[(&str, Value)]) -> Result<()> {
    log(LogLevel::Critical, message, fields)
}

/// Writes `entry` as one JSON line and keeps it among the recent entries.
pub fn write(entry: &LogEntry) {
    emit(entry, true);
}

/// Keeps `entry` among the recent entries (`/logs`) and sends it over OTLP, without writing a
/// JSON line: for records a backend wants but the console does not (a failed call's exception
/// record: the caller decides what to print about an error it handles).
pub(crate) fn keep(entry: &LogEntry) {
    emit(entry, false);
}

fn emit(entry: &LogEntry, line: bool) {
    let text = line.then(|| {
        let mut text = to_json_line(entry, crate::api::instance().config().service_name());
        text.push('\n');
        text
    });
    let mut output = OUTPUT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(text) = text {
        let _ = output.writer.write_all(text.as_bytes());
    }
    if output.recent.len() == RECENT_LOGS {
        output.recent.pop_front();
    }
    output.recent.push_back(entry.clone());
    drop(output);
    #[cfg(feature = "otlp")]
    if crate::outbox::is_open() {
        crate::outbox::offer(crate::outbox::Item::Log(Box::new(entry.clone())));
    }
}

/// The most recent entries, oldest first.
pub fn recent() -> Vec<LogEntry> {
    OUTPUT.lock().unwrap_or_else(PoisonError::into_inner).recent.iter().cloned().collect()
}

/// The ECS JSON object of `entry` (without the newline).
pub fn to_json_line(entry: &LogEntry, service: &str) -> String {
    let mut line = Map::new();
    line.insert("@timestamp".into(), Value::String(entry.timestamp().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
    line.insert("log.level".into(), Value::String(entry.level().to_string()));
    line.insert("message".into(), Value::String(entry.message().to_owned()));
    line.insert("service.name".into(), Value::String(service.to_owned()));
    if let Some(trace) = entry.trace_id() {
        line.insert("trace.id".into(), Value::String(trace.to_string()));
    }
    if let Some(span) = entry.span_id() {
        line.insert("span.id".into(), Value::String(span.to_string()));
    }
    if let Some(id) = entry.correlation_id() {
        line.insert("transaction.id".into(), Value::String(id.to_string()));
        line.insert("labels".into(), serde_json::json!({ "correlation_id": id.to_string() }));
    }
    for (key, value) in entry.fields() {
        let name = if RESERVED.contains(&key.as_str()) && key != "error.message" { format!("field.{key}") } else { key.clone() };
        line.insert(name, value.clone());
    }
    Value::Object(line).to_string()
}

/// A `tracing` layer that writes flext-obs JSON lines for `tracing` events, with the
/// correlation and trace IDs of the current flext-obs context, filtered by `FLEXT_LOG_LEVEL`.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// let captured = flext_obs::log::capture();
/// let subscriber = tracing_subscriber::registry().with(flext_obs::log::JsonLayer::new());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::warn!(queue = "mail", depth = 12, "queue is backing up");
/// });
/// let line: serde_json::Value = serde_json::from_str(&captured.lines()[0]).unwrap();
/// assert_eq!((line["log.level"].as_str(), line["message"].as_str()), (Some("warning"), Some("queue is backing up")));
/// assert_eq!(line["depth"], 12);
/// ```
#[cfg(feature = "tracing")]
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLayer;

#[cfg(feature = "tracing")]
impl JsonLayer {
    /// The layer.
    pub fn new() -> Self {
        JsonLayer
    }
}

#[cfg(feature = "tracing")]
fn level_of(level: tracing::Level) -> LogLevel {
    match level {
        tracing::Level::ERROR => LogLevel::Error,
        tracing::Level::WARN => LogLevel::Warning,
        tracing::Level::INFO => LogLevel::Info,
        _ => LogLevel::Debug,
    }
}

#[cfg(feature = "tracing")]
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for JsonLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: tracing_subscriber::layer::Context<'_, S>) -> bool {
        enabled(level_of(*metadata.level()))
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields(Vec<(String, Value)>, Option<String>);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.record_value(field, Value::String(format!("{value:?}")));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.record_value(field, Value::String(value.to_owned()));
            }
            fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
                self.record_value(field, value.into());
            }
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                self.record_value(field, value.into());
            }
            fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
                self.record_value(field, value.into());
            }
            fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
                self.record_value(field, value.into());
            }
        }
        impl Fields {
            fn record_value(&mut self, field: &tracing::field::Field, value: Value) {
                if field.name() == "message" {
                    self.1 = value.as_str().map(str::to_owned).or_else(|| Some(value.to_string()));
                } else {
                    self.0.push((field.name().to_owned(), value));
                }
            }
        }
        let metadata = event.metadata();
        let mut fields = Fields(Vec::new(), None);
        event.record(&mut fields);
        let message = fields.1.filter(|m| !m.trim().is_empty()).unwrap_or_else(|| metadata.name().to_owned());
        let mut pairs: Vec<(&str, Value)> = fields.0.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        pairs.push(("log.logger", Value::String(metadata.target().to_owned())));
        let _ = log(level_of(*metadata.level()), &message, &pairs);
    }
}
