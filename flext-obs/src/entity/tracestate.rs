//! W3C Trace Context `tracestate`: the vendors' list that travels beside `traceparent`. flext-obs
//! adds no entry of its own; it checks what arrives, carries it to the spans made under it and
//! writes it back out unchanged (whitespace around members and empty members aside).

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// Header carrying the W3C trace state.
pub const TRACESTATE: &str = "tracestate";
/// Most list members a `tracestate` may have (W3C Trace Context: 32); a longer one is refused whole.
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// A checked W3C `tracestate`: up to [`MAX_TRACESTATE_MEMBERS`] `key=value` members, each key
/// once, in order (the most recently updated vendor first).
///
/// ```
/// use flext_obs::context::TraceState;
/// let state: TraceState = "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE".parse()?;
/// assert_eq!(state.get("congo"), Some("t61rcWkgMzE"));
/// assert_eq!(state.to_string(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
/// // a vendor updates its entry: it moves to the front
/// let state = state.with("congo", "ucfJifl5GOE")?;
/// assert_eq!(state.to_string(), "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
/// assert!("Upper=1".parse::<TraceState>().is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct TraceState {
    members: Vec<(Box<str>, Box<str>)>,
}

impl TraceState {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members.iter().find(|(k, _)| &**k == key).map(|(_, v)| &**v)
    }

    /// The members, in order.
    ///
    /// ```
    /// let state: flext_obs::context::TraceState = "a=1,b=2".parse()?;
    /// assert_eq!(state.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.members.iter().map(|(k, v)| (&**k, &**v))
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there is no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// This state with `key` set to `value`, moved to the front (what a vendor does when it
    /// takes part in the trace); when the list is full, the last member makes room.
    ///
    /// # Errors
    /// [`Error::Header`] when the key or the value breaks the W3C grammar.
    ///
    /// ```
    /// let state = flext_obs::context::TraceState::default().with("flext", "on")?;
    /// assert_eq!(state.to_string(), "flext=on");
    /// assert!(state.with("flext", "has,comma").is_err());
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn with(mut self, key: &str, value: &str) -> Result<TraceState> {
        let bad = |reason| Error::Header { header: TRACESTATE, value: format!("{key}={value}"), reason };
        check_key(key).map_err(bad)?;
        check_value(value).map_err(bad)?;
        self.members.retain(|(k, _)| &**k != key);
        self.members.truncate(MAX_TRACESTATE_MEMBERS - 1);
        self.members.insert(0, (key.into(), value.into()));
        Ok(self)
    }

    /// Reads the values of every `tracestate` header of a request as one list (W3C: several
    /// headers are joined with commas). `None` when there is no member.
    pub(crate) fn parse_headers(values: &[&str]) -> Result<Option<TraceState>> {
        let joined = values.join(",");
        let state = joined.parse::<TraceState>()?;
        Ok((!state.is_empty()).then_some(state))
    }
}

impl FromStr for TraceState {
    type Err = Error;

    /// Parses a `tracestate` value. Empty members (`a=1,,b=2`) and whitespace around members
    /// are allowed; a malformed member, a repeated key or more than
    /// [`MAX_TRACESTATE_MEMBERS`] members make the whole value invalid (W3C: a vendor that
    /// cannot parse it drops it rather than pass on part of it).
    fn from_str(text: &str) -> Result<TraceState> {
        let bad = |reason| Error::Header { header: TRACESTATE, value: text.to_owned(), reason };
        let mut members: Vec<(Box<str>, Box<str>)> = Vec::new();
        for member in text.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let (key, value) = member.split_once('=').ok_or_else(|| bad("every member must be key=value"))?;
            check_key(key).map_err(bad)?;
            check_value(value).map_err(bad)?;
            if members.iter().any(|(k, _)| &**k == key) {
                return Err(bad("a key may appear only once"));
            }
            if members.len() == MAX_TRACESTATE_MEMBERS {
                return Err(bad("more than 32 list members"));
            }
            members.push((key.into(), value.into()));
        }
        Ok(TraceState { members })
    }
}

impl fmt::Display for TraceState {
    /// The header value: the members joined by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}

/// A key character after the first: `a-z 0-9 _ - * /`.
fn key_char(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'_' | b'-' | b'*' | b'/')
}

/// `simple-key` (a lower-case letter, then up to 255 key characters) or `tenant@system` (tenant:
/// a letter or digit then up to 240, system: a letter then up to 13).
fn check_key(key: &str) -> std::result::Result<(), &'static str> {
    const RULE: &str = "key must be a-z then up to 255 of a-z 0-9 _ - * /, or tenant@system";
    let bytes = key.as_bytes();
    let ok = match key.split_once('@') {
        None => matches!(bytes.first(), Some(b) if b.is_ascii_lowercase()) && bytes.len() <= 256 && bytes.iter().all(|&b| key_char(b)),
        Some((tenant, system)) => {
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            matches!(t.first(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
                && t.len() <= 241
                && t.iter().all(|&b| key_char(b))
                && matches!(s.first(), Some(b) if b.is_ascii_lowercase())
                && s.len() <= 14
                && s.iter().all(|&b| key_char(b))
        }
    };
    if ok { Ok(()) } else { Err(RULE) }
}

/// 1 to 256 printable ASCII characters other than `,` and `=`, spaces allowed except at the end.
fn check_value(value: &str) -> std::result::Result<(), &'static str> {
    let bytes = value.as_bytes();
    let nblk = |b: u8| (0x21..=0x7e).contains(&b) && b != b',' && b != b'=';
    let ok =
        !bytes.is_empty() && bytes.len() <= 256 && bytes.iter().all(|&b| b == b' ' || nblk(b)) && bytes.last().is_some_and(|&b| nblk(b));
    if ok { Ok(()) } else { Err("value must be 1 to 256 printable ASCII characters other than , and =, not ending in a space") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_w3c_examples_and_refuses_bad_lists() {
        let state: TraceState = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".parse().unwrap();
        assert_eq!(state.len(), 2);
        let state: TraceState = " a=1 ,, b@vendor=x y z\t,".parse().unwrap();
        assert_eq!(state.to_string(), "a=1,b@vendor=x y z");
        for bad in ["a", "A=1", "a=", "a= ", "a=1,a=2", "1a=1", "a@b@c=1", "a@=1", "a=b=c", "a=\u{7f}"] {
            assert!(bad.parse::<TraceState>().is_err(), "{bad:?}");
        }
        let full = (0..32).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
        assert_eq!(full.parse::<TraceState>().unwrap().len(), 32);
        assert!(format!("{full},k32=v").parse::<TraceState>().is_err());
        let long_key = format!("a{}", "b".repeat(255));
        assert!(format!("{long_key}=1").parse::<TraceState>().is_ok());
        assert!(format!("{long_key}b=1").parse::<TraceState>().is_err());
        assert!(format!("a={}", "v".repeat(256)).parse::<TraceState>().is_ok());
        assert!(format!("a={}", "v".repeat(257)).parse::<TraceState>().is_err());
    }

    #[test]
    fn a_full_list_drops_its_last_member_for_an_update() {
        let full: TraceState = (0..32).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",").parse().unwrap();
        let updated = full.with("new", "1").unwrap();
        assert_eq!(updated.len(), 32);
        assert_eq!(updated.iter().next(), Some(("new", "1")));
        assert_eq!(updated.get("k31"), None);
        assert_eq!(updated.get("k30"), Some("v"));
    }

    #[test]
    fn several_headers_are_one_list() {
        let state = TraceState::parse_headers(&["a=1", "b=2"]).unwrap().unwrap();
        assert_eq!(state.to_string(), "a=1,b=2");
        assert_eq!(TraceState::parse_headers(&[" , "]).unwrap(), None);
        assert!(TraceState::parse_headers(&["a=1", "a=2"]).is_err());
    }
}
