//! Reading and writing a [`Context`] as request headers: W3C `traceparent`, `tracestate`,
//! `baggage`, and `x-correlation-id`.

use super::{BAGGAGE, Baggage, CORRELATION_ID, Carried, Context, Extractor, Injector, SpanContext, TRACEPARENT, TRACESTATE, TraceState};
use crate::config::Propagators;
use crate::entity::{CorrelationId, SpanId, TraceId};
use crate::error::{Error, Result};

impl Context {
    /// Writes `traceparent` (when there is a span), with `tracestate` beside it (when there is
    /// one), `baggage` (when there is any) and `x-correlation-id` (when there is an ID) into
    /// outgoing headers. [`Context::inject_with`] writes only the formats asked for. When the
    /// span is a monitored call's, that call is recorded as the CLIENT span of the request (an
    /// internal one becomes a client; a server stays a server).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use flext_obs::context::{Context, SpanContext};
    /// let span = SpanContext { trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".parse()?, span_id: "00f067aa0ba902b7".parse()?, sampled: true };
    /// let mut headers = HashMap::new();
    /// Context::new().with_span(span).inject(&mut headers);
    /// assert_eq!(headers["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    /// assert_eq!(Context::extract(&headers).context.span(), Some(span));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn inject(&self, headers: &mut impl Injector) {
        self.inject_with(headers, Propagators::default());
    }

    /// Writes the headers of the formats in `propagators` (what `OTEL_PROPAGATORS` asked for is
    /// [`Config::propagators`](crate::Config::propagators)); `x-correlation-id` is always written.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use flext_obs::config::Propagators;
    /// use flext_obs::context::{Baggage, Context};
    /// let cx = Context::new().with_baggage(Baggage::new().with("tenant", "acme")?);
    /// let mut headers = HashMap::new();
    /// cx.inject_with(&mut headers, Propagators { tracecontext: true, baggage: false });
    /// assert!(headers.get("baggage").is_none());
    /// cx.inject_with(&mut headers, Propagators::default());
    /// assert_eq!(headers["baggage"], "tenant=acme");
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn inject_with(&self, headers: &mut impl Injector, propagators: Propagators) {
        if let (true, Some(span)) = (propagators.tracecontext, self.span) {
            headers.set(TRACEPARENT, format!("00-{}-{}-{:02x}", span.trace_id, span.span_id, u8::from(span.sampled)));
            if self.site() != 0 {
                // The span of a monitored call whose context leaves in a request: its client.
                crate::attributes::mark_client(span.span_id);
            }
            if let Some(tracestate) = self.tracestate() {
                headers.set(TRACESTATE, tracestate.to_string());
            }
        }
        if let (true, Some(baggage)) = (propagators.baggage, self.baggage()) {
            headers.set(BAGGAGE, baggage.to_string());
        }
        if let Some(id) = self.correlation_id {
            headers.set(CORRELATION_ID, id.to_string());
        }
    }

    /// Reads the context of an incoming request, leniently, as a service edge should: each
    /// header is taken or dropped on its own, so a malformed `x-correlation-id` never costs the
    /// valid `traceparent` next to it (nor the other way round). What was dropped, and why, is in
    /// [`Extracted::rejected`]; a missing header simply leaves its part empty.
    ///
    /// Accepted: `traceparent` as W3C Trace Context writes it (version `00`, or a later version
    /// read by the version-00 layout); `tracestate` beside a valid `traceparent` only (W3C), as
    /// one list of all its headers, dropped whole when malformed ([`TraceState`]); `baggage` as
    /// one list of all its headers, a malformed member dropped alone and members past
    /// [`MAX_BAGGAGE_MEMBERS`](super::MAX_BAGGAGE_MEMBERS) or
    /// [`MAX_BAGGAGE_BYTES`](super::MAX_BAGGAGE_BYTES) dropped ([`Baggage`]); `x-correlation-id` as any token of 1 to
    /// [`MAX_CORRELATION_ID_LEN`](crate::MAX_CORRELATION_ID_LEN) printable ASCII characters
    /// (`0x21..=0x7E`), surrounding whitespace trimmed (see [`CorrelationId`]). Header names
    /// match case-insensitively. `headers` is anything that implements [`Extractor`]: an array
    /// or slice of name-value pairs, a `Vec` of them, a `HashMap` or `BTreeMap` of `&str` or
    /// `String`, or (feature `http`) an `http::HeaderMap`.
    ///
    /// ```
    /// use flext_obs::context::Context;
    /// let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// let extracted = Context::extract(&[("traceparent", traceparent), ("x-correlation-id", "has space")]);
    /// assert_eq!(extracted.context.span().map(|s| s.span_id.to_string()).as_deref(), Some("00f067aa0ba902b7"));
    /// assert_eq!(extracted.context.correlation_id(), None);
    /// assert!(extracted.rejected[0].to_string().starts_with(r#"malformed x-correlation-id header "has space""#));
    ///
    /// let from_proxy = Context::extract(&[("X-Correlation-ID", " req-42 ")]).context;
    /// assert_eq!(from_proxy.correlation_id().map(|id| id.to_string()).as_deref(), Some("req-42"));
    /// ```
    pub fn extract(headers: &(impl Extractor + ?Sized)) -> Extracted {
        Context::extract_with(headers, Propagators::default())
    }

    /// Reads the headers of the formats in `propagators` only (as [`Context::extract`] does);
    /// `x-correlation-id` is always read.
    ///
    /// ```
    /// use flext_obs::config::Propagators;
    /// use flext_obs::context::Context;
    /// let headers = [("baggage", "tenant=acme")];
    /// assert!(Context::extract_with(&headers, Propagators { tracecontext: true, baggage: false }).context.baggage().is_none());
    /// assert!(Context::extract_with(&headers, Propagators::default()).context.baggage().is_some());
    /// ```
    pub fn extract_with(headers: &(impl Extractor + ?Sized), propagators: Propagators) -> Extracted {
        let mut rejected = Vec::new();
        let span = if propagators.tracecontext {
            headers.get(TRACEPARENT).and_then(|value| parse_traceparent(value).map_err(|err| rejected.push(err)).ok())
        } else {
            None
        };
        // W3C: no `tracestate` without a valid `traceparent`.
        let tracestate = match span {
            Some(_) => {
                let values = headers.get_all(TRACESTATE);
                TraceState::parse_headers(&values).map_err(|err| rejected.push(err)).ok().flatten()
            }
            None => None,
        };
        let baggage = if propagators.baggage {
            let values = headers.get_all(BAGGAGE);
            let (baggage, dropped) = Baggage::parse_headers(&values);
            rejected.extend(dropped);
            Some(baggage)
        } else {
            None
        };
        let correlation_id =
            headers.get(CORRELATION_ID).and_then(|value| parse_correlation_id(value).map_err(|err| rejected.push(err)).ok());
        let context = Context { correlation_id, span, site: 0, remote: span.is_some(), carried: Carried::shared(tracestate, baggage) };
        Extracted { context, rejected }
    }

    /// Reads the context of an incoming request, strictly: the first malformed header is an
    /// error and nothing is returned, for callers that would rather refuse the request (or a
    /// test that wants to see the headers are right). Accepts what [`Context::extract`] accepts.
    ///
    /// ```
    /// use flext_obs::context::Context;
    /// let headers = [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7")];
    /// let err = Context::extract_strict(&headers).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"malformed traceparent header "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7": expected version-traceid-spanid-flags"#
    /// );
    /// ```
    pub fn extract_strict(headers: &(impl Extractor + ?Sized)) -> Result<Context> {
        Context::extract(headers).into_result()
    }
}

/// What [`Context::extract`] read: the context made of the headers that were well formed, and
/// an error for each one that was dropped, so the caller can log or count them (or turn them
/// into a `400` with [`Extracted::into_result`]).
///
/// ```
/// use flext_obs::context::Context;
/// let extracted = Context::extract(&[("x-correlation-id", "")]);
/// assert_eq!(extracted.context, Context::new());
/// assert_eq!(extracted.errors().len(), 1);
/// assert!(Context::extract(&[("x-correlation-id", "req-42")]).errors().is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[must_use = "the extracted context does nothing until it is attached or used to run work"]
pub struct Extracted {
    /// The context of the well-formed headers (missing and dropped ones leave their part empty).
    pub context: Context,
    /// One [`Error::Header`] per header (or baggage member) that was dropped, in the order
    /// `traceparent`, `tracestate`, `baggage`, `x-correlation-id`.
    pub rejected: Vec<Error>,
}

impl Extracted {
    /// The errors of the dropped headers (empty when every header present was well formed).
    ///
    /// ```
    /// let extracted = flext_obs::context::Context::extract(&[("traceparent", "00-zz")]);
    /// assert_eq!(extracted.errors().len(), 1);
    /// ```
    pub fn errors(&self) -> &[Error] {
        &self.rejected
    }

    /// The context if no header was dropped, else the first error (what
    /// [`Context::extract_strict`] returns).
    ///
    /// ```
    /// let extracted = flext_obs::context::Context::extract(&[("x-correlation-id", "req-42")]);
    /// assert_eq!(extracted.into_result()?.correlation_id().map(|id| id.to_string()).as_deref(), Some("req-42"));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn into_result(self) -> Result<Context> {
        match self.rejected.into_iter().next() {
            Some(err) => Err(err),
            None => Ok(self.context),
        }
    }
}

/// Parses an `x-correlation-id` value (surrounding whitespace trimmed).
fn parse_correlation_id(value: &str) -> Result<CorrelationId> {
    CorrelationId::check(value.trim()).map_err(|rule| Error::Header {
        header: CORRELATION_ID,
        value: value.to_owned(),
        reason: rule.reason(),
    })
}

/// Parses a W3C `traceparent` value: `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
/// Later versions are read by the version-00 layout, as the W3C specification asks.
fn parse_traceparent(value: &str) -> Result<SpanContext> {
    let bad = |reason: &'static str| Error::Header { header: TRACEPARENT, value: value.to_owned(), reason };
    let text = value.trim();
    let parts: Vec<&str> = text.split('-').collect();
    if parts.len() < 4 {
        return Err(bad("expected version-traceid-spanid-flags"));
    }
    let (version, trace, span, flags) = (parts[0], parts[1], parts[2], parts[3]);
    if version.len() != 2 || !version.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(bad("version must be 2 lower-case hex digits"));
    }
    if version == "ff" {
        return Err(bad("version ff is forbidden"));
    }
    if version == "00" && parts.len() != 4 {
        return Err(bad("version 00 has exactly 4 fields"));
    }
    let trace_id = trace.parse::<TraceId>().map_err(|_| bad("trace id must be 32 lower-case hex digits, not all zero"))?;
    let span_id = span.parse::<SpanId>().map_err(|_| bad("parent id must be 16 lower-case hex digits, not all zero"))?;
    let flags = match flags.as_bytes() {
        &[high, low] => lower_hex_digit(high).zip(lower_hex_digit(low)).map(|(high, low)| high << 4 | low),
        _ => None,
    };
    // Digit by digit: `u8::from_str_radix` would also take a sign (`+1`).
    let flags = flags.ok_or_else(|| bad("flags must be 2 lower-case hex digits"))?;
    Ok(SpanContext { trace_id, span_id, sampled: flags & 1 == 1 })
}

/// The value of one lower-case hex digit.
fn lower_hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}
