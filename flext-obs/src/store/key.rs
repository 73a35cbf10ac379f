//! Series identity: a metric name plus a validated, sorted label set, hashed once.

use super::family::Family;
use crate::entity::validate;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

/// A validated label set, sorted by name, with no duplicate names.
///
/// ```
/// let labels = flext_obs::store::Labels::new(&[("route", "/a"), ("method", "GET")])?;
/// assert_eq!(labels.iter().next(), Some(("method", "GET")));
/// assert!(flext_obs::store::Labels::new(&[("__name__", "x")]).is_err());
/// assert!(flext_obs::store::Labels::new(&[("a", "1"), ("a", "2")]).is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Debug)]
pub struct Labels(Arc<[(Box<str>, Box<str>)]>);

impl Labels {
    /// Validates and sorts `pairs`. Duplicate names are an error, not a silent overwrite.
    pub fn new<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Result<Self> {
        validate::labels("store", pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))?;
        let mut sorted: Vec<(Box<str>, Box<str>)> = pairs.iter().map(|(k, v)| (k.as_ref().into(), v.as_ref().into())).collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::invalid("store", "label name", &*pair[0].0, "must appear only once in a label set"));
        }
        Ok(Labels(sorted.into()))
    }

    /// The pairs, sorted by name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Whether the set has no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(name)).ok().map(|i| &*self.0[i].1)
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

/// Family (so the metric name) + labels + the hash of both, computed once when the key is made.
#[derive(Clone)]
pub(super) struct Key {
    pub(super) family: Arc<Family>,
    pub(crate) labels: Labels,
    hash: u64,
}

impl Key {
    pub(super) fn new(family: Arc<Family>, labels: Labels) -> Self {
        let mut hasher = std::hash::DefaultHasher::new();
        family.name.hash(&mut hasher);
        labels.hash(&mut hasher);
        Key { family, labels, hash: hasher.finish() }
    }

    /// The metric name.
    pub(super) fn name(&self) -> &Arc<str> {
        &self.family.name
    }

    pub(crate) fn hash64(&self) -> u64 {
        self.hash
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && (Arc::ptr_eq(&self.family, &other.family) || self.family.name == other.family.name)
            && self.labels == other.labels
    }
}
impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

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
