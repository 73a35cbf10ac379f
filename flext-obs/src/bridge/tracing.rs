//! `tracing` spans become flext-obs spans: [`SpanLayer`], a `tracing_subscriber::Layer` that
//! records every span it sees (`#[instrument]` in sqlx, tower-http, reqwest-tracing, the user's
//! own code) as a span of the trace it runs in, exported over OTLP and shown on `/traces` with
//! the monitored calls.
//!
//! IDs are shared both ways: a `tracing` span opened inside a monitored call is the call's
//! child, and a monitored call inside an entered `tracing` span is that span's child (the layer
//! makes the span the thread's current flext-obs context while it is entered, so log lines
//! written then carry its IDs too). The span's fields (at creation and recorded later) are its
//! attributes; an `ERROR` event inside it, or a field named `error`, makes its status error.
//! The sampler decides as for any span (a child follows its parent), and each callsite keeps at
//! most the sampler's spans per second. The `tracing` span flext-obs opens for each monitored
//! call is not recorded a second time. (A layer's `Interest::never` would switch a callsite off
//! for every layer of the subscriber, so this one leaves interest to the others: with it
//! installed, monitored calls open their `tracing` span, as under any subscriber, when
//! [`crate::monitor::set_tracing_spans`] has them on; they are off by default.)
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt as _;
//! let subscriber = tracing_subscriber::registry().with(flext_obs::bridge::tracing::SpanLayer::new());
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("load_config", path = "/etc/app.toml");
//!     let _entered = span.enter();
//!     assert!(flext_obs::context::current().span().is_some()); // the span is the current context
//! });
//! ```

use crate::SpanStatus;
use crate::context::ContextGuard;
use crate::sample::RateLimiter;
use crate::trace::ActiveSpan;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use tracing_core::callsite::Identifier;
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The layer (see the [module docs](self)).
#[derive(Debug, Default, Clone)]
pub struct SpanLayer {
    limiters: Arc<RwLock<HashMap<Identifier, Arc<RateLimiter>>>>,
}

impl SpanLayer {
    /// The layer.
    pub fn new() -> Self {
        SpanLayer::default()
    }

    fn limiter(&self, callsite: Identifier) -> Arc<RateLimiter> {
        if let Some(limiter) = self.limiters.read().unwrap_or_else(PoisonError::into_inner).get(&callsite) {
            return Arc::clone(limiter);
        }
        // Bounded: one per span callsite of the program (callsites are static).
        Arc::clone(self.limiters.write().unwrap_or_else(PoisonError::into_inner).entry(callsite).or_default())
    }
}

/// The span flext-obs opens for a monitored call: its fields begin with these.
fn is_monitored_call(metadata: &Metadata<'_>) -> bool {
    let mut names = metadata.fields().iter().map(|f| f.name());
    metadata.is_span() && ["function", "module", "trace_id", "correlation_id"].iter().all(|expected| names.next() == Some(expected))
}

/// What the layer keeps in a recorded span's extensions.
struct Recorded {
    span: Option<ActiveSpan>,
    failed: bool,
    limiter: Arc<RateLimiter>,
}

thread_local! {
    /// The context guards of the entered spans, innermost last (entered and exited in order on
    /// one thread, as `tracing` requires).
    static ENTERED: RefCell<Vec<(Id, ContextGuard)>> = const { RefCell::new(Vec::new()) };
}

/// Whether `id` is the innermost recorded span entered on this thread.
fn is_innermost_entered(id: &Id) -> bool {
    ENTERED.with(|entered| entered.borrow().last().is_some_and(|(entered_id, _)| entered_id == id))
}

/// Fields as attributes; `error` marks the span failed.
struct Fields<'a> {
    span: &'a mut ActiveSpan,
    failed: &'a mut bool,
}

impl tracing_core::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing_core::Field, value: &dyn fmt::Debug) {
        self.set(field.name(), &format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing_core::Field, value: &str) {
        self.set(field.name(), value);
    }
    fn record_error(&mut self, field: &tracing_core::Field, value: &(dyn std::error::Error + 'static)) {
        *self.failed = true;
        self.set(field.name(), &value.to_string());
    }
}

impl Fields<'_> {
    fn set(&mut self, name: &str, value: &str) {
        if name == "error" {
            *self.failed = true;
        }
        // An attribute the span refuses (past its limit, a bad key) is left out.
        let _ = self.span.set_attribute(name, value);
    }
}

/// Whether an event marks its span failed: `ERROR` level or an `error` field.
struct ErrorField(bool);

impl tracing_core::field::Visit for ErrorField {
    fn record_debug(&mut self, field: &tracing_core::Field, _: &dyn fmt::Debug) {
        self.0 |= field.name() == "error";
    }
}

impl<S> tracing_subscriber::Layer<S> for SpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span_ref) = ctx.span(id) else { return };
        if is_monitored_call(attrs.metadata()) {
            return;
        }
        // The parent: the enclosing recorded `tracing` span, else the thread's current
        // flext-obs span (a monitored call, or an entered recorded span), else a new trace. An
        // enclosing span that is the innermost one entered on this thread made itself the
        // thread's context when entered, so the thread's context is it or a monitored call made
        // inside it since (whose own `tracing` span is off by default): the thread's context wins.
        let parent_context = span_ref.parent().filter(|parent| !is_innermost_entered(&parent.id())).and_then(|parent| {
            let extensions = parent.extensions();
            extensions.get::<Recorded>().and_then(|r| r.span.as_ref()).map(ActiveSpan::context)
        });
        let started = match parent_context {
            Some(context) => context.run(|| crate::trace::start_trace(attrs.metadata().name())),
            None => crate::trace::start_trace(attrs.metadata().name()),
        };
        let Ok(mut span) = started else { return };
        let mut failed = false;
        attrs.record(&mut Fields { span: &mut span, failed: &mut failed });
        let _ = span.set_attribute("code.namespace", attrs.metadata().target());
        span_ref.extensions_mut().insert(Recorded { span: Some(span), failed, limiter: self.limiter(attrs.metadata().callsite()) });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span_ref) = ctx.span(id) else { return };
        let mut extensions = span_ref.extensions_mut();
        let Some(recorded) = extensions.get_mut::<Recorded>() else { return };
        let Recorded { span: Some(span), failed, .. } = recorded else { return };
        values.record(&mut Fields { span, failed });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span_ref) = ctx.event_span(event) else { return };
        let mut error = ErrorField(*event.metadata().level() == Level::ERROR);
        if !error.0 {
            event.record(&mut error);
        }
        if error.0 {
            if let Some(recorded) = span_ref.extensions_mut().get_mut::<Recorded>() {
                recorded.failed = true;
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span_ref) = ctx.span(id) else { return };
        let context = span_ref.extensions().get::<Recorded>().and_then(|r| r.span.as_ref()).map(ActiveSpan::context);
        if let Some(context) = context {
            ENTERED.with(|entered| entered.borrow_mut().push((id.clone(), context.attach())));
        }
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            // Innermost first, as `tracing` exits; a span exited out of order restores what
            // was current before it (the guards after it are dropped with it).
            if let Some(at) = entered.iter().rposition(|(entered_id, _)| entered_id == id) {
                while entered.len() > at {
                    drop(entered.pop());
                }
            }
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span_ref) = ctx.span(&id) else { return };
        let Some(mut recorded) = span_ref.extensions_mut().remove::<Recorded>() else { return };
        if let Some(span) = recorded.span.take() {
            let status = if recorded.failed { SpanStatus::Error } else { SpanStatus::Completed };
            span.finish_rate_limited(status, &recorded.limiter);
        }
    }
}
