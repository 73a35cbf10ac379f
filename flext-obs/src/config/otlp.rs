//! Where and how OTLP requests go, per signal: endpoint, protocol, headers, compression,
//! per-request timeout and TLS files, as the OpenTelemetry specification's
//! `OTEL_EXPORTER_OTLP_*` variables say (a signal's own `OTEL_EXPORTER_OTLP_TRACES_*`,
//! `_METRICS_*`, `_LOGS_*` win over the generic ones; a signal's own endpoint is used verbatim,
//! the generic one gets `/v1/traces`, `/v1/metrics` or `/v1/logs` appended).

use super::env::{Get, env_err, parse_bool, parse_millis};
use super::tls::TlsFiles;
use super::url::check_url;
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// The OTLP wire format.
///
/// ```
/// use flext_obs::config::OtlpProtocol;
/// assert_eq!(OtlpProtocol::parse("http/json"), Some(OtlpProtocol::HttpJson));
/// assert_eq!(OtlpProtocol::default(), OtlpProtocol::HttpProtobuf);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    /// OTLP/HTTP with protobuf bodies (`http/protobuf`, the default).
    #[default]
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies (`http/json`), the specification's JSON mapping.
    HttpJson,
    /// OTLP/gRPC (`grpc`), with the cargo feature `otlp-grpc` (without it, an error naming it).
    Grpc,
}

impl OtlpProtocol {
    /// Reads `http/protobuf`, `http/json` or `grpc`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "http/protobuf" => Some(OtlpProtocol::HttpProtobuf),
            "http/json" => Some(OtlpProtocol::HttpJson),
            "grpc" => Some(OtlpProtocol::Grpc),
            _ => None,
        }
    }
}

/// Compression of OTLP request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpCompression {
    /// Bodies as they are (`none`, the default).
    #[default]
    None,
    /// `Content-Encoding: gzip` (`gzip`).
    Gzip,
}

/// One of the three OTLP signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Spans, to `/v1/traces`.
    Traces,
    /// Metrics, to `/v1/metrics`.
    Metrics,
    /// Log records, to `/v1/logs`.
    Logs,
}

impl Signal {
    /// Every signal, in the order of [`OtlpTransports`]' fields.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The path appended to the generic endpoint.
    pub fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
        }
    }
}

/// What one level of OTLP settings sets (the generic level or one signal's); `None` leaves it to
/// the generic level, then to the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpTransport {
    /// The endpoint (generic: a base URL; a signal's: the full URL, used verbatim).
    pub endpoint: Option<String>,
    /// Headers sent with every request (a signal's list replaces the generic one).
    pub headers: Option<Vec<(String, String)>>,
    /// Request body compression (default none).
    pub compression: Option<OtlpCompression>,
    /// Longest one request may take (default 10 s, as in OpenTelemetry); the retries of one
    /// export are bounded by the export timeout as a whole.
    pub timeout: Option<Duration>,
    /// Wire format (default `http/protobuf`).
    pub protocol: Option<OtlpProtocol>,
    /// PEM CA certificates to trust for `https://`, instead of the platform's roots.
    pub certificate: Option<PathBuf>,
    /// PEM client certificate chain (mutual TLS).
    pub client_certificate: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key: Option<PathBuf>,
    /// gRPC only: plain text for an endpoint without a scheme. Read and checked; the HTTP
    /// protocols take the scheme from the URL, as the specification says.
    pub insecure: Option<bool>,
}

/// The OTLP transport settings: the generic level and each signal's.
///
/// ```
/// use flext_obs::config::{OtlpTransport, OtlpTransports, Signal};
/// let transports = OtlpTransports {
///     generic: OtlpTransport { endpoint: Some("http://collector:4318".into()), ..OtlpTransport::default() },
///     logs: OtlpTransport { endpoint: Some("http://logs:9000/ingest".into()), ..OtlpTransport::default() },
///     ..OtlpTransports::default()
/// };
/// assert_eq!(transports.target(Signal::Traces).unwrap().url, "http://collector:4318/v1/traces");
/// assert_eq!(transports.target(Signal::Logs).unwrap().url, "http://logs:9000/ingest");
/// assert!(OtlpTransports::default().target(Signal::Metrics).is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpTransports {
    /// `OTEL_EXPORTER_OTLP_*`.
    pub generic: OtlpTransport,
    /// `OTEL_EXPORTER_OTLP_TRACES_*`.
    pub traces: OtlpTransport,
    /// `OTEL_EXPORTER_OTLP_METRICS_*`.
    pub metrics: OtlpTransport,
    /// `OTEL_EXPORTER_OTLP_LOGS_*`.
    pub logs: OtlpTransport,
}

/// Where one signal's requests go and how, resolved from [`OtlpTransports`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpTarget {
    /// The full URL requests are posted to.
    pub url: String,
    /// Wire format.
    pub protocol: OtlpProtocol,
    /// Body compression.
    pub compression: OtlpCompression,
    /// Headers sent with every request.
    pub headers: Vec<(String, String)>,
    /// Longest one request may take.
    pub timeout: Duration,
    /// TLS files for `https://`.
    pub tls: TlsFiles,
}

/// OpenTelemetry's default `OTEL_EXPORTER_OTLP_TIMEOUT`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl OtlpTransports {
    /// The signal's own level.
    pub fn signal(&self, signal: Signal) -> &OtlpTransport {
        match signal {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
        }
    }

    /// Whether any signal has an endpoint.
    pub fn any_endpoint(&self) -> bool {
        Signal::ALL.iter().any(|&s| self.signal(s).endpoint.is_some()) || self.generic.endpoint.is_some()
    }

    /// Where `signal` goes, or `None` when neither its own nor the generic endpoint is set.
    pub fn target(&self, signal: Signal) -> Option<OtlpTarget> {
        let own = self.signal(signal);
        let generic = &self.generic;
        let protocol = own.protocol.or(generic.protocol).unwrap_or_default();
        let url = match (&own.endpoint, &generic.endpoint) {
            (Some(url), _) => url.trim().to_owned(),
            // gRPC names the service in the request, not in the URL.
            (None, Some(base)) if protocol == OtlpProtocol::Grpc => base.trim().trim_end_matches('/').to_owned(),
            (None, Some(base)) => format!("{}{}", base.trim().trim_end_matches('/'), signal.path()),
            (None, None) => return None,
        };
        let pick = |f: fn(&OtlpTransport) -> Option<PathBuf>| f(own).or_else(|| f(generic));
        Some(OtlpTarget {
            url,
            protocol,
            compression: own.compression.or(generic.compression).unwrap_or_default(),
            headers: own.headers.clone().or_else(|| generic.headers.clone()).unwrap_or_default(),
            timeout: own.timeout.or(generic.timeout).unwrap_or(DEFAULT_REQUEST_TIMEOUT),
            tls: TlsFiles {
                ca_certificate: pick(|t| t.certificate.clone()),
                client_certificate: pick(|t| t.client_certificate.clone()),
                client_key: pick(|t| t.client_key.clone()),
            },
        })
    }

    /// Checks every level: URLs (`https://` only with the `tls` feature), no gRPC (not in this
    /// build; nor a `:4317` endpoint, its port), headers, timeouts within
    /// [`super::MAX_WAIT`], client certificate and key together.
    pub fn check(&self) -> Result<()> {
        const ENTITY: &str = "OtlpTransports";
        for level in [&self.generic, &self.traces, &self.metrics, &self.logs] {
            if let Some(url) = &level.endpoint {
                check_url(url).map_err(|why| Error::invalid(ENTITY, "endpoint", url, why))?;
                if grpc_port(url) && level.protocol.or(self.generic.protocol) != Some(OtlpProtocol::Grpc) {
                    return Err(Error::invalid(ENTITY, "endpoint", url, GRPC_PORT));
                }
            }
            if level.protocol == Some(OtlpProtocol::Grpc) && !cfg!(feature = "otlp-grpc") {
                return Err(Error::invalid(ENTITY, "protocol", "grpc", GRPC_MISSING));
            }
            for (name, value) in level.headers.iter().flatten() {
                check_header(name, value).map_err(|why| Error::invalid(ENTITY, "headers", name, why))?;
            }
            if let Some(timeout) = level.timeout {
                super::check_wait(ENTITY, "timeout", timeout)?;
            }
        }
        for signal in Signal::ALL {
            if let Some(target) = self.target(signal) {
                target.tls.check(ENTITY)?;
            }
        }
        Ok(())
    }
}

/// Why `grpc` is refused without the `otlp-grpc` feature.
pub(crate) const GRPC_MISSING: &str =
    "OTLP/gRPC needs the cargo feature `otlp-grpc`, which this build of flext-obs does not have; use http/protobuf (port 4318)";
/// Why a `:4317` endpoint is refused with an HTTP protocol.
const GRPC_PORT: &str = if cfg!(feature = "otlp-grpc") {
    "port 4317 is OTLP/gRPC: set OTEL_EXPORTER_OTLP_PROTOCOL=grpc, or use OTLP/HTTP on 4318"
} else {
    "port 4317 is OTLP/gRPC, which needs the cargo feature `otlp-grpc` (not in this build); OTLP/HTTP listens on 4318"
};

/// Whether `url`'s port is 4317, the OTLP/gRPC port.
fn grpc_port(url: &str) -> bool {
    let rest = url.trim().split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.rsplit_once(':').is_some_and(|(_, port)| port == "4317")
}

/// An HTTP header name must be a token (RFC 9110), and a value may not hold control characters
/// (CR and LF would split the request).
pub(super) fn check_header(name: &str, value: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
        return Err("a header name must be a token: letters, digits and !#$%&'*+-.^_`|~");
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err("a header value must not hold control characters");
    }
    Ok(())
}

/// Decodes `%XX` escapes (W3C baggage, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_RESOURCE_ATTRIBUTES`);
/// `None` for a broken escape or bytes that are not UTF-8.
pub(super) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A `key=value,key=value` list (W3C baggage style: spaces around items trimmed, values
/// percent-decoded, `;` properties after a value dropped); `None` for a malformed item.
pub(super) fn parse_pairs(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (key, value) = item.split_once('=').ok_or_else(|| format!("`{item}` is not key=value"))?;
        let value = value.split(';').next().unwrap_or("");
        let key = percent_decode(key.trim()).ok_or_else(|| format!("`{key}` has a broken %-escape"))?;
        let value = percent_decode(value.trim()).ok_or_else(|| format!("`{value}` has a broken %-escape"))?;
        if key.is_empty() {
            return Err(format!("`{item}` has an empty key"));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// The names of one level's variables, in [`OtlpTransport`]'s field order.
struct Names {
    endpoint: &'static str,
    headers: &'static str,
    compression: &'static str,
    timeout: &'static str,
    protocol: &'static str,
    certificate: &'static str,
    client_certificate: &'static str,
    client_key: &'static str,
    insecure: &'static str,
}

macro_rules! names {
    ($p:literal) => {
        Names {
            endpoint: concat!($p, "ENDPOINT"),
            headers: concat!($p, "HEADERS"),
            compression: concat!($p, "COMPRESSION"),
            timeout: concat!($p, "TIMEOUT"),
            protocol: concat!($p, "PROTOCOL"),
            certificate: concat!($p, "CERTIFICATE"),
            client_certificate: concat!($p, "CLIENT_CERTIFICATE"),
            client_key: concat!($p, "CLIENT_KEY"),
            insecure: concat!($p, "INSECURE"),
        }
    };
}

/// Generic, traces, metrics, logs.
const LEVELS: [Names; 4] = [
    names!("OTEL_EXPORTER_OTLP_"),
    names!("OTEL_EXPORTER_OTLP_TRACES_"),
    names!("OTEL_EXPORTER_OTLP_METRICS_"),
    names!("OTEL_EXPORTER_OTLP_LOGS_"),
];

#[cfg(test)]
impl Names {
    fn all(&self) -> [&'static str; 9] {
        [
            self.endpoint,
            self.headers,
            self.compression,
            self.timeout,
            self.protocol,
            self.certificate,
            self.client_certificate,
            self.client_key,
            self.insecure,
        ]
    }
}

/// Every `OTEL_EXPORTER_OTLP_*` variable read (36: nine per level).
#[cfg(test)]
fn var_names() -> impl Iterator<Item = &'static str> {
    LEVELS.iter().flat_map(Names::all)
}

/// Reads the four levels of `OTEL_EXPORTER_OTLP_*`; a bad value is an error naming its variable.
pub(super) fn transports_from_vars(get: &Get<'_>) -> Result<OtlpTransports> {
    let mut levels = LEVELS.iter().map(|names| level_from_vars(get, names));
    let generic = levels.next().unwrap_or_else(|| Ok(OtlpTransport::default()))?;
    let mut next = || levels.next().unwrap_or_else(|| Ok(OtlpTransport::default()));
    let transports = OtlpTransports { generic, traces: next()?, metrics: next()?, logs: next()? };
    // Checks across levels, each blamed on the variable that would fix it.
    for (names, level) in LEVELS.iter().zip([&transports.generic, &transports.traces, &transports.metrics, &transports.logs]) {
        if let Some(url) = &level.endpoint {
            let protocol = level.protocol.or(transports.generic.protocol);
            if grpc_port(url) && protocol != Some(OtlpProtocol::Grpc) {
                return Err(env_err(names.endpoint, url, GRPC_PORT));
            }
        }
    }
    for (signal, names) in Signal::ALL.into_iter().zip(&LEVELS[1..]) {
        if let Some(target) = transports.target(signal) {
            let own = transports.signal(signal);
            // The variable set, and its counterpart at the same level.
            let level = |own_set: bool| if own_set { names } else { &LEVELS[0] };
            match (&target.tls.client_certificate, &target.tls.client_key) {
                (Some(path), None) => {
                    let at = level(own.client_certificate.is_some());
                    let why = format!("a client certificate needs its key in {}", at.client_key);
                    return Err(env_err(at.client_certificate, &path.display().to_string(), why));
                }
                (None, Some(path)) => {
                    let at = level(own.client_key.is_some());
                    let why = format!("a client key needs its certificate in {}", at.client_certificate);
                    return Err(env_err(at.client_key, &path.display().to_string(), why));
                }
                _ => {}
            }
        }
    }
    Ok(transports)
}

fn level_from_vars(get: &Get<'_>, names: &Names) -> Result<OtlpTransport> {
    let mut level = OtlpTransport::default();
    if let Some((var, v)) = get(names.endpoint) {
        let url = v.trim();
        check_url(url).map_err(|why| env_err(var, &v, why))?;
        level.endpoint = Some(url.to_owned());
    }
    if let Some((var, v)) = get(names.headers) {
        let pairs = parse_pairs(&v).map_err(|why| env_err(var, &v, format!("a list of key=value pairs, values %-encoded: {why}")))?;
        for (name, value) in &pairs {
            check_header(name, value).map_err(|why| env_err(var, &v, why))?;
        }
        level.headers = Some(pairs);
    }
    if let Some((var, v)) = get(names.compression) {
        level.compression = Some(match v.trim() {
            "gzip" => OtlpCompression::Gzip,
            "none" => OtlpCompression::None,
            _ => return Err(env_err(var, &v, "gzip or none")),
        });
    }
    if let Some((var, v)) = get(names.timeout) {
        level.timeout = Some(parse_millis(var, &v)?);
    }
    if let Some((var, v)) = get(names.protocol) {
        level.protocol = match OtlpProtocol::parse(&v) {
            Some(OtlpProtocol::Grpc) if !cfg!(feature = "otlp-grpc") => return Err(env_err(var, &v, GRPC_MISSING)),
            Some(protocol) => Some(protocol),
            None => return Err(env_err(var, &v, "http/protobuf, http/json or grpc (grpc with the cargo feature `otlp-grpc`)")),
        };
    }
    for (name, slot) in [
        (names.certificate, &mut level.certificate),
        (names.client_certificate, &mut level.client_certificate),
        (names.client_key, &mut level.client_key),
    ] {
        if let Some((var, v)) = get(name) {
            *slot = Some(readable_file(var, &v)?);
        }
    }
    if let Some((var, v)) = get(names.insecure) {
        level.insecure = Some(parse_bool(var, &v)?);
    }
    Ok(level)
}

/// `value` as a path to a file that exists (read when the exporter starts), else an error naming
/// `var`.
pub(super) fn readable_file(var: &'static str, value: &str) -> Result<PathBuf> {
    let path = PathBuf::from(value.trim());
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(_) => Err(env_err(var, value, "the path of a PEM file (this is not a file)")),
        Err(err) => Err(env_err(var, value, format!("the path of a readable PEM file ({err})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_percent_decoded_and_trimmed() {
        let pairs = parse_pairs(" api-key = a%20b%3Dc , x=1;prop ,").unwrap();
        assert_eq!(pairs, [("api-key".to_owned(), "a b=c".to_owned()), ("x".to_owned(), "1".to_owned())]);
        assert!(parse_pairs("novalue").is_err());
        assert!(parse_pairs("k=%zz").is_err());
        assert!(parse_pairs("=v").is_err());
        assert!(parse_pairs("k=%FF").is_err(), "not UTF-8");
    }

    #[test]
    fn the_grpc_port_is_recognised() {
        assert!(grpc_port("http://localhost:4317"));
        assert!(grpc_port("https://collector:4317/"));
        assert!(!grpc_port("http://localhost:4318/v1/traces"));
        assert!(!grpc_port("http://localhost/4317"));
    }

    #[cfg(not(feature = "otlp-grpc"))]
    #[test]
    fn grpc_without_the_feature_is_an_error_naming_it() {
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://localhost:4317/v1/traces"),
        ] {
            let err = crate::Config::from_lookup(|name| (name == var).then(|| value.to_owned())).unwrap_err();
            assert!(matches!(&err, Error::Env { var: named, .. } if *named == var), "{err}");
            assert!(err.to_string().contains("cargo feature `otlp-grpc`"), "{err}");
        }
    }

    #[test]
    fn every_variable_is_listed_for_from_env() {
        for var in var_names() {
            assert!(super::super::ENV_VARS.contains(&var), "{var} missing from ENV_VARS");
        }
        assert_eq!(var_names().count(), 36);
    }
}
