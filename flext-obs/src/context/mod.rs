//! Correlation context: the request's correlation ID, the current span, and what W3C
//! propagation carries beside it (`tracestate`, `baggage`), per thread, carried into async tasks
//! and spawned threads, and across processes in HTTP-style headers (W3C `traceparent`,
//! `tracestate`, `baggage`, and `x-correlation-id`).
//!
//! ```
//! use flext_obs::context::{self, Context};
//! let id = flext_obs::CorrelationId::new();
//! context::with_correlation_id(id, || {
//!     assert_eq!(context::current().correlation_id(), Some(id));
//!     // the context travels into a thread when the closure is wrapped
//!     let handle = std::thread::spawn(context::current().wrap(|| context::current().correlation_id()));
//!     assert_eq!(handle.join().unwrap(), Some(id));
//! });
//! assert_eq!(context::current().correlation_id(), None);
//! ```

mod baggage;
mod carriers;
mod future;
mod propagation;

pub use crate::entity::tracestate::{MAX_TRACESTATE_MEMBERS, TRACESTATE, TraceState};
pub use baggage::{BAGGAGE, Baggage, MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS};
pub use carriers::{Extractor, Injector};
pub use future::{FutureExt, WithContext};
pub use propagation::Extracted;

use crate::entity::CorrelationId;
pub use crate::entity::ids::SpanContext;
pub(crate) use crate::thread::CallScope;
use crate::thread::THREAD;
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Arc;

/// Header carrying the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// Header carrying the correlation ID.
pub const CORRELATION_ID: &str = "x-correlation-id";

/// What travels with a piece of work: correlation ID, current span, and the W3C `tracestate`
/// and `baggage` that came with the request. The ID and span are inline; `tracestate` and
/// `baggage` (when there are any) sit behind one shared pointer, so cloning a context never
/// allocates and a context without them is carried as plain words.
#[derive(Clone, Debug, PartialEq, Eq, Default, Hash)]
pub struct Context {
    correlation_id: Option<CorrelationId>,
    span: Option<SpanContext>,
    /// Call-site index of the monitored function this work runs in (0: none), for the
    /// `caller_function` label of the calls it makes.
    site: u32,
    /// Whether `span` came from another process (extracted from headers): a monitored call
    /// made directly in it is the SERVER side of that request.
    remote: bool,
    /// `tracestate` and `baggage`, when the context has either.
    carried: Option<Arc<Carried>>,
}

/// The owned, bounded part of a context: what W3C propagation carries beside `traceparent`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Hash)]
pub(crate) struct Carried {
    pub(crate) tracestate: Option<TraceState>,
    pub(crate) baggage: Option<Baggage>,
}

impl Carried {
    /// `None` when there is nothing to carry, so an empty context stays pointer-free.
    fn shared(tracestate: Option<TraceState>, baggage: Option<Baggage>) -> Option<Arc<Carried>> {
        let tracestate = tracestate.filter(|t| !t.is_empty());
        let baggage = baggage.filter(|b| !b.is_empty());
        (tracestate.is_some() || baggage.is_some()).then(|| Arc::new(Carried { tracestate, baggage }))
    }
}

/// The calling thread's context (empty on a thread that never had one).
#[inline]
pub fn current() -> Context {
    THREAD.with(|t| Context::from_parts(t.correlation.get(), t.scope.get()))
}

thread_local! {
    /// The thread's `tracestate` and `baggage`. Apart from [`THREAD`] because it owns memory
    /// (and so has a destructor); monitored calls never touch it. Read with `try_with`: during
    /// thread teardown it reads as empty instead of panicking.
    static CARRIED: Cell<Option<Arc<Carried>>> = const { Cell::new(None) };
}

/// The calling thread's `tracestate` and `baggage`.
fn current_carried() -> Option<Arc<Carried>> {
    CARRIED
        .try_with(|cell| {
            let carried = cell.take();
            let copy = carried.clone();
            cell.set(carried);
            copy
        })
        .ok()
        .flatten()
}

/// Sets the calling thread's `tracestate` and `baggage`, returning what was there.
fn replace_carried(carried: Option<Arc<Carried>>) -> Option<Arc<Carried>> {
    CARRIED.try_with(|cell| cell.replace(carried)).ok().flatten()
}

/// The calling thread's correlation ID, read without the rest of the context.
#[inline]
pub(crate) fn current_correlation_id() -> Option<CorrelationId> {
    THREAD.with(|t| t.correlation.get())
}

/// The correlation ID to stamp on one entity (a log line, an alert, a span): the current one,
/// or, when none is set, a new one that belongs to that entity alone.
///
/// Reading never changes the thread's context: a fresh ID is *not* kept, because the thread
/// (an executor worker, a pool thread) goes on to run unrelated requests that must not inherit
/// it. To give a piece of work one ID, set it ([`with_correlation_id`], [`Context::attach`]).
///
/// ```
/// use flext_obs::context;
/// // nothing set: each call gets an ID of its own, and the thread stays without one
/// assert_ne!(context::correlation_id(), context::correlation_id());
/// assert_eq!(context::current().correlation_id(), None);
/// // set: every call in the work sees it
/// let id = flext_obs::CorrelationId::new();
/// context::with_correlation_id(id, || assert_eq!(context::correlation_id(), id));
/// ```
pub fn correlation_id() -> CorrelationId {
    // `CorrelationId::default()` is a new random one.
    current().correlation_id.unwrap_or_default()
}

/// Runs `f` with `id` as the correlation ID, then restores what was there before.
pub fn with_correlation_id<R>(id: CorrelationId, f: impl FnOnce() -> R) -> R {
    current().with_correlation_id(id).run(f)
}

/// Makes `cx` the thread's context and returns the previous one.
#[inline]
pub(crate) fn swap(cx: Context) -> Context {
    THREAD.with(|t| {
        let scope = t.scope.replace(cx.scope());
        Context {
            correlation_id: t.correlation.replace(cx.correlation_id),
            span: scope.span,
            site: scope.site,
            remote: scope.remote(),
            carried: replace_carried(cx.carried),
        }
    })
}

/// The `tracestate` of the calling thread's context, for a span that records it.
pub(crate) fn current_tracestate() -> Option<TraceState> {
    current_carried().and_then(|c| c.tracestate.clone())
}

impl Context {
    /// An empty context: no correlation ID, no span.
    pub const fn new() -> Self {
        Context { correlation_id: None, span: None, site: 0, remote: false, carried: None }
    }

    /// The correlation ID, if one is set.
    pub fn correlation_id(&self) -> Option<CorrelationId> {
        self.correlation_id
    }

    /// The current span, if any.
    pub fn span(&self) -> Option<SpanContext> {
        self.span
    }

    /// The W3C `tracestate` that came with the span, if any (carried unchanged).
    ///
    /// ```
    /// use flext_obs::context::Context;
    /// let headers = [
    ///     ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ///     ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
    /// ];
    /// let cx = Context::extract(&headers).context;
    /// assert_eq!(cx.tracestate().map(|ts| ts.get("rojo")), Some(Some("00f067aa0ba902b7")));
    /// ```
    pub fn tracestate(&self) -> Option<&TraceState> {
        self.carried.as_deref().and_then(|c| c.tracestate.as_ref())
    }

    /// The W3C `baggage`: application key-value pairs that travel with the request.
    ///
    /// ```
    /// use flext_obs::context::{Baggage, Context};
    /// let cx = Context::new().with_baggage(Baggage::new().with("tenant", "acme")?);
    /// assert_eq!(cx.baggage().and_then(|b| b.get("tenant")), Some("acme"));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn baggage(&self) -> Option<&Baggage> {
        self.carried.as_deref().and_then(|c| c.baggage.as_ref())
    }

    /// Whether the span came from another process (extracted from a request's headers): a
    /// monitored call made directly in this context is recorded as the SERVER span of that
    /// request, its parent marked remote.
    ///
    /// ```
    /// use flext_obs::context::Context;
    /// let cx = Context::extract(&[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]).context;
    /// assert!(cx.is_remote());
    /// assert!(!Context::new().is_remote());
    /// ```
    pub fn is_remote(&self) -> bool {
        self.remote && self.span.is_some()
    }

    pub(crate) fn site(&self) -> u32 {
        self.site
    }

    /// The call scope part of the context.
    fn scope(&self) -> CallScope {
        let mut flags = 0;
        if self.is_remote() {
            flags |= CallScope::REMOTE;
        }
        if self.tracestate().is_some() {
            flags |= CallScope::TRACESTATE;
        }
        CallScope { span: self.span, site: self.site, flags }
    }

    /// A context made of a correlation ID and a call scope, with the calling thread's
    /// `tracestate` and `baggage`.
    #[inline]
    pub(crate) fn from_parts(correlation_id: Option<CorrelationId>, scope: CallScope) -> Self {
        Context { correlation_id, span: scope.span, site: scope.site, remote: scope.remote(), carried: current_carried() }
    }

    /// This context with another correlation ID.
    #[must_use]
    pub fn with_correlation_id(mut self, id: CorrelationId) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// This context with another current span (a local one: see [`Context::with_remote_span`]).
    #[must_use]
    pub fn with_span(mut self, span: SpanContext) -> Self {
        self.span = Some(span);
        self.remote = false;
        self
    }

    /// This context with another process's span as the current span, as if extracted from its
    /// request: a monitored call made in it is that request's SERVER span.
    ///
    /// ```
    /// use flext_obs::context::{Context, SpanContext};
    /// let span = SpanContext { trace_id: flext_obs::TraceId::random(), span_id: flext_obs::SpanId::random(), sampled: true };
    /// assert!(Context::new().with_remote_span(span).is_remote());
    /// ```
    #[must_use]
    pub fn with_remote_span(mut self, span: SpanContext) -> Self {
        self.span = Some(span);
        self.remote = true;
        self
    }

    /// This context with a `tracestate` (replacing any; an empty one removes it), carried
    /// unchanged to the spans made in it and into the headers it injects.
    ///
    /// ```
    /// use flext_obs::context::{Context, TraceState};
    /// let cx = Context::new().with_tracestate("rojo=00f067aa0ba902b7".parse::<TraceState>()?);
    /// assert_eq!(cx.tracestate().map(ToString::to_string).as_deref(), Some("rojo=00f067aa0ba902b7"));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    #[must_use]
    pub fn with_tracestate(mut self, tracestate: TraceState) -> Self {
        self.carried = Carried::shared(Some(tracestate), self.baggage().cloned());
        self
    }

    /// This context with `baggage` (replacing any; an empty one removes it).
    ///
    /// ```
    /// use flext_obs::context::{self, Baggage, Context};
    /// let baggage = Baggage::new().with("tenant", "acme")?.with("plan", "gold plus")?;
    /// let seen = Context::new().with_baggage(baggage).run(|| context::current().baggage().map(ToString::to_string));
    /// assert_eq!(seen.as_deref(), Some("tenant=acme,plan=gold%20plus"));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    #[must_use]
    pub fn with_baggage(mut self, baggage: Baggage) -> Self {
        self.carried = Carried::shared(self.tracestate().cloned(), Some(baggage));
        self
    }

    /// Makes this the thread's context until the guard is dropped, then restores the previous
    /// one. Guards must be dropped in reverse order of creation (they are, when scoped).
    ///
    /// ```
    /// use flext_obs::{context::{self, Context}, CorrelationId};
    /// let id = CorrelationId::new();
    /// {
    ///     let _guard = Context::new().with_correlation_id(id).attach();
    ///     assert_eq!(context::current().correlation_id(), Some(id));
    /// }
    /// assert_ne!(context::current().correlation_id(), Some(id));
    /// ```
    pub fn attach(&self) -> ContextGuard {
        ContextGuard { previous: swap(self.clone()), _not_send: PhantomData }
    }

    /// Runs `f` in this context (the context stays usable: running work in it again, or in
    /// several places, is cheap).
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.attach();
        f()
    }

    /// Wraps `f` so that it runs in this context wherever it is called: on a spawned thread, in
    /// a pool, later.
    pub fn wrap<R>(self, f: impl FnOnce() -> R) -> impl FnOnce() -> R {
        move || self.run(f)
    }
}

/// Restores the previous context when dropped. Not `Send`: it belongs to the thread it was
/// made on.
#[must_use = "the context is detached again as soon as the guard is dropped"]
#[derive(Debug)]
pub struct ContextGuard {
    previous: Context,
    _not_send: PhantomData<*const ()>,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        swap(std::mem::take(&mut self.previous));
    }
}
