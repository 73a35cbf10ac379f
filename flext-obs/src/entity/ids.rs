//! Identifiers: W3C trace and span IDs and the correlation ID.

use crate::error::{Error, Result};
use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

/// A W3C trace ID: 16 bytes, written as 32 lower-case hex digits, never all zeros.
///
/// ```
/// let id: flext_obs::TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
/// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!("00000000000000000000000000000000".parse::<flext_obs::TraceId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId([u8; 16]);

/// A W3C span ID: 8 bytes, written as 16 lower-case hex digits, never all zeros.
///
/// ```
/// let id: flext_obs::SpanId = "00f067aa0ba902b7".parse().unwrap();
/// assert_eq!(id.to_string(), "00f067aa0ba902b7");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId([u8; 8]);

/// The ID that ties together everything done for one request, across threads, tasks and
/// services (sent as the `x-correlation-id` header).
///
/// ```
/// let id = flext_obs::CorrelationId::new();
/// let again: flext_obs::CorrelationId = id.to_string().parse().unwrap();
/// assert_eq!(id, again);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CorrelationId(uuid::Uuid);

impl TraceId {
    /// A new random trace ID.
    pub fn random() -> Self {
        let [hi, lo] = random_words::<2>();
        Self::from_words(hi, lo)
    }

    /// The trace ID whose bytes are `hi` then `lo` (big-endian); all zeros becomes 1.
    pub(crate) fn from_words(hi: u64, lo: u64) -> Self {
        let value = (u128::from(hi) << 64 | u128::from(lo)).max(1);
        TraceId(value.to_be_bytes())
    }

    /// The trace ID from raw bytes; `None` for all zeros, which W3C reserves as invalid.
    pub fn from_bytes(bytes: [u8; 16]) -> Option<Self> {
        (bytes != [0; 16]).then_some(TraceId(bytes))
    }

    /// The raw bytes.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0
    }
}

impl SpanId {
    /// A new random span ID.
    pub fn random() -> Self {
        Self::from_word(random_words::<1>()[0])
    }

    /// The span ID whose bytes are `word` (big-endian); 0 becomes 1.
    pub(crate) fn from_word(word: u64) -> Self {
        SpanId(word.max(1).to_be_bytes())
    }

    /// The span ID from raw bytes; `None` for all zeros, which W3C reserves as invalid.
    pub fn from_bytes(bytes: [u8; 8]) -> Option<Self> {
        (bytes != [0; 8]).then_some(SpanId(bytes))
    }

    /// The raw bytes.
    pub const fn to_bytes(self) -> [u8; 8] {
        self.0
    }
}

impl CorrelationId {
    /// A new random (v4 UUID) correlation ID.
    pub fn new() -> Self {
        CorrelationId(uuid::Uuid::new_v4())
    }

    /// The underlying UUID.
    pub const fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }
}

impl Default for CorrelationId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<uuid::Uuid> for CorrelationId {
    fn from(id: uuid::Uuid) -> Self {
        CorrelationId(id)
    }
}

impl FromStr for CorrelationId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        uuid::Uuid::parse_str(s)
            .map(CorrelationId)
            .map_err(|_| Error::invalid("CorrelationId", "value", s, "must be a UUID (8-4-4-4-12 hex digits)"))
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CorrelationId({self})")
    }
}

macro_rules! hex_id {
    ($name:ident, $len:literal, $digits:literal, $entity:literal) => {
        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                const RULE: &str = concat!("must be ", $digits, " lower-case hex digits, not all zero");
                let mut bytes = [0u8; $len];
                if s.len() != $len * 2 {
                    return Err(Error::invalid($entity, "value", s, RULE));
                }
                for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
                    match (hex_digit(pair[0]), hex_digit(pair[1])) {
                        (Some(hi), Some(lo)) => bytes[i] = hi << 4 | lo,
                        _ => return Err(Error::invalid($entity, "value", s, RULE)),
                    }
                }
                $name::from_bytes(bytes).ok_or_else(|| Error::invalid($entity, "value", s, RULE))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for byte in self.0 {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_id!(TraceId, 16, 32, "TraceId");
hex_id!(SpanId, 8, 16, "SpanId");

/// Only lower-case hex: W3C trace context forbids upper case.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

thread_local! {
    static RNG_STATE: Cell<u64> = const { Cell::new(0) };
}

/// `N` fast per-thread random numbers (wyrand), seeded once per thread from the OS through a v4
/// UUID. IDs need to be unpredictable enough not to collide, not cryptographically secure.
#[inline]
pub(crate) fn random_words<const N: usize>() -> [u64; N] {
    RNG_STATE.with(|state| {
        let mut s = state.get();
        if s == 0 {
            s = uuid::Uuid::new_v4().as_u64_pair().0 | 1;
        }
        let words = std::array::from_fn(|_| {
            s = s.wrapping_add(0xa076_1d64_78bd_642f);
            let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
            #[allow(clippy::cast_possible_truncation)] // folding 128 bits into 64 on purpose
            let folded = (t >> 64) as u64 ^ t as u64;
            folded
        });
        state.set(s);
        words
    })
}
