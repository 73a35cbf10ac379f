//! Attributes of monitored calls' spans: the values the attribute's `fields(...)`, `ret` and
//! `err` record, and those the body adds with [`crate::trace::record`].
//!
//! Everything here is bounded: at most [`MAX_PER_SPAN`] attributes per span, values cut at
//! [`MAX_VALUE_LEN`] bytes, at most [`MAX_SPANS`] spans' attributes waiting for their call to end
//! and as many kept for the spans in the recent-spans buffer (oldest forgotten first). What does
//! not fit is counted in [`dropped`]. A call that records nothing pays one relaxed load.

use crate::entity::SpanId;
use std::collections::{HashMap, VecDeque};
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};

/// Most attributes one span keeps.
pub(crate) const MAX_PER_SPAN: usize = 32;
/// Longest attribute value kept, in bytes, the cut marker included (longer ones are cut at a
/// character boundary): what a span entity accepts as an attribute value.
pub(crate) const MAX_VALUE_LEN: usize = crate::entity::validate::MAX_LABEL_VALUE_LEN;
/// Ends a value that was cut.
const CUT: char = '…';
/// Most spans whose attributes are kept (waiting, and finished).
pub(crate) const MAX_SPANS: usize = 4096;

/// A span's attributes, in the order recorded; a later value for the same key replaces it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Attributes(Vec<(Box<str>, Box<str>)>);

impl Attributes {
    pub(crate) const fn new() -> Self {
        Attributes(Vec::new())
    }

    fn insert(&mut self, key: Box<str>, value: Box<str>) {
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else if self.0.len() < MAX_PER_SPAN {
            self.0.push((key, value));
        } else {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The attributes as key-value pairs.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }
}

/// A writer that stops at [`MAX_VALUE_LEN`] bytes, on a character boundary, marking the cut.
struct Bounded<'a>(&'a mut String);

impl fmt::Write for Bounded<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = MAX_VALUE_LEN.saturating_sub(self.0.len());
        if s.len() <= room {
            self.0.push_str(s);
            return Ok(());
        }
        // Room for the marker too, so the cut value still fits the bound.
        let room = room.saturating_sub(CUT.len_utf8());
        let cut = (0..=room).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        self.0.push_str(&s[..cut]);
        self.0.push(CUT);
        Err(fmt::Error)
    }
}

#[derive(Default)]
struct Table {
    by_span: HashMap<SpanId, Attributes>,
    order: VecDeque<SpanId>,
}

impl Table {
    fn put(&mut self, span: SpanId, attributes: Attributes) {
        if self.by_span.insert(span, attributes).is_none() {
            self.order.push_back(span);
        }
        while self.order.len() > MAX_SPANS {
            if let Some(oldest) = self.order.pop_front() {
                if let Some(forgotten) = self.by_span.remove(&oldest) {
                    DROPPED.fetch_add(forgotten.0.len() as u64, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Attributes recorded by bodies with `trace::record`, waiting for their call to end.
static RECORDED: LazyLock<Mutex<Table>> = LazyLock::new(Mutex::default);
/// How many spans have attributes waiting in `RECORDED` (read without the lock on every exit).
static RECORDED_SPANS: AtomicUsize = AtomicUsize::new(0);
/// Attributes of kept spans, for `recent_spans` and the OTLP export.
static KEPT: LazyLock<Mutex<Table>> = LazyLock::new(Mutex::default);
static KEPT_SPANS: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Attributes not kept because a limit was reached (per span, or spans waiting or kept).
pub(crate) fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// `value` formatted, cut to [`MAX_VALUE_LEN`] bytes.
fn bounded_text(value: &dyn fmt::Display) -> Box<str> {
    let mut text = String::new();
    let _ = write!(Bounded(&mut text), "{value}");
    text.into_boxed_str()
}

/// Records `key = value` for the running call whose span is `span`. The value is formatted
/// before the table is locked: its `Display` may itself call monitored code.
pub(crate) fn record(span: SpanId, key: &str, value: &dyn fmt::Display) {
    let text = bounded_text(value);
    let mut table = RECORDED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(attributes) = table.by_span.get_mut(&span) {
        attributes.insert(key.into(), text);
        return;
    }
    let mut attributes = Attributes::new();
    attributes.insert(key.into(), text);
    table.put(span, attributes);
    RECORDED_SPANS.store(table.by_span.len(), Ordering::Relaxed);
}

/// The key that marks a monitored call's span as the CLIENT of a request its context was
/// injected into (see [`mark_client`]).
pub(crate) const CLIENT_KEY: &str = "\u{1}client";

/// Marks the span of a monitored call as a client: its context was injected into an outgoing
/// request. Rare (once per injection); turning the span back into an entity makes an internal span so marked
/// a client one.
#[cold]
pub(crate) fn mark_client(span: SpanId) {
    record(span, CLIENT_KEY, &"");
}

/// Takes what the body of the call with `span` recorded (one relaxed load when nothing was).
#[inline]
pub(crate) fn take_recorded(span: SpanId) -> Option<Attributes> {
    if RECORDED_SPANS.load(Ordering::Relaxed) == 0 {
        return None;
    }
    take_recorded_slow(span)
}

#[cold]
fn take_recorded_slow(span: SpanId) -> Option<Attributes> {
    let mut table = RECORDED.lock().unwrap_or_else(PoisonError::into_inner);
    let taken = table.by_span.remove(&span)?;
    table.order.retain(|s| *s != span);
    RECORDED_SPANS.store(table.by_span.len(), Ordering::Relaxed);
    Some(taken)
}

/// Keeps the attributes of a kept span.
#[cold]
pub(crate) fn keep(span: SpanId, attributes: Attributes) {
    let mut table = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
    table.put(span, attributes);
    KEPT_SPANS.store(table.by_span.len(), Ordering::Relaxed);
}

/// The attributes kept for `span`.
pub(crate) fn kept(span: SpanId) -> Option<Attributes> {
    if KEPT_SPANS.load(Ordering::Relaxed) == 0 {
        return None;
    }
    KEPT.lock().unwrap_or_else(PoisonError::into_inner).by_span.get(&span).cloned()
}

/// Forgets every kept attribute (with `trace::clear`).
pub(crate) fn clear() {
    let mut table = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
    *table = Table::default();
    KEPT_SPANS.store(0, Ordering::Relaxed);
}
