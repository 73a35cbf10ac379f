//! Identifiers: W3C trace and span IDs and the correlation ID.
//!
//! Trace and span IDs are non-zero integers inside, so an `Option` of one costs no extra byte;
//! the correlation ID is an inline token whose non-zero length byte plays the same part.

use crate::error::{Error, Result};
use std::fmt;
use std::num::{NonZeroU8, NonZeroU64, NonZeroU128};
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

/// Longest correlation ID accepted, in bytes: room for any UUID spelling, a 32-hex nginx
/// `$request_id` or an AWS `X-Amzn-Trace-Id` root, while an ID stays small enough to copy with
/// every monitored call.
///
/// ```
/// let longest = "a".repeat(flext_obs::MAX_CORRELATION_ID_LEN);
/// assert!(longest.parse::<flext_obs::CorrelationId>().is_ok());
/// assert!(format!("{longest}a").parse::<flext_obs::CorrelationId>().is_err());
/// ```
pub const MAX_CORRELATION_ID_LEN: usize = 64;

/// The ID that ties together everything done for one request, across threads, tasks and
/// services (sent as the `x-correlation-id` header).
///
/// It is the token the request came with, kept exactly as written: 1 to
/// [`MAX_CORRELATION_ID_LEN`] printable ASCII characters (bytes `0x21..=0x7E`, so no spaces and
/// no control characters), which covers what proxies and load balancers send (`req-42`, a UUID,
/// nginx's 32-hex `$request_id`, `Root=1-5759e988-bd862e3fe1be46a994272793`). The nil UUID is
/// refused: it means "no ID". [`CorrelationId::new`] makes a random v4 UUID. The ID is stored
/// inline, so it is `Copy` and never allocates; two IDs are equal when their tokens are
/// byte-for-byte equal, and they sort as their tokens do.
///
/// ```
/// use flext_obs::CorrelationId;
/// let id = CorrelationId::new();
/// let again: CorrelationId = id.to_string().parse()?;
/// assert_eq!(id, again);
/// assert!(id.to_uuid().is_some());
///
/// let from_proxy: CorrelationId = "Root=1-5759e988-bd862e3fe1be46a994272793".parse()?;
/// assert_eq!(from_proxy.as_str(), "Root=1-5759e988-bd862e3fe1be46a994272793");
/// assert_eq!(from_proxy.to_uuid(), None);
///
/// let err = "has space".parse::<CorrelationId>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"invalid CorrelationId.value "has space": must be printable ASCII (0x21..=0x7E): byte 0x20 at index 3 is not"#
/// );
/// assert!("00000000-0000-0000-0000-000000000000".parse::<CorrelationId>().is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
// Field order matters for the derives: the bytes (zero past `len`, and a token never holds a
// zero byte) compare first, so the order is the tokens' lexicographic order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CorrelationId {
    bytes: [u8; MAX_CORRELATION_ID_LEN],
    len: NonZeroU8,
}

/// Why a token is not a correlation ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenRule {
    Empty,
    TooLong(usize),
    Byte { byte: u8, index: usize },
    NilUuid,
}

impl TokenRule {
    /// The rule as an `Error::Invalid` rule, with the details.
    fn rule(self) -> String {
        match self {
            TokenRule::Empty => "must not be empty".to_owned(),
            TokenRule::TooLong(len) => format!("must be at most {MAX_CORRELATION_ID_LEN} bytes long, not {len}"),
            TokenRule::Byte { byte, index } => format!("must be printable ASCII (0x21..=0x7E): byte {byte:#04x} at index {index} is not"),
            TokenRule::NilUuid => "must not be the nil UUID, which means no correlation ID".to_owned(),
        }
    }

    /// The rule as an `Error::Header` reason.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            TokenRule::Empty => "expected 1 to 64 printable ASCII characters, got none",
            TokenRule::TooLong(_) => "longer than 64 characters",
            TokenRule::Byte { .. } => "only printable ASCII (0x21..=0x7E) is allowed: no spaces inside, no control or non-ASCII characters",
            TokenRule::NilUuid => "the nil UUID means no correlation ID",
        }
    }
}

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
    /// A new random (v4 UUID) correlation ID, in canonical form (hyphenated, lower case).
    pub fn new() -> Self {
        Self::from_uuid(uuid::Uuid::new_v4()).unwrap_or_else(|| unreachable!("a v4 UUID has version bits set"))
    }

    /// The correlation ID of a UUID, in canonical form (hyphenated, lower case); `None` for the
    /// nil UUID.
    ///
    /// ```
    /// let uuid = uuid::Uuid::from_u128(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8);
    /// let id = flext_obs::CorrelationId::from_uuid(uuid).unwrap();
    /// assert_eq!(id.as_str(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
    /// assert_eq!(id.to_uuid(), Some(uuid));
    /// assert_eq!(flext_obs::CorrelationId::from_uuid(uuid::Uuid::nil()), None);
    /// ```
    pub fn from_uuid(id: uuid::Uuid) -> Option<Self> {
        if id.is_nil() {
            return None;
        }
        let mut bytes = [0; MAX_CORRELATION_ID_LEN];
        let len = id.hyphenated().encode_lower(&mut bytes).len();
        Some(CorrelationId { bytes, len: NonZeroU8::new(u8::try_from(len).ok()?)? })
    }

    /// The UUID the token spells, when it is one written 8-4-4-4-12 (hex digits of either
    /// case); `None` for any other token, such as `req-42` or a 32-hex nginx request ID.
    ///
    /// ```
    /// let id: flext_obs::CorrelationId = "67E55044-10B1-426F-9247-BB680E5FE0C8".parse()?;
    /// assert_eq!(id.to_uuid().map(|u| u.as_u128()), Some(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8));
    /// assert_eq!("req-42".parse::<flext_obs::CorrelationId>()?.to_uuid(), None);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn to_uuid(&self) -> Option<uuid::Uuid> {
        let token = self.as_bytes();
        if token.len() == 36 { uuid::Uuid::try_parse_ascii(token).ok() } else { None }
    }

    /// The token, exactly as it was received or generated (what `Display` writes and the
    /// `x-correlation-id` header carries).
    ///
    /// ```
    /// let id: flext_obs::CorrelationId = "req-42".parse()?;
    /// assert_eq!(id.as_str(), "req-42");
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn as_str(&self) -> &str {
        // Only ever built from validated printable ASCII, so this never falls back.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len.get())]
    }

    /// Checks `token` against the rules (see the type's docs).
    pub(crate) fn check(token: &str) -> std::result::Result<Self, TokenRule> {
        let raw = token.as_bytes();
        if raw.is_empty() {
            return Err(TokenRule::Empty);
        }
        if raw.len() > MAX_CORRELATION_ID_LEN {
            return Err(TokenRule::TooLong(raw.len()));
        }
        if let Some((index, &byte)) = raw.iter().enumerate().find(|(_, b)| !(0x21..=0x7e).contains(*b)) {
            return Err(TokenRule::Byte { byte, index });
        }
        if raw.len() == 36 && uuid::Uuid::try_parse_ascii(raw).is_ok_and(|u| u.is_nil()) {
            return Err(TokenRule::NilUuid);
        }
        let mut bytes = [0; MAX_CORRELATION_ID_LEN];
        bytes[..raw.len()].copy_from_slice(raw);
        let len = u8::try_from(raw.len()).ok().and_then(NonZeroU8::new).ok_or(TokenRule::Empty)?;
        Ok(CorrelationId { bytes, len })
    }

    /// The token's length, in bytes.
    pub(crate) fn len_u8(&self) -> u8 {
        self.len.get()
    }

    /// The ID as a length and eight little-endian words (for the span ring's atomic slots).
    pub(crate) fn as_words(&self) -> (u8, [u64; 8]) {
        let words = std::array::from_fn(|i| {
            let mut word = [0; 8];
            word.copy_from_slice(&self.bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(word)
        });
        (self.len.get(), words)
    }

    /// The ID [`CorrelationId::as_words`] wrote; `None` for length 0 (no ID) or anything that
    /// breaks the rules.
    pub(crate) fn from_words(len: u8, words: [u64; 8]) -> Option<Self> {
        let mut bytes = [0; MAX_CORRELATION_ID_LEN];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        let token = bytes.get(..usize::from(len))?;
        Self::check(std::str::from_utf8(token).ok()?).ok()
    }
}

impl Default for CorrelationId {
    fn default() -> Self {
        Self::new()
    }
}

impl FromStr for CorrelationId {
    type Err = Error;
    /// Parses a token as it is, without trimming: 1 to [`MAX_CORRELATION_ID_LEN`] bytes of
    /// printable ASCII, not the nil UUID.
    fn from_str(s: &str) -> Result<Self> {
        Self::check(s).map_err(|rule| Error::invalid("CorrelationId", "value", s, rule.rule()))
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
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

thread_local! {
    /// The generator of IDs made outside a monitored call (a monitored call uses the one in the
    /// thread's state, which it reaches in the same thread-local access as the rest).
    static RNG: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// `N` fast per-thread random numbers (wyrand), seeded once per thread from the OS through a v4
/// UUID. IDs need to be unpredictable enough not to collide, not cryptographically secure.
#[inline]
pub(crate) fn random_words<const N: usize>() -> [u64; N] {
    RNG.with(next_words)
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
