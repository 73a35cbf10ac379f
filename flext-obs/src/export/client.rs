//! The small blocking HTTP client the pusher and the Alertmanager sink share (ureq), with
//! error statuses turned into [`Error::Remote`] carrying the server's own message.

use crate::error::{Error, Result};
use std::time::Duration;

/// An agent that hands error statuses back as responses, so their bodies can be read.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(10))).build().into()
}

/// Checks a response: 2xx is `Ok`, anything else an [`Error::Remote`] with the body as message.
pub(crate) fn check(service: &'static str, result: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<()> {
    let mut response = result.map_err(|e| Error::Transport { service, message: e.to_string() })?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let message = response.body_mut().read_to_string().unwrap_or_default().trim().to_owned();
    Err(Error::Remote { service, status, message })
}

/// Checks that `url` is `http://host[:port][/path]` without a trailing slash and returns it.
pub(crate) fn base_url(service: &'static str, url: &str) -> Result<String> {
    let trimmed = url.trim().trim_end_matches('/');
    let host = trimmed.strip_prefix("http://").map(|rest| rest.split('/').next().unwrap_or(""));
    match host {
        Some(host) if !host.is_empty() => Ok(trimmed.to_owned()),
        _ => Err(Error::invalid(service, "url", url, "must be an http:// URL with a host (https needs a TLS-enabled build)")),
    }
}
