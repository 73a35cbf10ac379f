//! Identifiers: W3C trace and span IDs and the correlation ID.
//!
//! All three are non-zero integers inside, so an `Option` of one costs no extra byte and the
//! per-thread context the monitor copies on every call stays small and aligned.

use crate::error::{Error, Result};
use std::fmt;
use std::num::{NonZeroU64, NonZeroU128};
use std::str::FromStr;

/// A W3C trace ID: 16 bytes, written as 32 lower-case hex digits, never all zeros.
///
/// ```
/// let id: flext_obs::TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
/// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!("00000000000000000000000000000000".parse::<flext_obs::TraceId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(NonZeroU128);

/// A W3C span ID: 8 bytes, written as 16 lower-case hex digits, never all zeros.
///
/// ```
/// let id: flext_obs::SpanId = "00f067aa0ba902b7".parse().unwrap();
/// assert_eq!(id.to_string(), "00f067aa0ba902b7");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(NonZeroU64);

/// The ID that ties together everything done for one request, across threads, tasks and
/// services (sent as the `x-correlation-id` header). A UUID, never the nil one.
///
/// ```
/// let id = flext_obs::CorrelationId::new();
/// let again: flext_obs::CorrelationId = id.to_string().parse().unwrap();
/// assert_eq!(id, again);
/// assert!("00000000-0000-0000-0000-000000000000".parse::<flext_obs::CorrelationId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CorrelationId(NonZeroU128);

impl TraceId {
    /// A new random trace ID.
    pub fn random() -> Self {
        let [hi, lo] = random_words::<2>();
        Self::from_words(hi, lo)
    }

    /// The trace ID whose bytes are `hi` then `lo` (big-endian); all zeros becomes 1.
    #[inline]
    pub(crate) fn from_words(hi: u64, lo: u64) -> Self {
        TraceId(NonZeroU128::new(u128::from(hi) << 64 | u128::from(lo)).unwrap_or(NonZeroU128::MIN))
    }

    /// The trace ID from raw bytes; `None` for all zeros, which W3C reserves as invalid.
    pub fn from_bytes(bytes: [u8; 16]) -> Option<Self> {
        NonZeroU128::new(u128::from_be_bytes(bytes)).map(TraceId)
    }

    /// The raw bytes.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.get().to_be_bytes()
    }

    /// The ID as one number (the bytes read big-endian).
    pub const fn to_u128(self) -> u128 {
        self.0.get()
    }
}

impl SpanId {
    /// A new random span ID.
    pub fn random() -> Self {
        Self::from_word(random_words::<1>()[0])
    }

    /// The span ID whose bytes are `word` (big-endian); 0 becomes 1.
    #[inline]
    pub(crate) fn from_word(word: u64) -> Self {
        SpanId(NonZeroU64::new(word).unwrap_or(NonZeroU64::MIN))
    }

    /// The span ID from raw bytes; `None` for all zeros, which W3C reserves as invalid.
    pub fn from_bytes(bytes: [u8; 8]) -> Option<Self> {
        NonZeroU64::new(u64::from_be_bytes(bytes)).map(SpanId)
    }

    /// The raw bytes.
    pub const fn to_bytes(self) -> [u8; 8] {
        self.0.get().to_be_bytes()
    }

    /// The ID as one number (the bytes read big-endian).
    pub const fn to_u64(self) -> u64 {
        self.0.get()
    }
}

impl CorrelationId {
    /// A new random (v4 UUID) correlation ID.
    pub fn new() -> Self {
        Self::from_uuid(uuid::Uuid::new_v4()).unwrap_or_else(|| unreachable!("a v4 UUID has version bits set"))
    }

    /// The correlation ID of a UUID; `None` for the nil UUID.
    pub fn from_uuid(id: uuid::Uuid) -> Option<Self> {
        NonZeroU128::new(id.as_u128()).map(CorrelationId)
    }

    /// The underlying UUID.
    pub const fn to_uuid(self) -> uuid::Uuid {
        uuid::Uuid::from_u128(self.0.get())
    }

    /// The ID as one number.
    pub const fn to_u128(self) -> u128 {
        self.0.get()
    }

    pub(crate) fn from_u128(value: u128) -> Option<Self> {
        NonZeroU128::new(value).map(CorrelationId)
    }
}

impl Default for CorrelationId {
    fn default() -> Self {
        Self::new()
    }
}

impl FromStr for CorrelationId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        uuid::Uuid::parse_str(s)
            .ok()
            .and_then(Self::from_uuid)
            .ok_or_else(|| Error::invalid("CorrelationId", "value", s, "must be a UUID (8-4-4-4-12 hex digits), not the nil UUID"))
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_uuid().hyphenated().fmt(f)
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CorrelationId({self})")
    }
}

macro_rules! text_serde {
    ($name:ident) => {
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

macro_rules! hex_id {
    ($name:ident, $int:ty, $digits:literal, $entity:literal) => {
        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                const RULE: &str = concat!("must be ", $digits, " lower-case hex digits, not all zero");
                let well_formed = s.len() == $digits && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                well_formed
                    .then(|| <$int>::from_str_radix(s, 16).ok())
                    .flatten()
                    .and_then(|n| n.try_into().ok())
                    .map($name)
                    .ok_or_else(|| Error::invalid($entity, "value", s, RULE))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!("{:0", $digits, "x}"), self.0.get())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        text_serde!($name);
    };
}

hex_id!(TraceId, u128, 32, "TraceId");
hex_id!(SpanId, u64, 16, "SpanId");
text_serde!(CorrelationId);

/// `N` fast per-thread random numbers (wyrand), seeded once per thread from the OS through a v4
/// UUID. IDs need to be unpredictable enough not to collide, not cryptographically secure.
#[inline]
pub(crate) fn random_words<const N: usize>() -> [u64; N] {
    crate::thread::THREAD.with(|t| next_words(&t.rng))
}

/// Advances the generator in `state` `N` times.
#[inline]
pub(crate) fn next_words<const N: usize>(state: &std::cell::Cell<u64>) -> [u64; N] {
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
}
