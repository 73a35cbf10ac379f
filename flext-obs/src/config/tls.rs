//! How an exporter proves who it talks to and who it is: the TLS files of one peer (a CA to
//! trust instead of the platform's roots, a client certificate and key for mutual TLS) and the
//! HTTP authentication the Pushgateway and Alertmanager take (basic or bearer). Plain data, read
//! from the environment or set in code; the files are read when the exporter starts.

use super::env::{Get, env_err};
use super::otlp::readable_file;
use crate::error::{Error, Result};
use std::fmt;
use std::path::PathBuf;

/// The TLS files for one peer, all PEM. Used only for `https://` URLs (cargo feature `tls`).
///
/// - `ca_certificate`: the certificates trusted to sign the server's, instead of the platform's
///   roots (`OTEL_EXPORTER_OTLP_CERTIFICATE`).
/// - `client_certificate` and `client_key`: the client's certificate chain and private key, for
///   a server that asks for one (mutual TLS); both or neither.
///
/// ```
/// use flext_obs::config::TlsFiles;
/// let files = TlsFiles { ca_certificate: Some("/etc/ssl/collector-ca.pem".into()), ..TlsFiles::default() };
/// assert!(files.check("OtlpExporter").is_ok());
/// let half = TlsFiles { client_key: Some("/etc/ssl/client.key".into()), ..TlsFiles::default() };
/// assert!(half.check("OtlpExporter").unwrap_err().to_string().contains("client_certificate"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificates to trust instead of the platform's roots.
    pub ca_certificate: Option<PathBuf>,
    /// PEM certificate chain presented to the server.
    pub client_certificate: Option<PathBuf>,
    /// PEM private key of `client_certificate`.
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// Whether nothing is set (the platform's roots, no client certificate).
    pub fn is_empty(&self) -> bool {
        self.ca_certificate.is_none() && self.client_certificate.is_none() && self.client_key.is_none()
    }

    /// Checks that the client certificate and key come together.
    pub fn check(&self, entity: &'static str) -> Result<()> {
        match (&self.client_certificate, &self.client_key) {
            (Some(_), None) => Err(Error::invalid(entity, "client_key", "unset", "a client_certificate needs its client_key")),
            (None, Some(_)) => Err(Error::invalid(entity, "client_certificate", "unset", "a client_key needs its client_certificate")),
            _ => Ok(()),
        }
    }
}

/// HTTP authentication sent to the Pushgateway or Alertmanager (as `Authorization`). Its
/// `Debug` hides the secret.
///
/// ```
/// use flext_obs::config::HttpAuth;
/// let basic = HttpAuth::basic("ops", "s3cret")?;
/// assert_eq!(basic.header().as_deref(), Some("Basic b3BzOnMzY3JldA=="));
/// assert_eq!(HttpAuth::bearer("tok.en")?.header().as_deref(), Some("Bearer tok.en"));
/// assert!(!format!("{basic:?}").contains("s3cret"));
/// assert!(HttpAuth::basic("a:b", "c").is_err());
/// assert!(HttpAuth::bearer("two words").is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub enum HttpAuth {
    /// No `Authorization` header (the default).
    #[default]
    None,
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// The user name (no `:`).
        user: String,
        /// The password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

impl HttpAuth {
    /// Basic authentication; the user name may not hold `:`, neither may hold control
    /// characters.
    pub fn basic(user: impl Into<String>, password: impl Into<String>) -> Result<Self> {
        let (user, password) = (user.into(), password.into());
        if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
            return Err(Error::invalid("HttpAuth", "user", &user, "must be non-empty, without ':' or control characters"));
        }
        if password.chars().any(char::is_control) {
            return Err(Error::invalid("HttpAuth", "password", "<hidden>", "must not hold control characters"));
        }
        Ok(HttpAuth::Basic { user, password })
    }

    /// Bearer authentication; the token is RFC 6750's `b64token` (letters, digits, `-._~+/`,
    /// then `=` padding).
    pub fn bearer(token: impl Into<String>) -> Result<Self> {
        let token = token.into();
        let body = token.trim_end_matches('=');
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)) {
            return Err(Error::invalid("HttpAuth", "token", "<hidden>", "must be letters, digits, -._~+/ then = padding"));
        }
        Ok(HttpAuth::Bearer(token))
    }

    /// The `Authorization` header value, if any.
    pub fn header(&self) -> Option<String> {
        match self {
            HttpAuth::None => None,
            HttpAuth::Basic { user, password } => Some(format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))),
            HttpAuth::Bearer(token) => Some(format!("Bearer {token}")),
        }
    }
}

impl fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpAuth::None => f.write_str("None"),
            HttpAuth::Basic { user, .. } => f.debug_struct("Basic").field("user", user).field("password", &"<hidden>").finish(),
            HttpAuth::Bearer(_) => f.write_str("Bearer(<hidden>)"),
        }
    }
}

/// What the Pushgateway pusher or the Alertmanager sink needs to reach a guarded peer: TLS
/// files and HTTP authentication.
///
/// ```
/// use flext_obs::config::{HttpAuth, PeerAccess};
/// let access = PeerAccess { auth: HttpAuth::bearer("abc")?, ..PeerAccess::default() };
/// let config = flext_obs::Config::builder().alertmanager_access(access.clone()).build()?;
/// assert_eq!(config.alertmanager_access(), &access);
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerAccess {
    /// TLS files (for `https://`).
    pub tls: TlsFiles,
    /// HTTP authentication.
    pub auth: HttpAuth,
}

/// The variables of one peer: CA, client certificate, client key, user, password, bearer token.
pub(super) type AccessVars = [&'static str; 6];

/// `FLEXT_PUSH_GATEWAY_*`.
pub(super) const PUSH_VARS: AccessVars = [
    "FLEXT_PUSH_GATEWAY_CERTIFICATE",
    "FLEXT_PUSH_GATEWAY_CLIENT_CERTIFICATE",
    "FLEXT_PUSH_GATEWAY_CLIENT_KEY",
    "FLEXT_PUSH_GATEWAY_USER",
    "FLEXT_PUSH_GATEWAY_PASSWORD",
    "FLEXT_PUSH_GATEWAY_BEARER_TOKEN",
];

/// `FLEXT_ALERTMANAGER_*`.
pub(super) const ALERTMANAGER_VARS: AccessVars = [
    "FLEXT_ALERTMANAGER_CERTIFICATE",
    "FLEXT_ALERTMANAGER_CLIENT_CERTIFICATE",
    "FLEXT_ALERTMANAGER_CLIENT_KEY",
    "FLEXT_ALERTMANAGER_USER",
    "FLEXT_ALERTMANAGER_PASSWORD",
    "FLEXT_ALERTMANAGER_BEARER_TOKEN",
];

/// Reads one peer's access variables; a bad value, or a pair half set, is an error naming the
/// variable.
pub(super) fn access_from_vars(get: &Get<'_>, vars: &AccessVars) -> Result<PeerAccess> {
    let [ca, cert, key, user, password, token] = *vars;
    let mut access = PeerAccess::default();
    let file = |name| get(name).map(|(var, v)| readable_file(var, &v)).transpose();
    access.tls.ca_certificate = file(ca)?;
    access.tls.client_certificate = file(cert)?;
    access.tls.client_key = file(key)?;
    match (&access.tls.client_certificate, &access.tls.client_key) {
        (Some(path), None) => {
            return Err(env_err(cert, &path.display().to_string(), format!("a client certificate needs its key in {key}")));
        }
        (None, Some(path)) => {
            return Err(env_err(key, &path.display().to_string(), format!("a client key needs its certificate in {cert}")));
        }
        _ => {}
    }
    let user_value = get(user);
    if let Some((var, v)) = get(password) {
        let Some((_, name)) = &user_value else { return Err(env_err(var, "<hidden>", format!("a password needs its user in {user}"))) };
        access.auth = HttpAuth::basic(name.trim(), v).map_err(|_| env_err(var, "<hidden>", "a password without control characters"))?;
    }
    if let (Some((var, v)), HttpAuth::None) = (&user_value, &access.auth) {
        access.auth = HttpAuth::basic(v.trim(), "").map_err(|_| env_err(var, v, "a user name without ':' or control characters"))?;
    }
    if let Some((var, v)) = get(token) {
        if access.auth != HttpAuth::None {
            return Err(env_err(var, "<hidden>", format!("either a bearer token or {user}/{password}, not both")));
        }
        access.auth = HttpAuth::bearer(v.trim()).map_err(|_| env_err(var, "<hidden>", "letters, digits, -._~+/ then = padding"))?;
    }
    Ok(access)
}

/// RFC 4648's standard base64 alphabet.
pub(crate) const BASE64_STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// RFC 4648's URL- and file-safe alphabet (section 5).
#[cfg(feature = "push")] // the pusher's grouping labels
pub(crate) const BASE64_URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// RFC 4648 base64 with padding (standard alphabet).
pub(crate) fn base64(bytes: &[u8]) -> String {
    base64_with(bytes, BASE64_STANDARD)
}

/// RFC 4648 base64 with padding, in `alphabet`.
pub(crate) fn base64_with(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(alphabet[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")];
        for (plain, encoded) in cases {
            assert_eq!(super::base64(plain.as_bytes()), encoded);
        }
    }
}
