//! The small blocking HTTP client every exporter shares (ureq), with error statuses turned into
//! [`Error::Remote`] carrying the server's own message, and a deadline on every request: a peer
//! that accepts and never answers holds the calling thread for the request's timeout at most.
//! With the cargo feature `tls`, `https://` goes through rustls: the platform's roots
//! (rustls-platform-verifier: the OS trust store and its settings), or only the CA file given,
//! and a client certificate for mutual TLS.

use crate::config::{HttpAuth, TlsFiles};
use crate::error::{Error, Result};
use std::time::Duration;

/// Longest wait for a connection to be set up, whatever the request's overall timeout: a closed
/// or filtered port is known to be unreachable well before a slow answer would arrive.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// An agent that hands error statuses back as responses, so their bodies can be read. Each
/// request sets its own overall timeout ([`with_timeout`]); this one is the backstop.
#[cfg_attr(not(feature = "push"), allow(dead_code))] // the pusher and the Alertmanager sink use it
pub(crate) fn agent() -> ureq::Agent {
    base_config().build().into()
}

fn base_config() -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .timeout_connect(Some(CONNECT_TIMEOUT))
}

/// Largest PEM file read (a CA bundle is a few hundred KiB at most).
#[cfg(feature = "tls")]
const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

/// An [`agent`] that speaks TLS with `files`: trusting only `files.ca_certificate` when given
/// (else the platform's roots), presenting the client certificate when given. The files are read
/// now; a missing or malformed one is an error naming it. Without the `tls` feature this is the
/// plain agent (`https://` URLs are refused before any request).
#[cfg_attr(not(feature = "tls"), allow(clippy::unnecessary_wraps))] // reading the files can fail with `tls` only
pub(crate) fn agent_for(service: &'static str, files: &TlsFiles) -> Result<ureq::Agent> {
    #[cfg(feature = "tls")]
    {
        use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
        files.check(service)?;
        let read = |path: &std::path::Path| -> Result<Vec<u8>> {
            use std::io::Read as _;
            let mut bytes = Vec::new();
            let file = std::fs::File::open(path).map_err(|e| Error::invalid(service, "TLS file", path.display(), e.to_string()))?;
            file.take(MAX_PEM_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::invalid(service, "TLS file", path.display(), e.to_string()))?;
            if bytes.len() as u64 > MAX_PEM_BYTES {
                return Err(Error::invalid(service, "TLS file", path.display(), "larger than 4 MiB"));
            }
            Ok(bytes)
        };
        let certificates = |path: &std::path::Path| -> Result<Vec<Certificate<'static>>> {
            let bytes = read(path)?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&bytes) {
                match item {
                    Ok(PemItem::Certificate(cert)) => certs.push(cert),
                    Ok(_) => {}
                    Err(e) => return Err(Error::invalid(service, "TLS file", path.display(), format!("not valid PEM: {e}"))),
                }
            }
            if certs.is_empty() {
                return Err(Error::invalid(service, "TLS file", path.display(), "holds no PEM certificate"));
            }
            Ok(certs)
        };
        let mut tls = TlsConfig::builder();
        tls = match &files.ca_certificate {
            Some(path) => tls.root_certs(RootCerts::new_with_certs(&certificates(path)?)),
            None => tls.root_certs(RootCerts::PlatformVerifier),
        };
        if let (Some(cert), Some(key)) = (&files.client_certificate, &files.client_key) {
            let chain = certificates(cert)?;
            let key_bytes = read(key)?;
            let key = PrivateKey::from_pem(&key_bytes)
                .map_err(|e| Error::invalid(service, "TLS file", key.display(), format!("holds no PEM private key: {e}")))?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        Ok(base_config().tls_config(tls.build()).build().into())
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = (service, files);
        Ok(agent())
    }
}

/// `request` with the `Authorization` header `auth` asks for, if any.
#[cfg_attr(not(feature = "push"), allow(dead_code))] // the pusher and the Alertmanager sink use it
pub(crate) fn with_auth<B>(request: ureq::RequestBuilder<B>, auth: &HttpAuth) -> ureq::RequestBuilder<B> {
    match auth.header() {
        Some(value) => request.header("Authorization", value),
        None => request,
    }
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
#[cfg_attr(not(feature = "push"), allow(dead_code))] // the pusher and the Alertmanager sink use it
pub(crate) enum Failure {
    /// The peer could not be reached (refused, reset, unknown host, ...).
    Connect,
    /// The peer did not answer within the request's timeout.
    Timeout,
    /// The peer answered with a status other than 2xx.
    Status,
}

#[cfg_attr(not(feature = "push"), allow(dead_code))] // the pusher and the Alertmanager sink use it
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
#[cfg_attr(not(feature = "push"), allow(dead_code))] // the pusher and the Alertmanager sink use it
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
#[cfg_attr(not(feature = "push"), allow(dead_code))] // the pusher and the Alertmanager sink use it
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

/// Checks that `url` is `http://host[:port][/path]` (or `https://` with the `tls` feature) and
/// returns it without a trailing slash.
pub(crate) fn base_url(service: &'static str, url: &str) -> Result<String> {
    let trimmed = url.trim().trim_end_matches('/');
    crate::config::check_url(trimmed).map_err(|why| Error::invalid(service, "url", url, why))?;
    Ok(trimmed.to_owned())
}
