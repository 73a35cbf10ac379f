//! The small blocking HTTP client every exporter shares (ureq), with error statuses turned into
//! [`Error::Remote`] carrying the server's own message, and a deadline on every request: a peer
//! that accepts and never answers holds the calling thread for the request's timeout at most.

use crate::error::{Error, Result};
use std::time::Duration;

/// Longest wait for a connection to be set up, whatever the request's overall timeout: a closed
/// or filtered port is known to be unreachable well before a slow answer would arrive.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// An agent that hands error statuses back as responses, so their bodies can be read. Each
/// request sets its own overall timeout ([`with_timeout`]); this one is the backstop.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .build()
        .into()
}

/// `request` with an overall deadline of `timeout` (connection, sending, answer and body) and a
/// connect timeout of at most [`CONNECT_TIMEOUT`].
pub(crate) fn with_timeout<B>(request: ureq::RequestBuilder<B>, timeout: Duration) -> ureq::RequestBuilder<B> {
    // ureq refuses nothing here, but a zero timeout would fail at once: keep one millisecond.
    let timeout = timeout.max(Duration::from_millis(1));
    request.config().timeout_global(Some(timeout)).timeout_connect(Some(timeout.min(CONNECT_TIMEOUT))).build()
}

/// Why a request failed, for the `reason` label of the failure counters (a closed set, so the
/// label's cardinality is bounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The peer could not be reached (refused, reset, unknown host, ...).
    Connect,
    /// The peer did not answer within the request's timeout.
    Timeout,
    /// The peer answered with a status other than 2xx.
    Status,
}

impl Failure {
    /// Every reason, in label order.
    pub(crate) const ALL: [Failure; 3] = [Failure::Connect, Failure::Timeout, Failure::Status];

    /// The `reason` label value.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Timeout => "timeout",
            Failure::Status => "status",
        }
    }
}

/// Checks a response: 2xx is `Ok`, anything else an error (an [`Error::Remote`] with the body as
/// message for a status) with the reason it failed.
pub(crate) fn classify(
    service: &'static str,
    result: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> std::result::Result<(), (Error, Failure)> {
    let mut response = match result {
        Ok(response) => response,
        Err(err) => {
            let failure = if is_timeout(&err) { Failure::Timeout } else { Failure::Connect };
            return Err((Error::Transport { service, message: err.to_string() }, failure));
        }
    };
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    // The message is for people: 64 KiB of it is plenty, and a huge error page costs no more.
    let message = response.body_mut().with_config().limit(64 * 1024).read_to_string().unwrap_or_default().trim().to_owned();
    Err((Error::Remote { service, status, message }, Failure::Status))
}

/// Like [`classify`], without the reason.
pub(crate) fn check(service: &'static str, result: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<()> {
    classify(service, result).map_err(|(err, _)| err)
}

fn is_timeout(err: &ureq::Error) -> bool {
    match err {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock),
        _ => false,
    }
}

/// Checks that `url` is `http://host[:port][/path]` without a trailing slash and returns it.
/// `https://` is refused: this build has no TLS (a later release adds it).
pub(crate) fn base_url(service: &'static str, url: &str) -> Result<String> {
    let trimmed = url.trim().trim_end_matches('/');
    if trimmed.starts_with("https://") {
        return Err(Error::invalid(service, "url", url, "https:// is not supported yet (no TLS in this build); use http://"));
    }
    let host = trimmed.strip_prefix("http://").map(|rest| rest.split('/').next().unwrap_or(""));
    match host {
        Some(host) if !host.is_empty() => Ok(trimmed.to_owned()),
        _ => Err(Error::invalid(service, "url", url, "must be an http:// URL with a host")),
    }
}
