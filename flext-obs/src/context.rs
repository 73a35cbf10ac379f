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
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::{BuildHasher, Hash};
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

/// What travels with a piece of work: correlation ID and current span. `Copy` and inline (the
/// correlation ID's token included), so carrying it is a plain copy that never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct Context {
    correlation_id: Option<CorrelationId>,
    span: Option<SpanContext>,
    /// Call-site index of the monitored function this work runs in (0: none), for the
    /// `caller_function` label of the calls it makes.
    site: u32,
}

/// The part of a [`Context`] a monitored call changes: the current span and the monitored call
/// site it runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub(crate) struct CallScope {
    pub(crate) span: Option<SpanContext>,
    /// Call-site index of the monitored function (0: none).
    pub(crate) site: u32,
}

impl CallScope {
    /// No span, no monitored call.
    pub(crate) const NONE: CallScope = CallScope { span: None, site: 0 };
}

/// The calling thread's context (empty on a thread that never had one).
#[inline]
pub fn current() -> Context {
    THREAD.with(|t| {
        let scope = t.scope.get();
        Context { correlation_id: t.correlation.get(), span: scope.span, site: scope.site }
    })
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
        let scope = t.scope.replace(CallScope { span: cx.span, site: cx.site });
        Context { correlation_id: t.correlation.replace(cx.correlation_id), span: scope.span, site: scope.site }
    })
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

    /// A context made of a correlation ID and a call scope.
    #[inline]
    pub(crate) fn from_parts(correlation_id: Option<CorrelationId>, scope: CallScope) -> Self {
        Context { correlation_id, span: scope.span, site: scope.site }
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
    /// assert_eq!(Context::extract(&headers).context.span(), Some(span));
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

    /// Reads the context of an incoming request, leniently, as a service edge should: each
    /// header is taken or dropped on its own, so a malformed `x-correlation-id` never costs the
    /// valid `traceparent` next to it (nor the other way round). What was dropped, and why, is in
    /// [`Extracted::rejected`]; a missing header simply leaves its part empty.
    ///
    /// Accepted: `traceparent` as W3C Trace Context writes it (version `00`, or a later version
    /// read by the version-00 layout); `x-correlation-id` as any token of 1 to
    /// [`MAX_CORRELATION_ID_LEN`](crate::MAX_CORRELATION_ID_LEN) printable ASCII characters
    /// (`0x21..=0x7E`), surrounding whitespace trimmed (see [`CorrelationId`]). Header names
    /// match case-insensitively. `headers` is anything that implements [`Extractor`]: an array
    /// or slice of name-value pairs, a `Vec` of them, a `HashMap` or `BTreeMap` of `&str` or
    /// `String`, or (feature `http`) an `http::HeaderMap`.
    ///
    /// ```
    /// use flext_obs::context::Context;
    /// let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// let extracted = Context::extract(&[("traceparent", traceparent), ("x-correlation-id", "has space")]);
    /// assert_eq!(extracted.context.span().map(|s| s.span_id.to_string()).as_deref(), Some("00f067aa0ba902b7"));
    /// assert_eq!(extracted.context.correlation_id(), None);
    /// assert!(extracted.rejected[0].to_string().starts_with(r#"malformed x-correlation-id header "has space""#));
    ///
    /// let from_proxy = Context::extract(&[("X-Correlation-ID", " req-42 ")]).context;
    /// assert_eq!(from_proxy.correlation_id().map(|id| id.to_string()).as_deref(), Some("req-42"));
    /// ```
    pub fn extract(headers: &(impl Extractor + ?Sized)) -> Extracted {
        let mut rejected = Vec::new();
        let span = headers.get(TRACEPARENT).and_then(|value| parse_traceparent(value).map_err(|err| rejected.push(err)).ok());
        let correlation_id =
            headers.get(CORRELATION_ID).and_then(|value| parse_correlation_id(value).map_err(|err| rejected.push(err)).ok());
        Extracted { context: Context { correlation_id, span, site: 0 }, rejected }
    }

    /// Reads the context of an incoming request, strictly: the first malformed header is an
    /// error and nothing is returned, for callers that would rather refuse the request (or a
    /// test that wants to see the headers are right). Accepts what [`Context::extract`] accepts.
    ///
    /// ```
    /// use flext_obs::context::Context;
    /// let headers = [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7")];
    /// let err = Context::extract_strict(&headers).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"malformed traceparent header "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7": expected version-traceid-spanid-flags"#
    /// );
    /// ```
    pub fn extract_strict(headers: &(impl Extractor + ?Sized)) -> Result<Context> {
        Context::extract(headers).into_result()
    }
}

/// What [`Context::extract`] read: the context made of the headers that were well formed, and
/// an error for each one that was dropped, so the caller can log or count them (or turn them
/// into a `400` with [`Extracted::into_result`]).
///
/// ```
/// use flext_obs::context::Context;
/// let extracted = Context::extract(&[("x-correlation-id", "")]);
/// assert_eq!(extracted.context, Context::new());
/// assert_eq!(extracted.errors().len(), 1);
/// assert!(Context::extract(&[("x-correlation-id", "req-42")]).errors().is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[must_use = "the extracted context does nothing until it is attached or used to run work"]
pub struct Extracted {
    /// The context of the well-formed headers (missing and dropped ones leave their part empty).
    pub context: Context,
    /// One [`Error::Header`] per header that was dropped, in the order `traceparent`,
    /// `x-correlation-id`.
    pub rejected: Vec<Error>,
}

impl Extracted {
    /// The errors of the dropped headers (empty when every header present was well formed).
    ///
    /// ```
    /// let extracted = flext_obs::context::Context::extract(&[("traceparent", "00-zz")]);
    /// assert_eq!(extracted.errors().len(), 1);
    /// ```
    pub fn errors(&self) -> &[Error] {
        &self.rejected
    }

    /// The context if no header was dropped, else the first error (what
    /// [`Context::extract_strict`] returns).
    ///
    /// ```
    /// let extracted = flext_obs::context::Context::extract(&[("x-correlation-id", "req-42")]);
    /// assert_eq!(extracted.into_result()?.correlation_id().map(|id| id.to_string()).as_deref(), Some("req-42"));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn into_result(self) -> Result<Context> {
        match self.rejected.into_iter().next() {
            Some(err) => Err(err),
            None => Ok(self.context),
        }
    }
}

/// Parses an `x-correlation-id` value (surrounding whitespace trimmed).
fn parse_correlation_id(value: &str) -> Result<CorrelationId> {
    CorrelationId::check(value.trim()).map_err(|rule| Error::Header {
        header: CORRELATION_ID,
        value: value.to_owned(),
        reason: rule.reason(),
    })
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
    let flags = match flags.as_bytes() {
        &[high, low] => lower_hex_digit(high).zip(lower_hex_digit(low)).map(|(high, low)| high << 4 | low),
        _ => None,
    };
    // Digit by digit: `u8::from_str_radix` would also take a sign (`+1`).
    let flags = flags.ok_or_else(|| bad("flags must be 2 lower-case hex digits"))?;
    Ok(SpanContext { trace_id, span_id, sampled: flags & 1 == 1 })
}

/// The value of one lower-case hex digit.
fn lower_hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
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
        swap(self.previous);
    }
}

/// Something outgoing headers can be written into.
pub trait Injector {
    /// Sets header `name` to `value`, replacing an earlier value.
    fn set(&mut self, name: &str, value: String);
}

/// Something incoming headers can be read from; names match case-insensitively. Implemented
/// for arrays, slices and `Vec`s of name-value pairs, `HashMap`s and `BTreeMap`s (names and
/// values as `&str`, `String` or anything that reads as `str`), references to any of these and
/// (feature `http`) `http::HeaderMap`; implement it for another header type to extract from it.
///
/// ```
/// use flext_obs::context::{Context, Extractor};
/// struct OneHeader(&'static str, &'static str);
/// impl Extractor for OneHeader {
///     fn get(&self, name: &str) -> Option<&str> {
///         self.0.eq_ignore_ascii_case(name).then_some(self.1)
///     }
/// }
/// let cx = Context::extract(&OneHeader("x-correlation-id", "req-42")).context;
/// assert_eq!(cx.correlation_id().map(|id| id.to_string()).as_deref(), Some("req-42"));
/// ```
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

/// Finds `name` among `pairs` case-insensitively.
fn find<'a, K: AsRef<str> + 'a, V: AsRef<str> + 'a>(pairs: impl IntoIterator<Item = (&'a K, &'a V)>, name: &str) -> Option<&'a str> {
    pairs.into_iter().find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
}

/// A reference reads what it refers to (so `&headers` passed on by reference still works).
impl<T: Extractor + ?Sized> Extractor for &T {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

/// A `HashMap` of `&str`, `String` (or anything else that borrows as `str`) names and values:
/// the exact name is looked up first, then the others are compared case-insensitively.
///
/// ```
/// use std::collections::HashMap;
/// use flext_obs::context::Context;
/// let borrowed: HashMap<&str, &str> = [("X-Correlation-Id", "req-42")].into();
/// assert!(Context::extract(&borrowed).context.correlation_id().is_some());
/// let owned: HashMap<String, String> = [("x-correlation-id".to_owned(), "req-42".to_owned())].into();
/// assert!(Context::extract(&owned).context.correlation_id().is_some());
/// ```
impl<K, V, S> Extractor for HashMap<K, V, S>
where
    K: Borrow<str> + AsRef<str> + Eq + Hash,
    V: AsRef<str>,
    S: BuildHasher,
{
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(AsRef::as_ref).or_else(|| find(self, name))
    }
}

/// A `BTreeMap` of names and values, like the `HashMap`.
///
/// ```
/// use std::collections::BTreeMap;
/// let headers: BTreeMap<String, &str> = [("X-CORRELATION-ID".to_owned(), "req-42")].into();
/// assert!(flext_obs::context::Context::extract(&headers).context.correlation_id().is_some());
/// ```
impl<K, V> Extractor for BTreeMap<K, V>
where
    K: Borrow<str> + AsRef<str> + Ord,
    V: AsRef<str>,
{
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(AsRef::as_ref).or_else(|| find(self, name))
    }
}

/// A slice of name-value pairs; the first pair with the name wins.
///
/// ```
/// let headers = vec![("x-correlation-id", "req-42")];
/// assert!(flext_obs::context::Context::extract(headers.as_slice()).context.correlation_id().is_some());
/// ```
impl<K: AsRef<str>, V: AsRef<str>> Extractor for [(K, V)] {
    fn get(&self, name: &str) -> Option<&str> {
        find(self.iter().map(|(k, v)| (k, v)), name)
    }
}

/// An array of name-value pairs, so headers can be written in place:
/// `Context::extract(&[("traceparent", value)])`.
///
/// ```
/// let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// assert!(flext_obs::context::Context::extract(&[("traceparent", value)]).context.span().is_some());
/// ```
impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Extractor for [(K, V); N] {
    fn get(&self, name: &str) -> Option<&str> {
        Extractor::get(self.as_slice(), name)
    }
}

/// A `Vec` of name-value pairs, like the slice.
///
/// ```
/// let headers = vec![("x-correlation-id".to_owned(), "req-42".to_owned())];
/// assert!(flext_obs::context::Context::extract(&headers).context.correlation_id().is_some());
/// ```
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
/// assert_eq!(Context::extract(&headers).context.span(), Some(span));
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
