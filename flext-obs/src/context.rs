//! Correlation context: the request's correlation ID and the current span, per thread, carried
//! into async tasks and spawned threads, and across processes in HTTP-style headers (W3C
//! `traceparent`, `x-correlation-id`).
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

use crate::entity::{CorrelationId, SpanId, TraceId};
use crate::error::{Error, Result};
use crate::thread::THREAD;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::Poll;

/// Header carrying the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// Header carrying the correlation ID.
pub const CORRELATION_ID: &str = "x-correlation-id";

/// The span a piece of work runs in: its trace, its ID and whether the trace is sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanContext {
    /// The trace.
    pub trace_id: TraceId,
    /// The span.
    pub span_id: SpanId,
    /// The W3C sampled flag.
    pub sampled: bool,
}

/// What travels with a piece of work: correlation ID and current span. `Copy`, so carrying it is
/// free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct Context {
    correlation_id: Option<CorrelationId>,
    span: Option<SpanContext>,
    /// Call-site index of the monitored function this work runs in (0: none), for the
    /// `caller_function` label of the calls it makes.
    site: u32,
}

/// The calling thread's context (empty on a thread that never had one).
#[inline]
pub fn current() -> Context {
    THREAD.with(|t| t.context.get())
}

/// The current correlation ID; when there is none, a new one is generated and set on this
/// thread, so every later call in the same work sees the same ID.
///
/// ```
/// let first = flext_obs::context::correlation_id();
/// assert_eq!(flext_obs::context::correlation_id(), first);
/// ```
pub fn correlation_id() -> CorrelationId {
    if let Some(id) = current().correlation_id {
        return id;
    }
    let id = CorrelationId::new();
    THREAD.with(|t| {
        let mut cx = t.context.get();
        cx.correlation_id = Some(id);
        t.context.set(cx);
    });
    id
}

/// Runs `f` with `id` as the correlation ID, then restores what was there before.
pub fn with_correlation_id<R>(id: CorrelationId, f: impl FnOnce() -> R) -> R {
    current().with_correlation_id(id).run(f)
}

/// Makes `cx` the thread's context and returns the previous one.
#[inline]
pub(crate) fn swap(cx: Context) -> Context {
    THREAD.with(|t| t.context.replace(cx))
}

impl Context {
    /// An empty context: no correlation ID, no span.
    pub const fn new() -> Self {
        Context { correlation_id: None, span: None, site: 0 }
    }

    /// The correlation ID, if one is set.
    pub fn correlation_id(&self) -> Option<CorrelationId> {
        self.correlation_id
    }

    /// The current span, if any.
    pub fn span(&self) -> Option<SpanContext> {
        self.span
    }

    pub(crate) fn site(&self) -> u32 {
        self.site
    }

    /// The context of a monitored call made in this one.
    #[inline]
    pub(crate) fn enter_call(self, span: SpanContext, site: u32) -> Self {
        Context { correlation_id: self.correlation_id, span: Some(span), site }
    }

    /// This context with another correlation ID.
    #[must_use]
    pub fn with_correlation_id(mut self, id: CorrelationId) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// This context with another current span.
    #[must_use]
    pub fn with_span(mut self, span: SpanContext) -> Self {
        self.span = Some(span);
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
    pub fn attach(self) -> ContextGuard {
        ContextGuard { previous: swap(self), _not_send: PhantomData }
    }

    /// Runs `f` in this context.
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        let _guard = self.attach();
        f()
    }

    /// Wraps `f` so that it runs in this context wherever it is called: on a spawned thread, in
    /// a pool, later.
    pub fn wrap<R>(self, f: impl FnOnce() -> R) -> impl FnOnce() -> R {
        move || self.run(f)
    }

    /// Writes `traceparent` (when there is a span) and `x-correlation-id` (when there is an ID)
    /// into outgoing headers.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use flext_obs::context::{Context, SpanContext};
    /// let span = SpanContext { trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".parse()?, span_id: "00f067aa0ba902b7".parse()?, sampled: true };
    /// let mut headers = HashMap::new();
    /// Context::new().with_span(span).inject(&mut headers);
    /// assert_eq!(headers["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    /// assert_eq!(Context::extract(&headers)?.span(), Some(span));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn inject(&self, headers: &mut impl Injector) {
        if let Some(span) = self.span {
            headers.set(TRACEPARENT, format!("00-{}-{}-{:02x}", span.trace_id, span.span_id, u8::from(span.sampled)));
        }
        if let Some(id) = self.correlation_id {
            headers.set(CORRELATION_ID, id.to_string());
        }
    }

    /// Reads the context of an incoming request. Missing headers leave their part empty; a
    /// malformed header is an error, never half-parsed.
    ///
    /// ```
    /// use flext_obs::context::Context;
    /// let headers = [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7")];
    /// let err = Context::extract(&headers[..]).unwrap_err();
    /// assert!(err.to_string().starts_with("malformed traceparent header"));
    /// ```
    pub fn extract(headers: &(impl Extractor + ?Sized)) -> Result<Context> {
        let span = headers.get(TRACEPARENT).map(parse_traceparent).transpose()?;
        let correlation_id = headers
            .get(CORRELATION_ID)
            .map(|value| {
                value.trim().parse::<CorrelationId>().map_err(|_| Error::Header {
                    header: CORRELATION_ID,
                    value: value.to_owned(),
                    reason: "expected a UUID (8-4-4-4-12 hex digits)",
                })
            })
            .transpose()?;
        Ok(Context { correlation_id, span, site: 0 })
    }
}

/// Parses a W3C `traceparent` value: `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
/// Later versions are read by the version-00 layout, as the W3C specification asks.
fn parse_traceparent(value: &str) -> Result<SpanContext> {
    let bad = |reason: &'static str| Error::Header { header: TRACEPARENT, value: value.to_owned(), reason };
    let text = value.trim();
    let parts: Vec<&str> = text.split('-').collect();
    if parts.len() < 4 {
        return Err(bad("expected version-traceid-spanid-flags"));
    }
    let (version, trace, span, flags) = (parts[0], parts[1], parts[2], parts[3]);
    if version.len() != 2 || !version.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(bad("version must be 2 lower-case hex digits"));
    }
    if version == "ff" {
        return Err(bad("version ff is forbidden"));
    }
    if version == "00" && parts.len() != 4 {
        return Err(bad("version 00 has exactly 4 fields"));
    }
    let trace_id = trace.parse::<TraceId>().map_err(|_| bad("trace id must be 32 lower-case hex digits, not all zero"))?;
    let span_id = span.parse::<SpanId>().map_err(|_| bad("parent id must be 16 lower-case hex digits, not all zero"))?;
    if flags.len() != 2 {
        return Err(bad("flags must be 2 lower-case hex digits"));
    }
    let flags = u8::from_str_radix(flags, 16)
        .ok()
        .filter(|_| flags.bytes().all(|b| !b.is_ascii_uppercase()))
        .ok_or_else(|| bad("flags must be 2 lower-case hex digits"))?;
    Ok(SpanContext { trace_id, span_id, sampled: flags & 1 == 1 })
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
        swap(self.previous);
    }
}

/// Something outgoing headers can be written into.
pub trait Injector {
    /// Sets header `name` to `value`, replacing an earlier value.
    fn set(&mut self, name: &str, value: String);
}

/// Something incoming headers can be read from; names match case-insensitively.
pub trait Extractor {
    /// The value of header `name`.
    fn get(&self, name: &str) -> Option<&str>;
}

impl<S: std::hash::BuildHasher> Injector for HashMap<String, String, S> {
    fn set(&mut self, name: &str, value: String) {
        self.insert(name.to_owned(), value);
    }
}
impl Injector for BTreeMap<String, String> {
    fn set(&mut self, name: &str, value: String) {
        self.insert(name.to_owned(), value);
    }
}
impl Injector for Vec<(String, String)> {
    fn set(&mut self, name: &str, value: String) {
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.push((name.to_owned(), value));
    }
}

impl<S: std::hash::BuildHasher> Extractor for HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}
impl Extractor for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}
impl<K: AsRef<str>, V: AsRef<str>> Extractor for [(K, V)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}
impl<K: AsRef<str>, V: AsRef<str>> Extractor for Vec<(K, V)> {
    fn get(&self, name: &str) -> Option<&str> {
        Extractor::get(self.as_slice(), name)
    }
}

pin_project_lite::pin_project! {
    /// A future that runs every poll in its own context (see [`FutureExt`]).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct WithContext<F> {
        #[pin]
        inner: F,
        context: Context,
    }
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // The task's context is swapped in for the poll and swapped back out afterwards (also
        // on unwind), so changes made inside the task persist to its next poll and never leak
        // into whatever the executor thread runs next.
        let mut guard = PollGuard { saved: this.context, previous: None };
        guard.previous = Some(swap(*guard.saved));
        this.inner.poll(cx)
    }
}

struct PollGuard<'a> {
    saved: &'a mut Context,
    previous: Option<Context>,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        if let Some(previous) = self.previous {
            *self.saved = swap(previous);
        }
    }
}

/// Carries a [`Context`] across `.await` points and executor threads.
///
/// ```
/// use flext_obs::context::{self, FutureExt};
/// let id = flext_obs::CorrelationId::new();
/// let task = context::with_correlation_id(id, || async { context::current().correlation_id() }.with_current_context());
/// // polled anywhere, later: the task still sees its ID
/// let seen = futures_lite_block_on(task);
/// assert_eq!(seen, Some(id));
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// ```
pub trait FutureExt: Future + Sized {
    /// Runs the future in `context`.
    fn with_context(self, context: Context) -> WithContext<Self> {
        WithContext { inner: self, context }
    }

    /// Runs the future in the context current now (the usual call before `tokio::spawn`).
    fn with_current_context(self) -> WithContext<Self> {
        self.with_context(current())
    }
}

impl<F: Future> FutureExt for F {}

/// `http::HeaderMap` (as axum, hyper and reqwest use it) carries the context too.
///
/// ```
/// use flext_obs::context::{Context, SpanContext};
/// let mut headers = axum::http::HeaderMap::new();
/// let span = SpanContext { trace_id: flext_obs::TraceId::random(), span_id: flext_obs::SpanId::random(), sampled: true };
/// Context::new().with_span(span).inject(&mut headers);
/// assert_eq!(Context::extract(&headers)?.span(), Some(span));
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[cfg(feature = "http")]
impl Extractor for axum::http::HeaderMap {
    fn get(&self, name: &str) -> Option<&str> {
        axum::http::HeaderMap::get(self, name).and_then(|value| value.to_str().ok())
    }
}

#[cfg(feature = "http")]
impl Injector for axum::http::HeaderMap {
    fn set(&mut self, name: &str, value: String) {
        if let (Ok(name), Ok(value)) = (axum::http::HeaderName::from_bytes(name.as_bytes()), axum::http::HeaderValue::from_str(&value)) {
            self.insert(name, value);
        }
    }
}
