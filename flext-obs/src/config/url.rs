//! Exporter URLs: `http://host[:port][/path]`, and `https://` when the cargo feature `tls` is on
//! (without it, an error that names the feature).

/// Why `https://` is refused in a build without the `tls` feature.
pub(crate) const TLS_FEATURE: &str = "https:// needs the cargo feature `tls` of flext-obs (rustls); enable it or use an http:// URL";

/// Whether `url` is an `http://` or `https://` URL with a host and no whitespace.
pub(crate) fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.starts_with(':') && !url.chars().any(char::is_whitespace)
    })
}

/// Checks an exporter URL: an `http://` URL with a host, or `https://` with the `tls` feature;
/// the error says what was expected.
pub(crate) fn check_url(url: &str) -> Result<(), &'static str> {
    let url = url.trim();
    if url.starts_with("https://") && !cfg!(feature = "tls") {
        return Err(TLS_FEATURE);
    }
    if is_http_url(url) { Ok(()) } else { Err("an http:// or https:// URL with a host") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_a_scheme_and_a_host() {
        assert!(check_url("http://127.0.0.1:4318").is_ok());
        for bad in ["127.0.0.1:4318", "http://", "http://:80", "ftp://x", "http://a b"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn https_without_the_tls_feature_is_an_error_naming_it() {
        assert_eq!(check_url("https://collector:4318"), Err(TLS_FEATURE));
        for var in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "PROMETHEUS_PUSH_GATEWAY", "FLEXT_ALERTMANAGER_URL"]
        {
            let err = crate::Config::from_lookup(|name| (name == var).then(|| "https://127.0.0.1:4318".to_owned())).unwrap_err();
            assert!(err.to_string().starts_with(&format!("environment variable {var}=")), "{err}");
            assert!(err.to_string().contains("cargo feature `tls`"), "{err}");
        }
        let err = crate::Config::builder().alertmanager_url("https://am:9093").build().unwrap_err();
        assert!(err.to_string().contains("alertmanager_url") && err.to_string().contains("`tls`"), "{err}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn https_with_the_tls_feature_is_taken() {
        assert!(check_url("https://collector:4318").is_ok());
    }
}
