//! Raising the alert of a failed or panicked call.

use super::site::{CallSite, SiteState};
use crate::alert::{self, AlertKey};
use crate::entity::{Alert, CorrelationId, TraceId};
use std::fmt;

/// Raises (or repeats) the alert of a failed call.
#[cold]
pub(super) fn raise(
    site: &CallSite,
    state: &SiteState,
    error_type: &'static str,
    message: &dyn Fn(&mut fmt::Formatter<'_>) -> fmt::Result,
    trace_id: TraceId,
    correlation: Option<CorrelationId>,
) {
    state.alerts.increment();
    let key = AlertKey::Site(state.index, error_type);
    if alert::repeat(&key).is_some() {
        return;
    }
    let mut text = Message(message).to_string();
    if text.trim().is_empty() {
        error_type.clone_into(&mut text);
    }
    if text.len() > 4096 {
        let cut = (0..=4096).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    let verb = if error_type == "panic" { "panicked" } else { "failed" };
    let mut builder = Alert::builder(format!("{} {verb}", site.function), text)
        .severity(site.options.severity)
        .source_function(site.function)
        .label("function", site.function)
        .label("module", site.module)
        .label("service_name", state.service.as_str())
        .label("error_type", error_type)
        .label("trace_id", trace_id.to_string());
    if let Some(id) = correlation {
        builder = builder.correlation_id(id);
    }
    match builder.build() {
        Ok(alert) => alert::insert(key, alert),
        Err(err) => eprintln!("flext-obs: alert for {} not kept: {err}", site.function),
    }
}

/// Formats an error through the expansion's borrowed formatter.
pub(super) struct Message<'a>(pub(super) &'a dyn Fn(&mut fmt::Formatter<'_>) -> fmt::Result);

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0)(f)
    }
}

/// `<function> panicked: <message>`, or `<function> panicked` when the message is unknown.
pub(super) struct PanicText<'a>(pub(super) &'a str, pub(super) Option<&'a str>);

impl fmt::Display for PanicText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(message) => write!(f, "{} panicked: {message}", self.0),
            None => write!(f, "{} panicked", self.0),
        }
    }
}
