//! Finished spans: a bounded buffer of the most recent spans, readable at run time.
//!
//! Monitored calls write their span into the calling thread's own ring (one per write lane, see
//! [`crate::store`]) with plain stores under a per-slot sequence number, so recording takes no
//! lock and readers never see a half-written span. Manual spans ([`start_trace`]) go to a small
//! locked buffer: they are made by hand, not on a hot path.
//!
//! ```
//! use flext_obs::{trace, SpanStatus};
//! let root = trace::start_trace("import_batch")?;
//! let mut child = root.child("parse_file")?;
//! child.set_attribute("file", "a.csv")?;
//! let child = child.finish(SpanStatus::Completed);
//! let root = root.finish(SpanStatus::Completed);
//! assert_eq!(child.parent_span_id(), Some(root.span_id()));
//! let spans = trace::traces();
//! assert_eq!(spans[&root.trace_id()].len(), 2);
//! # Ok::<(), flext_obs::Error>(())
//! ```

use crate::context::{self, Context, SpanContext};
use crate::entity::{CorrelationId, Span, SpanId, SpanStatus, TraceId};
use crate::error::Result;
use crate::span_record::SpanRecord;
use crate::store::lane::{self, Lane};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{LazyLock, Mutex, PoisonError};

/// Spans each thread's ring keeps.
pub const SPANS_PER_LANE: usize = 128;
/// Spans kept from threads without a lane, and manual spans.
pub const SHARED_SPANS: usize = 1024;

/// seq + 15 data words: trace ID (2), span ID, parent, flags (site, status, correlation ID
/// length), start, duration, correlation ID bytes (8).
const WORDS: usize = 16;

/// One slot: a sequence number (odd while being written) and the record's words.
#[repr(align(128))]
struct Slot([AtomicU64; WORDS]);

// A slot fills exactly its 128-byte alignment: two adjacent cache lines, never shared by two slots.
const _: () = assert!(std::mem::size_of::<Slot>() == 128);

#[cfg(feature = "otlp")]
mod export;
#[cfg(feature = "otlp")]
pub(crate) use export::{collect as collect_for_export, pending as pending_export, skip_pending as skip_pending_export};

/// One lane's ring; aligned so that two threads' `head` counters never share a cache line.
#[repr(align(128))]
struct Ring {
    head: AtomicU64,
    /// With OTLP export: the first span not yet handed to the export queue ([`export`]).
    #[cfg(feature = "otlp")]
    exported: AtomicU64,
    slots: Box<[Slot]>,
}

struct Buffers {
    lanes: Box<[Ring]>,
    shared: Mutex<VecDeque<SpanRecord>>,
    manual: Mutex<VecDeque<Span>>,
}

static BUFFERS: LazyLock<Buffers> = LazyLock::new(|| Buffers {
    lanes: (0..lane::count())
        .map(|_| Ring {
            head: AtomicU64::new(0),
            #[cfg(feature = "otlp")]
            exported: AtomicU64::new(0),
            slots: (0..SPANS_PER_LANE).map(|_| Slot(Default::default())).collect(),
        })
        .collect(),
    shared: Mutex::new(VecDeque::new()),
    manual: Mutex::new(VecDeque::new()),
});

fn status_code(status: SpanStatus) -> u64 {
    match status {
        SpanStatus::Pending => 0,
        SpanStatus::Completed => 1,
        SpanStatus::Error => 2,
        SpanStatus::Timeout => 3,
    }
}

fn status_from(code: u64) -> SpanStatus {
    match code {
        1 => SpanStatus::Completed,
        2 => SpanStatus::Error,
        3 => SpanStatus::Timeout,
        _ => SpanStatus::Pending,
    }
}

#[allow(clippy::cast_possible_truncation)] // splitting 128 bits into two halves on purpose
fn split(value: u128) -> (u64, u64) {
    ((value >> 64) as u64, value as u64)
}

fn join(hi: u64, lo: u64) -> u128 {
    u128::from(hi) << 64 | u128::from(lo)
}

impl SpanRecord {
    /// Writes the record into a slot's data words: the fixed fields, then the correlation ID's
    /// words only as far as its length reaches (nothing when there is none).
    #[inline]
    fn write_words(&self, data: &[AtomicU64]) {
        let (trace_hi, trace_lo) = split(self.trace_id.to_u128());
        let corr_len = self.correlation_id.as_ref().map_or(0, CorrelationId::len_u8);
        let flags = u64::from(self.site) | status_code(self.status) << 32 | u64::from(corr_len) << 40 | u64::from(self.remote_parent) << 48;
        let fixed =
            [trace_hi, trace_lo, self.span_id.to_u64(), self.parent.map_or(0, SpanId::to_u64), flags, self.start_raw, self.duration_ns];
        for (word, value) in data.iter().zip(fixed) {
            word.store(value, Ordering::Relaxed);
        }
        if let Some(id) = &self.correlation_id {
            let (_, corr) = id.as_words();
            for (word, value) in data[7..].iter().zip(corr).take(usize::from(corr_len).div_ceil(8)) {
                word.store(value, Ordering::Relaxed);
            }
        }
    }

    fn from_words(w: [u64; WORDS - 1]) -> Option<Self> {
        #[allow(clippy::cast_possible_truncation)] // the low 32 bits hold the site index
        let site = w[4] as u32;
        #[allow(clippy::cast_possible_truncation)] // bits 40..48 hold the correlation ID's length
        let corr_len = (w[4] >> 40) as u8;
        let mut corr = [0; 8];
        corr.copy_from_slice(&w[7..]);
        Some(SpanRecord {
            trace_id: TraceId::from_bytes(join(w[0], w[1]).to_be_bytes())?,
            span_id: SpanId::from_bytes(w[2].to_be_bytes())?,
            parent: SpanId::from_bytes(w[3].to_be_bytes()),
            site,
            status: status_from(w[4] >> 32 & 0xff),
            start_raw: w[5],
            duration_ns: w[6],
            correlation_id: CorrelationId::from_words(corr_len, corr),
            remote_parent: w[4] >> 48 & 1 == 1,
        })
    }
}

/// Keeps a finished monitored span (called from the monitor's guard, in its lane).
#[inline]
pub(crate) fn record_call(lane: Lane, span: &SpanRecord) {
    let buffers = &*BUFFERS;
    if let Some(i) = lane.owned() {
        let ring = &buffers.lanes[i];
        let written = ring.write(span);
        // Exported from the ring itself: no copy, one load per call ([`export`]).
        #[cfg(feature = "otlp")]
        if crate::outbox::is_open() {
            export::after_write(ring, span, written);
        }
        #[cfg(not(feature = "otlp"))]
        let _ = written;
    } else {
        let mut shared = buffers.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.len() == SHARED_SPANS {
            shared.pop_front();
        }
        shared.push_back(*span);
        drop(shared);
        #[cfg(feature = "otlp")]
        if crate::outbox::is_open() {
            crate::outbox::offer_call(span);
        }
    }
}

impl Ring {
    /// Writes the next span (only the lane's owner does); the number of spans written so far.
    #[inline]
    fn write(&self, span: &SpanRecord) -> u64 {
        let head = self.head.load(Ordering::Relaxed);
        #[allow(clippy::cast_possible_truncation)]
        let slot = &self.slots[(head as usize) % SPANS_PER_LANE].0;
        let seq = slot[0].load(Ordering::Relaxed);
        slot[0].store(seq.wrapping_add(1) | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        span.write_words(&slot[1..]);
        slot[0].store((seq | 1).wrapping_add(1), Ordering::Release);
        // Release: whoever reads the head (the export) sees the slots before it written.
        let written = head.wrapping_add(1);
        self.head.store(written, Ordering::Release);
        written
    }
}

/// Span number `n` of `ring`, if its slot holds a whole span (not being rewritten, not cleared).
#[cfg(feature = "otlp")]
fn read_slot(ring: &Ring, n: u64) -> Option<SpanRecord> {
    #[allow(clippy::cast_possible_truncation)] // the remainder is below SPANS_PER_LANE
    let slot = &ring.slots[(n % SPANS_PER_LANE as u64) as usize].0;
    read_words(slot).and_then(SpanRecord::from_words)
}

/// A slot's data words, if it holds a whole record.
fn read_words(slot: &[AtomicU64; WORDS]) -> Option<[u64; WORDS - 1]> {
    let before = slot[0].load(Ordering::Acquire);
    if before == 0 || before & 1 == 1 {
        return None;
    }
    let mut words = [0u64; WORDS - 1];
    for (value, word) in words.iter_mut().zip(&slot[1..]) {
        *value = word.load(Ordering::Relaxed);
    }
    fence(Ordering::Acquire);
    (slot[0].load(Ordering::Relaxed) == before).then_some(words)
}

/// Every span record currently buffered (torn slots, being rewritten as we read, are skipped).
pub(crate) fn records() -> Vec<SpanRecord> {
    let buffers = &*BUFFERS;
    let mut out = Vec::new();
    for ring in &*buffers.lanes {
        for slot in &*ring.slots {
            out.extend(read_words(&slot.0).and_then(SpanRecord::from_words));
        }
    }
    out.extend(buffers.shared.lock().unwrap_or_else(PoisonError::into_inner).iter().copied());
    out
}

/// The most recent finished spans (monitored calls and manual spans), oldest first.
pub fn recent_spans() -> Vec<Span> {
    let mut spans: Vec<Span> = records().into_iter().filter_map(crate::span_record::span_of).collect();
    spans.extend(BUFFERS.manual.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned());
    spans.sort_by_key(Span::start);
    spans
}

/// The recent spans grouped by trace, each trace's spans oldest first.
pub fn traces() -> BTreeMap<TraceId, Vec<Span>> {
    let mut traces: BTreeMap<TraceId, Vec<Span>> = BTreeMap::new();
    for span in recent_spans() {
        traces.entry(span.trace_id()).or_default().push(span);
    }
    traces
}

/// Forgets every buffered span (for tests).
pub fn clear() {
    let buffers = &*BUFFERS;
    for ring in &*buffers.lanes {
        for slot in &*ring.slots {
            // An even, non-zero sequence would make the slot readable again: reset it to "empty".
            slot.0[0].store(0, Ordering::Release);
        }
    }
    buffers.shared.lock().unwrap_or_else(PoisonError::into_inner).clear();
    buffers.manual.lock().unwrap_or_else(PoisonError::into_inner).clear();
    crate::attributes::clear();
}

/// Keeps a finished manual span if the sampler says so (manual spans have no rate limit: they
/// are made by hand, not per call).
fn keep_manual(span: Span, sampled: bool) {
    if crate::sample::keeps_unlimited(sampled, span.status() == SpanStatus::Error) {
        keep_finished(span);
    }
}

/// Keeps a finished span the sampler kept: exported (when OTLP is on) and in the buffer.
fn keep_finished(span: Span) {
    #[cfg(feature = "otlp")]
    if crate::outbox::is_open() {
        crate::outbox::offer(crate::outbox::Item::Manual(Box::new(span.clone())));
    }
    let mut manual = BUFFERS.manual.lock().unwrap_or_else(PoisonError::into_inner);
    if manual.len() == SHARED_SPANS {
        manual.pop_front();
    }
    manual.push_back(span);
}

/// Renders one trace as an indented tree, children under their parents, with durations.
///
/// ```
/// let root = flext_obs::trace::start_trace("request")?;
/// let child = root.child("query")?.finish(flext_obs::SpanStatus::Completed);
/// let root = root.finish(flext_obs::SpanStatus::Completed);
/// let tree = flext_obs::trace::format_tree(&[root, child]);
/// assert!(tree.starts_with("request"));
/// assert!(tree.contains("\n  query"));
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn format_tree(spans: &[Span]) -> String {
    fn walk(spans: &[Span], parent: Option<SpanId>, depth: usize, out: &mut String) {
        for span in spans.iter().filter(|s| s.parent_span_id() == parent || (depth == 0 && parent.is_none() && is_orphan(spans, s))) {
            let micros = span.duration().map_or_else(|| "-".to_owned(), |d| format!("{:.1} µs", d.as_secs_f64() * 1e6));
            let _ = writeln!(out, "{:indent$}{} [{}] {micros}", "", span.name(), span.status(), indent = depth * 2);
            walk(spans, Some(span.span_id()), depth + 1, out);
        }
    }
    fn is_orphan(spans: &[Span], span: &Span) -> bool {
        span.parent_span_id().is_some_and(|p| !spans.iter().any(|s| s.span_id() == p))
    }
    let mut out = String::new();
    walk(spans, None, 0, &mut out);
    out.pop();
    out
}

/// A span being timed by hand. Finish it with [`ActiveSpan::finish`]; dropped unfinished, it is
/// kept with status completed (error if the thread is panicking).
#[derive(Debug)]
pub struct ActiveSpan {
    span: Option<Span>,
    /// The head sampling decision (see [`crate::sample`]).
    sampled: bool,
}

/// Starts a trace (the Python `start_trace`): a root span in a new trace, or a child of the
/// current span when there is one, carrying the current correlation ID (or, when none is set,
/// a new one that belongs to this span and, through [`ActiveSpan::context`], to the work done
/// in it: the thread's context is left as it was).
pub fn start_trace(name: &str) -> Result<ActiveSpan> {
    let cx = context::current();
    let mut builder = Span::builder(name, crate::global().config().service_name()).correlation_id(context::correlation_id());
    if let Some(parent) = cx.span() {
        builder = builder.trace_id(parent.trace_id).parent_span_id(parent.span_id);
    }
    let span = builder.build()?;
    let sampled = crate::sample::head(span.trace_id(), cx.span().map(|p| p.sampled));
    Ok(ActiveSpan { span: Some(span), sampled })
}

impl ActiveSpan {
    fn inner(&self) -> &Span {
        self.span.as_ref().unwrap_or_else(|| unreachable!("the span is only taken when finishing"))
    }

    /// Starts a child span in the same trace (the Python `add_span_to_trace`).
    pub fn child(&self, name: &str) -> Result<ActiveSpan> {
        let parent = self.inner();
        let span = Span::builder(name, parent.service()).child_of(parent).build()?;
        Ok(ActiveSpan { sampled: crate::sample::head(span.trace_id(), Some(self.sampled)), span: Some(span) })
    }

    /// Adds an attribute.
    pub fn set_attribute(&mut self, key: &str, value: &str) -> Result<()> {
        match self.span.as_mut() {
            Some(span) => span.set_attribute(key, value),
            None => Ok(()),
        }
    }

    /// The context to attach (or inject into headers) so that monitored calls and other
    /// services join this span's trace.
    pub fn context(&self) -> Context {
        let span = self.inner();
        let mut cx =
            context::current().with_span(SpanContext { trace_id: span.trace_id(), span_id: span.span_id(), sampled: self.sampled });
        if let Some(id) = span.correlation_id() {
            cx = cx.with_correlation_id(id);
        }
        cx
    }

    /// Ends the span with `status`, keeps it in the recent-spans buffer and returns it (the
    /// Python `finish_trace`).
    pub fn finish(mut self, status: SpanStatus) -> Span {
        let mut span = self.span.take().unwrap_or_else(|| unreachable!("finish consumes the span once"));
        span.finish(status);
        keep_manual(span.clone(), self.sampled);
        span
    }
}

impl ActiveSpan {
    /// Ends the span with `status` and keeps it if the sampler and `limiter` (a rate per
    /// second, as a monitored function has) admit it: for spans made per call by a bridge.
    #[cfg(feature = "bridge-tracing")]
    pub(crate) fn finish_rate_limited(mut self, status: SpanStatus, limiter: &crate::sample::RateLimiter) {
        let mut span = self.span.take().unwrap_or_else(|| unreachable!("finish consumes the span once"));
        span.finish(status);
        let verdict = crate::sample::keep(self.sampled, status == SpanStatus::Error, limiter, crate::clock::now());
        if verdict == crate::sample::Verdict::Keep {
            keep_finished(span);
        }
    }
}

impl Drop for ActiveSpan {
    fn drop(&mut self) {
        if let Some(mut span) = self.span.take() {
            span.finish(if std::thread::panicking() { SpanStatus::Error } else { SpanStatus::Completed });
            keep_manual(span, self.sampled);
        }
    }
}

/// Adds `key = value` to the span of the monitored call this code runs in (its body, or anything
/// it calls on the same thread or in its future), as `tracing`'s `Span::current().record` does
/// for `#[instrument]`. The value is formatted now and kept if the span is kept (exported over
/// OTLP and shown in [`recent_spans`]); at most 32 attributes per span, values cut at 4096 bytes.
///
/// ```
/// #[flext_obs::flext_monitor]
/// fn checkout(items: u32) -> u32 {
///     flext_obs::trace::record("items", items).unwrap();
///     items * 2
/// }
/// checkout(3);
/// let span = flext_obs::trace::recent_spans().into_iter().rev().find(|s| s.name() == "checkout").unwrap();
/// assert_eq!(span.attributes().get("items").map(String::as_str), Some("3"));
/// assert!(flext_obs::trace::record("items", 1).is_err()); // not inside a monitored call
/// ```
///
/// # Errors
/// A key that is empty, longer than 256 bytes or not printable ASCII, and a call made outside
/// any monitored call (there is no span to add to).
pub fn record(key: &str, value: impl std::fmt::Display) -> Result<()> {
    let valid = !key.is_empty() && key.len() <= crate::entity::validate::MAX_NAME_LEN && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(crate::Error::invalid("Span", "attribute key", key, "must be 1 to 256 printable ASCII characters"));
    }
    let cx = context::current();
    match (cx.span(), cx.site()) {
        (Some(span), site) if site != 0 => {
            crate::attributes::record(span.span_id, key, &value);
            Ok(())
        }
        _ => Err(crate::Error::invalid("Span", "attribute key", key, "trace::record is called outside any monitored call")),
    }
}

/// Span attributes not kept because a limit was reached (32 per span, 4096 spans with
/// attributes waiting or kept): they are counted, never silently lost.
///
/// ```
/// assert_eq!(flext_obs::trace::dropped_attributes(), 0);
/// ```
pub fn dropped_attributes() -> u64 {
    crate::attributes::dropped()
}

/// Traces whose W3C `tracestate` was forgotten to make room (at most 4096 traces' are
/// remembered, the oldest forgotten first): their later spans go without `trace_state`. The
/// `tracestate` still propagates in the context and its headers.
///
/// ```
/// assert_eq!(flext_obs::trace::forgotten_tracestates(), 0);
/// ```
pub fn forgotten_tracestates() -> u64 {
    crate::tracestates::forgotten()
}
