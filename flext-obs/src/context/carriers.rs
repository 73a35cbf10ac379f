//! The header types a [`Context`](super::Context) is injected into and extracted from.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};

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

    /// Every value of header `name`, in order, for headers that may be sent more than once
    /// (`tracestate`, `baggage`: their values are one comma-separated list). The default is
    /// [`Extractor::get`]'s one value.
    fn get_all(&self, name: &str) -> Vec<&str> {
        self.get(name).into_iter().collect()
    }
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

    fn get_all(&self, name: &str) -> Vec<&str> {
        (**self).get_all(name)
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

    fn get_all(&self, name: &str) -> Vec<&str> {
        self.iter().filter(|(k, _)| k.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref()).collect()
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

    fn get_all(&self, name: &str) -> Vec<&str> {
        Extractor::get_all(self.as_slice(), name)
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

    fn get_all(&self, name: &str) -> Vec<&str> {
        Extractor::get_all(self.as_slice(), name)
    }
}

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

    fn get_all(&self, name: &str) -> Vec<&str> {
        axum::http::HeaderMap::get_all(self, name).iter().filter_map(|value| value.to_str().ok()).collect()
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
