//! The `tracing` span of a monitored call, named after the function (`Orders::place`, as
//! `#[instrument]` names its spans), with the fields `function`, `module`, `trace_id`,
//! `correlation_id` and those of the attribute's `fields(...)`, `ret` and `err`.
//!
//! `tracing`'s macros need the name as a literal; the attribute would have to expand them in
//! every monitored function. Instead each call site builds its callsite once, at run time, and
//! registers it with `tracing-core` like a macro-made one: interest is cached per callsite, and a
//! call checks it with one relaxed load.
//!
//! Off by default ([`super::set_tracing_spans`]): then a call costs one relaxed load here.

use crate::context::SpanContext;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use tracing_core::callsite::Callsite;
use tracing_core::field::FieldSet;
use tracing_core::subscriber::Interest;
use tracing_core::{Kind, Level, Metadata};

const NEVER: u8 = 0;
const SOMETIMES: u8 = 1;
const ALWAYS: u8 = 2;

/// One call site's `tracing` callsite.
pub(crate) struct SpanSite {
    metadata: OnceLock<Metadata<'static>>,
    interest: AtomicU8,
}

/// The metadata of a callsite whose own is not set yet (never seen by a subscriber: a callsite
/// is registered only after its metadata is set).
static UNSET: SpanSite = SpanSite { metadata: OnceLock::new(), interest: AtomicU8::new(NEVER) };
static UNSET_METADATA: Metadata<'static> = Metadata::new(
    "flext_monitor",
    "flext_obs",
    Level::INFO,
    None,
    None,
    None,
    FieldSet::new(&[], tracing_core::identify_callsite!(&UNSET)),
    Kind::SPAN,
);

/// The fields every monitored span declares, before the attribute's own.
const FIXED_FIELDS: [&str; 4] = ["function", "module", "trace_id", "correlation_id"];

impl SpanSite {
    /// Builds and registers the callsite of `function` (once per call site, so leaking it is
    /// bounded by the number of monitored functions).
    pub(crate) fn leak(function: &'static str, module: &'static str, extra: &'static [&'static str]) -> &'static SpanSite {
        let site: &'static SpanSite = Box::leak(Box::new(SpanSite { metadata: OnceLock::new(), interest: AtomicU8::new(SOMETIMES) }));
        let names: &'static [&'static str] = if extra.is_empty() {
            &FIXED_FIELDS
        } else {
            let mut names: Vec<&'static str> = FIXED_FIELDS.to_vec();
            names.extend(extra.iter().copied().filter(|name| !FIXED_FIELDS.contains(name)));
            Box::leak(names.into_boxed_slice())
        };
        let fields = FieldSet::new(names, tracing_core::identify_callsite!(site));
        let module = if module.is_empty() { None } else { Some(module) };
        let _ =
            site.metadata.set(Metadata::new(function, module.unwrap_or("flext_obs"), Level::INFO, None, None, module, fields, Kind::SPAN));
        tracing_core::callsite::register(site);
        site
    }

    fn metadata_static(&'static self) -> &'static Metadata<'static> {
        self.metadata.get().unwrap_or(&UNSET_METADATA)
    }

    /// Whether a subscriber may want this span now (tracing's own macro check).
    #[inline]
    fn enabled(&'static self) -> bool {
        if Level::INFO > tracing::level_filters::STATIC_MAX_LEVEL || Level::INFO > tracing::level_filters::LevelFilter::current() {
            return false;
        }
        match self.interest.load(Ordering::Relaxed) {
            NEVER => false,
            ALWAYS => true,
            _ => tracing::dispatcher::get_default(|d| d.enabled(self.metadata_static())),
        }
    }
}

impl Callsite for SpanSite {
    fn set_interest(&self, interest: Interest) {
        let value = if interest.is_never() {
            NEVER
        } else if interest.is_always() {
            ALWAYS
        } else {
            SOMETIMES
        };
        self.interest.store(value, Ordering::Relaxed);
    }

    fn metadata(&self) -> &Metadata<'_> {
        self.metadata.get().unwrap_or(&UNSET_METADATA)
    }
}

/// Opens the `tracing` span of a call (entered on this thread for a sync call); a disabled span
/// when the spans are switched off ([`super::set_tracing_spans`]) or no subscriber wants it.
#[inline]
pub(crate) fn open(site: &'static SpanSite, span: &SpanContext, attach: bool) -> tracing::Span {
    if !super::TRACING_SPANS.load(Ordering::Relaxed) || !site.enabled() {
        return tracing::Span::none();
    }
    open_enabled(site, span, attach)
}

#[cold]
#[inline(never)]
fn open_enabled(site: &'static SpanSite, span: &SpanContext, attach: bool) -> tracing::Span {
    let metadata = site.metadata_static();
    let fields = metadata.fields();
    // The fixed fields come first in every call site's field set ([`SpanSite::leak`]): taken by
    // position, not looked up by name on every call.
    let mut fixed = fields.iter();
    let (Some(function), Some(module), Some(trace_id), Some(correlation_id)) = (fixed.next(), fixed.next(), fixed.next(), fixed.next())
    else {
        return tracing::Span::none();
    };
    let module_name = metadata.module_path().unwrap_or("");
    let trace = tracing::field::display(span.trace_id);
    let correlation = crate::context::current_correlation_id().map(tracing::field::display);
    // Every fixed field in the span's first value set: one `new_span` call, no `record` after.
    let values = [
        (&function, Some(&metadata.name() as &dyn tracing::Value)),
        (&module, Some(&module_name as &dyn tracing::Value)),
        (&trace_id, Some(&trace as &dyn tracing::Value)),
        (&correlation_id, correlation.as_ref().map(|id| id as &dyn tracing::Value)),
    ];
    let tracing = tracing::Span::new(metadata, &fields.value_set(&values));
    if attach {
        // Entered through the dispatcher the span holds: no second look-up of the default one.
        tracing.with_subscriber(|(id, dispatch)| dispatch.enter(id));
    }
    tracing
}

/// Closes a call's `tracing` span (exited first if it was entered on this thread), leaving a
/// disabled span behind, which holds nothing.
#[inline]
pub(crate) fn close(tracing: &mut tracing::Span, attached: bool) {
    if tracing.is_disabled() {
        return;
    }
    close_enabled(tracing, attached);
}

#[cold]
#[inline(never)]
fn close_enabled(tracing: &mut tracing::Span, attached: bool) {
    if attached {
        tracing.with_subscriber(|(id, dispatch)| dispatch.exit(id));
    }
    drop(std::mem::replace(tracing, tracing::Span::none()));
}
