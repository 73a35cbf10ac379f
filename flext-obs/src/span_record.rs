//! What a monitored call leaves behind when its span is kept ([`SpanRecord`]: fixed-size, no
//! allocation), the names of the call sites it refers to by index, and the conversion back to a
//! [`Span`] entity. Below `trace`, `outbox` and `monitor`, which all use it, so none of them
//! needs another.

use crate::clock;
use crate::entity::{CorrelationId, Span, SpanId, SpanStatus, TraceId};
use std::sync::{PoisonError, RwLock};

/// What a monitored call leaves behind: fixed-size, no allocation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SpanRecord {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) parent: Option<SpanId>,
    pub(crate) site: u32,
    pub(crate) status: SpanStatus,
    pub(crate) start_raw: u64,
    pub(crate) duration_ns: u64,
    pub(crate) correlation_id: Option<CorrelationId>,
    /// Whether `parent` is another process's span (the call continued an extracted context):
    /// then the span is that request's SERVER span.
    pub(crate) remote_parent: bool,
}

/// The names of one call site, as its spans and its callers' counters show them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SiteName {
    pub(crate) function: &'static str,
    pub(crate) module: &'static str,
    pub(crate) service: &'static str,
    pub(crate) kind: crate::SpanKind,
    pub(crate) location: Option<(&'static str, u32)>,
    /// The site's error type, once a call failed (see `SiteState::error_type`).
    pub(crate) error_type: &'static std::sync::OnceLock<&'static str>,
}

/// Every call site that has been called, by index - 1 (index 0 means "no site"). Bounded by the
/// number of monitored functions (and `monitor::MAX_DYNAMIC_SITES` named at run time).
static SITES: RwLock<Vec<SiteName>> = RwLock::new(Vec::new());

/// Registers a call site; its index (from 1), `None` past `u32::MAX` sites.
pub(crate) fn register(name: SiteName) -> Option<u32> {
    let mut sites = SITES.write().unwrap_or_else(PoisonError::into_inner);
    let index = u32::try_from(sites.len() + 1).ok()?;
    sites.push(name);
    Some(index)
}

/// The names of the call site with `index`.
pub(crate) fn site_name(index: u32) -> Option<SiteName> {
    let i = usize::try_from(index.checked_sub(1)?).ok()?;
    SITES.read().unwrap_or_else(PoisonError::into_inner).get(i).copied()
}

/// OpenTelemetry's `code.function.name`: the function with its module path
/// (`shop::Inventory::place_order`), or the name alone for a call named at run time.
fn qualified(site: SiteName) -> String {
    if site.module.is_empty() { site.function.to_owned() } else { format!("{}::{}", site.module, site.function) }
}

/// Turns a buffered span record back into a [`Span`] entity.
pub(crate) fn span_of(record: SpanRecord) -> Option<Span> {
    let site = site_name(record.site)?;
    let mut builder = Span::builder(site.function, site.service)
        .trace_id(record.trace_id)
        .span_id(record.span_id)
        .start(clock::to_wall(record.start_raw))
        .duration(std::time::Duration::from_nanos(record.duration_ns))
        .status(record.status)
        .kind(site.kind)
        .attribute("function", site.function)
        .attribute("module", site.module)
        .attribute("code.function.name", qualified(site));
    if let (SpanStatus::Error, Some(error_type)) = (record.status, site.error_type.get()) {
        // A panic's span carries `error.type = panic` among its recorded attributes, which
        // replace this below.
        builder = builder.attribute("error.type", *error_type);
    }
    if let Some((file, line)) = site.location {
        builder = builder.attribute("code.file.path", file).attribute("code.line.number", line.to_string());
    }
    if let Some(parent) = record.parent {
        builder = builder.parent_span_id(parent);
    }
    if let Some(id) = record.correlation_id {
        builder = builder.correlation_id(id).attribute("correlation_id", id.to_string());
    }
    let mut span = builder.build().ok()?;
    if let Some(state) = crate::tracestates::of(record.trace_id) {
        span.set_trace_state(&state);
    }
    if record.remote_parent && site.kind == crate::SpanKind::Internal {
        // A call made directly in a context extracted from a request serves that request.
        span.set_kind(crate::SpanKind::Server);
    }
    for (key, value) in crate::attributes::kept(record.span_id).iter().flat_map(crate::attributes::Attributes::iter) {
        if key == crate::attributes::CLIENT_KEY {
            // Its context went into an outgoing request; a server span stays a server.
            if span.kind() == crate::SpanKind::Internal {
                span.set_kind(crate::SpanKind::Client);
            }
            continue;
        }
        // A value the entity refuses (its own limits) is left out; the span is kept.
        let _ = span.set_attribute(key, value);
    }
    Some(span)
}
