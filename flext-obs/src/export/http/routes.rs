//! The endpoint's routes and their bearer-token guard.
//!
//! `/metrics`, `/health` and `/ready` are always there; `/snapshot`, `/alerts`, `/traces` and
//! `/logs` only when [`Routes`] asks for them, since they show error text, log fields and span
//! attributes (a password in an `Err` message ends up in `/alerts`). Rendering (exposition,
//! JSON of the whole store) runs on the blocking pool (`spawn_blocking`), so a big `/snapshot`
//! never holds the threads that accept connections and answer `/ready` or `/health`.

use super::ui;
use crate::api::Observability;
use crate::config::{BearerToken, HttpSettings, Routes};
use crate::export::prometheus::{Format, render_export};
use crate::health::HealthRegistry;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Clone)]
struct Shared {
    obs: Observability,
    health: HealthRegistry,
    token: Option<Arc<BearerToken>>,
    token_all_routes: bool,
    /// Renders of the opt-in routes at once: one fewer than the render threads (at least one),
    /// so a burst of `/snapshot` requests always leaves a thread for `/metrics`.
    opt_in_renders: Arc<Semaphore>,
    /// How long an opt-in request waits for its turn before it is answered 503.
    opt_in_wait: Duration,
}

/// Which routes a token guards.
#[derive(Clone, Copy, PartialEq)]
enum Guard {
    /// `/metrics`, `/health`, `/ready`: only with `token_all_routes`.
    Base,
    /// The opt-in routes: whenever a token is set.
    OptIn,
}

/// The default routes (`/metrics`, `/health`, `/ready`) over `obs` and `health`, for mounting in
/// an axum app; see [`router_with`] for the opt-in routes and a token. Unknown paths answer 404
/// and other methods than GET 405.
///
/// ```
/// let app = flext_obs::export::http::router(flext_obs::global().clone(), flext_obs::health::global().clone());
/// # let _ = app;
/// ```
pub fn router(obs: Observability, health: HealthRegistry) -> Router {
    router_with(obs, health, &HttpSettings::default())
}

/// The routes `settings` asks for (its [`Routes`], token and [`token_all_routes`](HttpSettings::token_all_routes)).
///
/// ```
/// use flext_obs::config::{BearerToken, HttpSettings, Routes};
/// let settings = HttpSettings { routes: Routes::ALL, token: Some(BearerToken::new("s3cr3t")?), ..HttpSettings::default() };
/// let app = flext_obs::export::http::router_with(flext_obs::global().clone(), flext_obs::health::global().clone(), &settings);
/// # let _ = app;
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn router_with(obs: Observability, health: HealthRegistry, settings: &HttpSettings) -> Router {
    let Routes { snapshot: with_snapshot, alerts: with_alerts, traces: with_traces, logs: with_logs, ui: with_ui } = settings.routes;
    let mut app = Router::new().route("/metrics", get(metrics)).route("/health", get(health_report)).route("/ready", get(ready));
    if with_snapshot {
        app = app.route("/snapshot", get(snapshot));
    }
    if with_alerts {
        app = app.route("/alerts", get(alerts));
    }
    if with_traces {
        app = app.route("/traces", get(traces));
    }
    if with_logs {
        app = app.route("/logs", get(logs));
    }
    if with_ui {
        app = app
            .route("/ui", get(|| async { ui_asset("text/html; charset=utf-8", ui::PAGE) }))
            .route("/ui/app.js", get(|| async { ui_asset("text/javascript; charset=utf-8", ui::SCRIPT) }))
            .route("/ui/app.css", get(|| async { ui_asset("text/css; charset=utf-8", ui::STYLE) }))
            .route("/ui/data", get(ui_data))
            .route("/ui/health", get(ui_health));
    }
    app.with_state(Shared {
        obs,
        health,
        token: settings.token.clone().map(Arc::new),
        token_all_routes: settings.token_all_routes,
        opt_in_renders: Arc::new(Semaphore::new(settings.render_threads.saturating_sub(1).max(1))),
        opt_in_wait: settings.write_timeout,
    })
}

impl Shared {
    /// `Some(401)` when the route needs the token and the request does not carry it.
    fn refuse(&self, guard: Guard, headers: &HeaderMap) -> Option<Response> {
        let token = self.token.as_ref()?;
        if guard == Guard::Base && !self.token_all_routes {
            return None;
        }
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
        let challenge = match given {
            Some(given) if same_token(given.as_bytes(), token.expose().as_bytes()) => return None,
            Some(_) => r#"Bearer realm="flext-obs", error="invalid_token""#,
            None => r#"Bearer realm="flext-obs""#,
        };
        Some(
            (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge))], "unauthorized\n").into_response(),
        )
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares in time that depends only on the expected token's length, not on where the given
/// one first differs.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, byte) in expected.iter().enumerate() {
        diff |= usize::from(given.get(i).copied().unwrap_or(0) ^ byte);
    }
    diff == 0
}

/// Runs an opt-in route's `render` when its turn comes (503 if it does not come in time).
async fn opt_in(shared: &Shared, render: impl FnOnce() -> String + Send + 'static) -> Response {
    match in_turn(shared, render).await {
        Ok(body) => ([(header::CONTENT_TYPE, HeaderValue::from_static(JSON))], body).into_response(),
        Err(refused) => refused,
    }
}

/// `render`'s result, run on the blocking pool when an opt-in render turn comes; the response
/// to send instead when it does not come in time (503) or the render panicked (500).
async fn in_turn<T: Send + 'static>(shared: &Shared, render: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    match tokio::time::timeout(shared.opt_in_wait, shared.opt_in_renders.acquire()).await {
        Ok(Ok(_turn)) => tokio::task::spawn_blocking(render)
            .await
            .map_err(|err| (StatusCode::INTERNAL_SERVER_ERROR, format!("rendering failed: {err}\n")).into_response()),
        _ => {
            Err((StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, HeaderValue::from_static("1"))], "busy rendering\n")
                .into_response())
        }
    }
}

/// Runs `render` on the blocking pool; a render that panicked answers 500 (the panic is the
/// runtime's to report, the endpoint goes on).
async fn off_thread(content_type: &'static str, render: impl FnOnce() -> String + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(render).await {
        Ok(body) => ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, format!("rendering failed: {err}\n")).into_response(),
    }
}

const JSON: &str = "application/json";

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|err| format!("{{\"error\":{:?}}}", err.to_string()))
}

async fn metrics(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = shared.refuse(Guard::Base, &headers) {
        return refused;
    }
    let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    off_thread(format.content_type(), move || {
        let export = shared.obs.store().export_snapshot();
        let spans = if format == Format::OpenMetrics { crate::trace::recent_spans() } else { Vec::new() };
        render_export(&export, &spans, format)
    })
    .await
}

async fn health_report(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = shared.refuse(Guard::Base, &headers) {
        return refused;
    }
    let report = shared.health.check_async().await;
    let status = StatusCode::from_u16(report.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(JSON))], json(&report)).into_response()
}

async fn ready(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = shared.refuse(Guard::Base, &headers) {
        return refused;
    }
    "ready\n".into_response()
}

/// The store's snapshot, with the recent log entries under `logs`.
async fn snapshot(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = shared.refuse(Guard::OptIn, &headers) {
        return refused;
    }
    let obs = shared.obs.clone();
    opt_in(&shared, move || {
        let mut body = serde_json::to_value(obs.snapshot()).unwrap_or_default();
        if let Some(object) = body.as_object_mut() {
            object.insert("logs".to_owned(), serde_json::to_value(crate::log::recent()).unwrap_or_default());
        }
        json(&body)
    })
    .await
}

async fn alerts(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = shared.refuse(Guard::OptIn, &headers) {
        return refused;
    }
    opt_in(&shared, || json(&crate::alert::recent())).await
}

async fn traces(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = shared.refuse(Guard::OptIn, &headers) {
        return refused;
    }
    opt_in(&shared, || {
        let traces: BTreeMap<String, Vec<crate::Span>> =
            crate::trace::traces().into_iter().map(|(id, spans)| (id.to_string(), spans)).collect();
        json(&traces)
    })
    .await
}

async fn logs(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = shared.refuse(Guard::OptIn, &headers) {
        return refused;
    }
    opt_in(&shared, || json(&crate::log::recent())).await
}

/// The page or one of its assets: static text, no data, so no token; never framed, and what it
/// may load is this origin only.
fn ui_asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(ui::CONTENT_SECURITY_POLICY)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// What the page polls: [`ui::UiData`] as JSON with an entity tag; `304` when the caller's
/// `If-None-Match` names the current one.
async fn ui_data(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = shared.refuse(Guard::OptIn, &headers) {
        return refused;
    }
    let obs = shared.obs.clone();
    let (body, tag) = match in_turn(&shared, move || ui::render(&obs)).await {
        Ok(rendered) => rendered,
        Err(refused) => return refused,
    };
    let tag_header = HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"none\""));
    let cache = (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let given = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if given.is_some_and(|given| ui::matches(given, &tag)) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag_header), cache]).into_response();
    }
    ([(header::ETAG, tag_header), cache, (header::CONTENT_TYPE, HeaderValue::from_static(JSON))], body).into_response()
}

/// The health report for the page: the same JSON as `/health`, always with 200, since the page
/// shows the status itself (a browser logs every 503 it receives as a console error).
async fn ui_health(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = shared.refuse(Guard::OptIn, &headers) {
        return refused;
    }
    let report = shared.health.check_async().await;
    ([(header::CONTENT_TYPE, HeaderValue::from_static(JSON)), (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))], json(&report))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::{bearer, same_token};

    #[test]
    fn tokens_compare_whole_and_the_scheme_is_case_insensitive() {
        assert!(same_token(b"abc", b"abc"));
        assert!(!same_token(b"abd", b"abc"));
        assert!(!same_token(b"ab", b"abc"));
        assert!(!same_token(b"abcd", b"abc"));
        assert!(!same_token(b"", b"abc"));
        assert_eq!(bearer("bearer  t0k"), Some("t0k"));
        assert_eq!(bearer("Basic dXNlcg=="), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
