//! Series identity: a metric name plus a validated, sorted label set, hashed once.

use super::Registry;
use super::family::Family;
use super::series::SeriesData;
use crate::entity::validate;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A validated label set, sorted by name, with no duplicate names.
///
/// ```
/// let labels = flext_obs::store::Labels::new(&[("route", "/a"), ("method", "GET")])?;
/// assert_eq!(labels.iter().next(), Some(("method", "GET")));
/// assert!(flext_obs::store::Labels::new(&[("__name__", "x")]).is_err());
/// assert!(flext_obs::store::Labels::new(&[("a", "1"), ("a", "2")]).is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
///
/// Kept in one shared string (the pair count, then each name and value after its length:
/// `1;5:route2:/a`), so a series' label set is one small allocation.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Labels(Arc<str>);

/// Appends `text` after its length, for [`Labels`]' packed form.
fn push_sized(packed: &mut String, text: &str) {
    use std::fmt::Write;
    let _ = write!(packed, "{}:", text.len());
    packed.push_str(text);
}

/// Reads a decimal number ending in `end` from the front of `text`, and the rest after it.
fn take_number(text: &str, end: char) -> Option<(usize, &str)> {
    let (digits, rest) = text.split_once(end)?;
    Some((digits.parse().ok()?, rest))
}

/// Reads one length-prefixed string from the front of `text`, and the rest after it.
fn take_sized(text: &str) -> Option<(&str, &str)> {
    let (len, rest) = take_number(text, ':')?;
    Some((rest.get(..len)?, rest.get(len..)?))
}

/// The pairs of a [`Labels`], in name order.
struct Pairs<'a> {
    rest: &'a str,
    left: usize,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let pair = take_sized(self.rest).and_then(|(name, rest)| take_sized(rest).map(|(value, rest)| (name, value, rest)));
        let Some((name, value, rest)) = pair else {
            self.left = 0; // cannot happen: the packed form is written by `Labels::new`
            return None;
        };
        self.rest = rest;
        self.left -= 1;
        Some((name, value))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Pairs<'_> {}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Pair by pair, as a sorted list of `(name, value)`.
impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.iter().cmp(other.iter())
    }
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Labels {
    /// Validates and sorts `pairs`. Duplicate names are an error, not a silent overwrite.
    pub fn new<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Result<Self> {
        validate::labels("store", pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))?;
        let mut sorted: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if let Some(pair) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::invalid("store", "label name", pair[0].0, "must appear only once in a label set"));
        }
        if sorted.is_empty() {
            return Ok(Labels::default());
        }
        let mut packed = String::with_capacity(4 + sorted.iter().map(|(k, v)| k.len() + v.len() + 8).sum::<usize>());
        packed.push_str(&sorted.len().to_string());
        packed.push(';');
        for (k, v) in sorted {
            push_sized(&mut packed, k);
            push_sized(&mut packed, v);
        }
        Ok(Labels(packed.into()))
    }

    /// The pairs, sorted by name.
    ///
    /// ```
    /// let labels = flext_obs::store::Labels::new(&[("b", "2:x"), ("a", "1;")])?;
    /// assert_eq!(labels.iter().len(), 2);
    /// assert_eq!(labels.iter().collect::<Vec<_>>(), [("a", "1;"), ("b", "2:x")]);
    /// assert_eq!(labels.get("b"), Some("2:x"));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        match take_number(&self.0, ';') {
            Some((left, rest)) => Pairs { rest, left },
            None => Pairs { rest: "", left: 0 },
        }
    }

    /// Whether the set has no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// The label set as the Prometheus exposition writes it: `{k="v",...}` with values
    /// escaped, or nothing for an empty set.
    pub(crate) fn exposition_text(&self) -> String {
        let mut out = String::new();
        if self.is_empty() {
            return out;
        }
        out.push('{');
        let mut any = false;
        for (k, v) in self.iter() {
            push_label_pair(&mut out, &mut any, k, v);
        }
        out.push('}');
        out
    }

    /// The labels as an owned map (for snapshots and serialization).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }
}

/// Family (so the metric name) + labels: a series' identity, kept once, in the series.
#[derive(Clone)]
pub(super) struct Key {
    pub(super) family: Arc<Family>,
    pub(crate) labels: Labels,
}

impl Key {
    pub(super) fn new(family: Arc<Family>, labels: Labels) -> Self {
        Key { family, labels }
    }

    /// The metric name.
    pub(super) fn name(&self) -> &Arc<str> {
        &self.family.name
    }

    /// The hash of the name and labels (computed each time: a stored key needs it only when
    /// its shard's set grows; lookups use a [`Query`]'s).
    fn hash64(&self) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        self.family.name.hash(&mut hasher);
        self.labels.hash(&mut hasher);
        hasher.finish()
    }
}

/// A key to look up, with its hash computed once.
pub(super) struct Query {
    pub(super) key: Key,
    hash: u64,
}

impl Query {
    pub(super) fn new(key: Key) -> Self {
        let hash = key.hash64();
        Query { key, hash }
    }

    /// The hash of the key, for choosing a shard.
    pub(super) fn hash64(&self) -> u64 {
        self.hash
    }

    /// The key as the shards' sets look it up.
    pub(super) fn lookup(&self) -> &dyn Lookup {
        self
    }
}

/// What a shard's set hashes and compares: a stored key or a [`Query`], so that a lookup hashes
/// once and a series stores no hash.
pub(super) trait Lookup {
    fn key(&self) -> &Key;
    fn hash64(&self) -> u64;
}

impl Lookup for Key {
    fn key(&self) -> &Key {
        self
    }
    fn hash64(&self) -> u64 {
        Key::hash64(self)
    }
}

impl Lookup for Query {
    fn key(&self) -> &Key {
        &self.key
    }
    fn hash64(&self) -> u64 {
        self.hash
    }
}

impl PartialEq for dyn Lookup + '_ {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.key(), other.key());
        (Arc::ptr_eq(&a.family, &b.family) || a.family.name == b.family.name) && a.labels == b.labels
    }
}
impl Eq for dyn Lookup + '_ {}

impl Hash for dyn Lookup + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash64());
    }
}

/// Bit of [`Series::idle`] set when a handle to the series is made or dropped, cleared by the
/// next sweep.
const TOUCHED: u64 = 1 << 63;

/// A registered series and the sweeper's memory of it.
pub(crate) struct Series {
    /// Its family and labels.
    pub(super) key: Key,
    pub(super) data: SeriesData,
    /// When the sweeper last saw the series in use (nanoseconds from the registry's epoch, low
    /// 63 bits), and [`TOUCHED`] when a handle was made or dropped since. Records go through
    /// handles, so a series with no handle at a sweep and no handle made or dropped since the
    /// last one was not recorded into since then: one word, no read of the cells per sweep.
    pub(super) idle: AtomicU64,
}

impl Series {
    pub(super) fn new(key: Key, data: SeriesData, registry: &Registry) -> Self {
        Series { key, data, idle: AtomicU64::new(registry.since_epoch(Instant::now()) & !TOUCHED) }
    }

    /// Notes that a handle was made or dropped (a load, and a store only the first time
    /// between two sweeps, so handles made on every call do not bounce the line).
    #[inline]
    pub(crate) fn touch(&self) {
        if self.idle.load(Ordering::Relaxed) & TOUCHED == 0 {
            self.idle.fetch_or(TOUCHED, Ordering::Release);
        }
    }

    /// For the sweep: whether the series was touched since the last sweep, and when that
    /// sweep (or the series' creation) was.
    pub(super) fn last_seen(&self) -> (bool, u64) {
        let idle = self.idle.load(Ordering::Acquire);
        (idle & TOUCHED != 0, idle & !TOUCHED)
    }

    /// For the sweep: the series is in use at `now` (clears [`TOUCHED`]).
    pub(super) fn seen_at(&self, now: u64) {
        self.idle.store(now & !TOUCHED, Ordering::Relaxed);
    }

    pub(super) fn family(&self) -> &Arc<Family> {
        &self.key.family
    }

    /// Its core.
    #[inline]
    pub(crate) fn data(&self) -> &SeriesData {
        &self.data
    }

    /// Whether a handle (or a scrape layout) outside the registry still points at this series:
    /// then it is not evicted, the handle's records must stay visible.
    pub(super) fn has_handles(self: &Arc<Self>) -> bool {
        Arc::strong_count(self) > 1
    }
}

/// A series in its shard's set, found by its key (the key lives once, in the series: the set
/// holds one pointer per series).
pub(crate) struct Entry(pub(crate) Arc<Series>);

impl<'a> std::borrow::Borrow<dyn Lookup + 'a> for Entry {
    fn borrow(&self) -> &(dyn Lookup + 'a) {
        &self.0.key
    }
}
impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (&self.0.key as &dyn Lookup).hash(state);
    }
}
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (&self.0.key as &dyn Lookup) == (&other.0.key as &dyn Lookup)
    }
}
impl Eq for Entry {}

/// Passes a key's precomputed hash through instead of hashing it again.
#[derive(Default)]
pub(crate) struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `Key`; fold anything else in so the hasher stays correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(crate) type PrehashedState = BuildHasherDefault<PrehashedHasher>;

/// Writes `k="v"` (value escaped) for the exposition, after a comma when `any` label was
/// written before; sets `any`.
pub(crate) fn push_label_pair(out: &mut String, any: &mut bool, name: &str, value: &str) {
    if *any {
        out.push(',');
    }
    *any = true;
    out.push_str(name);
    out.push_str("=\"");
    escape_label_value(out, value);
    out.push('"');
}

/// Escapes a label value for the exposition formats: `\\`, `\"` and `\n`.
pub(crate) fn escape_label_value(out: &mut String, value: &str) {
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}
