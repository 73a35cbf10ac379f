//! W3C `baggage`: application key-value pairs that travel with a request from service to
//! service, bounded by the specification's limits.

use crate::error::{Error, Result};
use std::fmt::{self, Write as _};
use std::str::FromStr;

/// Header carrying the W3C baggage.
pub const BAGGAGE: &str = "baggage";
/// Most members a baggage keeps (W3C Baggage: a platform propagates at least 64).
pub const MAX_BAGGAGE_MEMBERS: usize = 64;
/// Longest baggage header kept, in bytes (W3C Baggage: at least 8192 must be propagated).
pub const MAX_BAGGAGE_BYTES: usize = 8192;

/// One baggage member: a key, its (decoded) value and its properties as they came (`;k=v`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Member {
    key: Box<str>,
    value: Box<str>,
    /// The member's properties, verbatim after the first `;` (empty when none).
    properties: Box<str>,
}

impl Member {
    /// Bytes this member takes in the header (`key=encoded-value;properties`).
    fn encoded_len(&self) -> usize {
        let value: usize = self.value.bytes().map(|b| if is_baggage_octet(b) { 1 } else { 3 }).sum();
        let properties = if self.properties.is_empty() { 0 } else { 1 + self.properties.len() };
        self.key.len() + 1 + value + properties
    }
}

/// A W3C baggage: at most [`MAX_BAGGAGE_MEMBERS`] members, at most [`MAX_BAGGAGE_BYTES`] bytes
/// as a header, each key once. Values are kept decoded; the header form percent-encodes what
/// the specification asks.
///
/// ```
/// use flext_obs::context::Baggage;
/// let baggage: Baggage = "userId=alice, serverNode=DF%2028;ttl=60".parse()?;
/// assert_eq!(baggage.get("serverNode"), Some("DF 28"));
/// assert_eq!(baggage.to_string(), "userId=alice,serverNode=DF%2028;ttl=60");
/// let baggage = baggage.with("tenant", "acme")?;
/// assert_eq!(baggage.len(), 3);
/// assert!(Baggage::new().with("bad key", "x").is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Baggage {
    members: Vec<Member>,
}

impl Baggage {
    /// An empty baggage.
    pub const fn new() -> Self {
        Baggage { members: Vec::new() }
    }

    /// The value of `key`, decoded.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members.iter().find(|m| &*m.key == key).map(|m| &*m.value)
    }

    /// The members as key-value pairs, in order.
    ///
    /// ```
    /// let baggage: flext_obs::context::Baggage = "a=1,b=2".parse()?;
    /// assert_eq!(baggage.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.members.iter().map(|m| (&*m.key, &*m.value))
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there is no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// This baggage with `key` set to `value` (any text: it is percent-encoded in the header),
    /// replacing an earlier value and its properties.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `key` is not an HTTP token, or when the member would take the
    /// baggage past [`MAX_BAGGAGE_MEMBERS`] or [`MAX_BAGGAGE_BYTES`]; nothing changes then.
    ///
    /// ```
    /// use flext_obs::context::{Baggage, MAX_BAGGAGE_BYTES};
    /// let baggage = Baggage::new().with("note", "a,b;c")?;
    /// assert_eq!(baggage.to_string(), "note=a%2Cb%3Bc");
    /// assert!(Baggage::new().with("big", &"x".repeat(MAX_BAGGAGE_BYTES)).is_err());
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn with(mut self, key: &str, value: &str) -> Result<Baggage> {
        if !is_token(key) {
            return Err(Error::invalid("Baggage", "key", key, "must be an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"));
        }
        self.members.retain(|m| &*m.key != key);
        let member = Member { key: key.into(), value: value.into(), properties: "".into() };
        self.fits(&member).map_err(|rule| Error::invalid("Baggage", "value", value, rule))?;
        self.members.push(member);
        Ok(self)
    }

    /// This baggage without `key`.
    ///
    /// ```
    /// let baggage: flext_obs::context::Baggage = "a=1,b=2".parse()?;
    /// assert_eq!(baggage.without("a").to_string(), "b=2");
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    #[must_use]
    pub fn without(mut self, key: &str) -> Baggage {
        self.members.retain(|m| &*m.key != key);
        self
    }

    /// Whether `member` can be added within the limits.
    fn fits(&self, member: &Member) -> std::result::Result<(), &'static str> {
        if self.members.len() >= MAX_BAGGAGE_MEMBERS {
            return Err("the baggage already has 64 members");
        }
        let bytes: usize = self.members.iter().map(|m| m.encoded_len() + 1).sum::<usize>() + member.encoded_len();
        if bytes > MAX_BAGGAGE_BYTES {
            return Err("the baggage would be longer than 8192 bytes");
        }
        Ok(())
    }

    /// Reads the values of every `baggage` header of a request, leniently: a malformed member
    /// is dropped on its own (the rest is kept) and members past the limits are dropped; one
    /// error per dropped member or group of members. A later member with the same key replaces
    /// an earlier one.
    pub(crate) fn parse_headers(values: &[&str]) -> (Baggage, Vec<Error>) {
        let mut baggage = Baggage::new();
        let mut rejected = Vec::new();
        let mut over_limit = 0usize;
        for value in values {
            for text in value.split(',') {
                let text = text.trim_matches([' ', '\t']);
                if text.is_empty() {
                    continue;
                }
                match parse_member(text) {
                    Ok(member) => {
                        baggage.members.retain(|m| m.key != member.key);
                        if baggage.fits(&member).is_ok() {
                            baggage.members.push(member);
                        } else {
                            over_limit += 1;
                        }
                    }
                    Err(reason) => rejected.push(Error::Header { header: BAGGAGE, value: text.to_owned(), reason }),
                }
            }
        }
        if over_limit > 0 {
            rejected.push(Error::Header {
                header: BAGGAGE,
                value: format!("{over_limit} more member(s)"),
                reason: "past the W3C limits of 64 members and 8192 bytes: dropped",
            });
        }
        (baggage, rejected)
    }
}

impl FromStr for Baggage {
    type Err = Error;

    /// Parses a `baggage` header value strictly: any malformed member, or a value past the
    /// limits, is an error.
    fn from_str(text: &str) -> Result<Baggage> {
        let (baggage, mut rejected) = Baggage::parse_headers(&[text]);
        if rejected.is_empty() { Ok(baggage) } else { Err(rejected.swap_remove(0)) }
    }
}

impl fmt::Display for Baggage {
    /// The header value: `key=value;properties` members joined by commas, values percent-encoded.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, member) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            f.write_str(&member.key)?;
            f.write_char('=')?;
            for byte in member.value.bytes() {
                if is_baggage_octet(byte) {
                    f.write_char(char::from(byte))?;
                } else {
                    write!(f, "%{byte:02X}")?;
                }
            }
            if !member.properties.is_empty() {
                f.write_char(';')?;
                f.write_str(&member.properties)?;
            }
        }
        Ok(())
    }
}

/// Parses `key = value *( ; property )`.
fn parse_member(text: &str) -> std::result::Result<Member, &'static str> {
    let (pair, properties) = text.split_once(';').unwrap_or((text, ""));
    let (key, value) = pair.split_once('=').ok_or("a member must be key=value")?;
    let (key, value) = (key.trim_matches([' ', '\t']), value.trim_matches([' ', '\t']));
    if !is_token(key) {
        return Err("key must be an HTTP token");
    }
    let value = percent_decode(value)?;
    let properties = properties.trim_matches([' ', '\t']);
    for property in properties.split(';').filter(|p| !p.trim().is_empty()) {
        let (name, value) = property.split_once('=').unwrap_or((property, ""));
        if !is_token(name.trim_matches([' ', '\t'])) || !value.trim_matches([' ', '\t']).bytes().all(is_baggage_octet) {
            return Err("a property must be a token or token=value");
        }
    }
    Ok(Member { key: key.into(), value: value.into(), properties: properties.into() })
}

/// Decodes `%XX` escapes; the value must be baggage octets and decode to UTF-8.
fn percent_decode(value: &str) -> std::result::Result<String, &'static str> {
    const RULE: &str = "value must be baggage octets with %XX escapes of UTF-8";
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).ok_or(RULE)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| RULE)?);
                i += 3;
            }
            byte if is_baggage_octet(byte) => {
                out.push(byte);
                i += 1;
            }
            _ => return Err(RULE),
        }
    }
    String::from_utf8(out).map_err(|_| RULE)
}

/// W3C `baggage-octet`: printable ASCII but space, `"`, `,`, `;` and `\` (and, so that
/// encoding is reversible, `%`, which starts an escape).
fn is_baggage_octet(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x24 | 0x26..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// An HTTP token (RFC 9110 `tchar`s, at least one).
fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_percent_encoding() {
        let baggage = Baggage::new().with("k", "ünï cödé, 100% ; \"q\" \\").unwrap();
        let header = baggage.to_string();
        assert!(header.bytes().all(|b| b == b'=' || is_baggage_octet(b) || b == b'%'), "{header}");
        assert_eq!(header.parse::<Baggage>().unwrap(), baggage);
    }

    #[test]
    fn malformed_members_are_dropped_alone() {
        let (baggage, rejected) = Baggage::parse_headers(&["a=1, bad key=2, c=%zz, d", "e = 5 ;p;q=r"]);
        assert_eq!(baggage.iter().collect::<Vec<_>>(), [("a", "1"), ("e", "5")]);
        assert_eq!(baggage.to_string(), "a=1,e=5;p;q=r");
        assert_eq!(rejected.len(), 3);
    }

    #[test]
    fn limits_hold_on_extract_and_on_build() {
        let many = (0..70).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
        let (baggage, rejected) = Baggage::parse_headers(&[&many]);
        assert_eq!(baggage.len(), MAX_BAGGAGE_MEMBERS);
        assert_eq!(rejected.len(), 1);
        assert!(rejected[0].to_string().contains("6 more member(s)"), "{}", rejected[0]);
        let big = format!("a={},b={},c=1", "x".repeat(5000), "y".repeat(5000));
        let (baggage, _) = Baggage::parse_headers(&[&big]);
        assert_eq!(baggage.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["a", "c"]);
        assert!(baggage.to_string().len() <= MAX_BAGGAGE_BYTES);
        let mut built = Baggage::new();
        for i in 0..MAX_BAGGAGE_MEMBERS {
            built = built.with(&format!("k{i}"), "v").unwrap();
        }
        assert!(built.clone().with("one-more", "v").is_err());
        // replacing a key never counts against the limit
        assert_eq!(built.with("k0", "w").unwrap().get("k0"), Some("w"));
    }

    #[test]
    fn a_later_member_replaces_an_earlier_one() {
        let baggage: Baggage = "a=1,b=2,a=3".parse().unwrap();
        assert_eq!(baggage.to_string(), "b=2,a=3");
    }
}
