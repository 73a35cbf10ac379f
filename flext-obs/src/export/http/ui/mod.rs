//! `/ui`: a live page of the store for a person at a browser, served by the endpoint itself (no
//! Prometheus or Grafana to stand up). The page, its script and its style sheet are embedded in
//! the crate and make no request off the endpoint's origin (the Content-Security-Policy they are
//! served with forbids it); the script polls `/ui/data` (the [`UiData`] JSON) once a second with
//! `If-None-Match`, so an idle service answers `304` with no body, and `/ui/health` (the health
//! report, always with 200: the page shows the status, and a browser logs a 503 as an error). Rates, sparklines and the
//! objective's recent state are computed in the page from successive reads.
//!
//! The page and its assets hold no data and are served without the bearer token; `/ui/data`
//! shows error text and span attributes and is guarded like the other opt-in routes. With a
//! token, open `/ui#token=<token>`: the fragment never leaves the browser, and the script sends
//! it as `Authorization: Bearer`.

mod data;

pub use data::{
    CallerEdge, FunctionRow, MAX_ALERTS, MAX_EDGES, MAX_FUNCTIONS, MAX_LOGS, MAX_SPANS_PER_TRACE, MAX_TRACES, ObjectiveStatus, SpanView,
    TraceView, UiData,
};

/// The page (HTML).
pub(super) const PAGE: &str = include_str!("page.html");
/// Its script.
pub(super) const SCRIPT: &str = include_str!("app.js");
/// Its style sheet.
pub(super) const STYLE: &str = include_str!("app.css");

/// Served with the page and its assets: nothing but this origin, no framing, no referrer.
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `UiData` as JSON, with its entity tag (a hash of the body, so equal reads get equal tags).
pub(super) fn render(obs: &crate::Observability) -> (String, String) {
    let body = serde_json::to_string(&UiData::collect(obs)).unwrap_or_else(|err| format!("{{\"error\":{:?}}}", err.to_string()));
    let tag = format!("\"{:016x}\"", fnv1a(body.as_bytes()));
    (body, tag)
}

/// FNV-1a, 64 bits: stable across builds and platforms, enough to tell two bodies apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Whether an `If-None-Match` value names `tag` (a list, `*`, or weak tags: RFC 9110 13.1.2).
pub(super) fn matches(if_none_match: &str, tag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|given| given == "*" || given.trim_start_matches("W/") == tag)
}

#[cfg(test)]
mod tests {
    use super::{fnv1a, matches};

    #[test]
    fn entity_tags_match_as_rfc_9110_compares_them_weakly() {
        assert!(matches("\"ab\"", "\"ab\""));
        assert!(matches("\"x\", W/\"ab\"", "\"ab\""));
        assert!(matches("*", "\"ab\""));
        assert!(!matches("\"abc\"", "\"ab\""));
        assert!(!matches("", "\"ab\""));
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn the_page_loads_only_its_own_assets() {
        for asset in [super::PAGE, super::SCRIPT, super::STYLE] {
            // SVG's namespace is a name, never fetched.
            let asset = asset.replace("http://www.w3.org/2000/svg", "");
            assert!(!asset.contains("http://") && !asset.contains("https://") && !asset.contains("//cdn"), "an off-origin URL in an asset");
        }
        assert!(super::PAGE.len() + super::SCRIPT.len() + super::STYLE.len() < 200 * 1024);
    }
}
