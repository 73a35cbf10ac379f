//! The second process of the cross-process trace test: an HTTP service on 127.0.0.1 whose
//! monitored handlers join the caller's trace through the `traceparent` header and export
//! their spans over OTLP (`OTEL_EXPORTER_OTLP_ENDPOINT`). It prints `listening <addr>`, serves
//! until `POST /stop`, then flushes the exporter and exits. With `FLEXT_PEER_MIDDLEWARE=1` its
//! routes run under `bridge::http::HttpLayer`, and `/served/{item}` is the handler that relies
//! on it (no extraction of its own).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use flext_obs::context::{Context, FutureExt as _};
use flext_obs::flext_monitor;
use std::io::Write as _;
use std::sync::Arc;
use tokio::sync::Notify;

#[flext_monitor]
fn lookup_price(item: &str) -> Result<u32, String> {
    if item == "unknown" {
        return Err(format!("no price for {item}"));
    }
    Ok(u32::try_from(item.len()).unwrap_or(u32::MAX) * 100)
}

#[flext_monitor]
async fn price_quote(item: String) -> Result<u32, String> {
    tokio::task::yield_now().await;
    // The W3C baggage that came with the request, seen by the monitored code that serves it.
    if let Some(tenant) = flext_obs::context::current().baggage().and_then(|b| b.get("tenant").map(str::to_owned)) {
        flext_obs::trace::record("tenant", tenant).ok();
    }
    let price = lookup_price(&item)?;
    flext_obs::log::info("quote computed", &[("item", item.clone().into()), ("price", price.into())]).ok();
    Ok(price)
}

async fn quote(headers: HeaderMap, Path(item): Path<String>) -> (StatusCode, String) {
    let cx = match Context::extract_strict(&headers) {
        Ok(cx) => cx,
        Err(err) => return (StatusCode::BAD_REQUEST, err.to_string()),
    };
    match price_quote(item).with_context(cx).await {
        Ok(price) => (StatusCode::OK, price.to_string()),
        Err(err) => (StatusCode::NOT_FOUND, err),
    }
}

/// The handler of a service under the middleware: the request's context is already current.
async fn served(Path(item): Path<String>) -> (StatusCode, String) {
    match price_quote(item).await {
        Ok(price) => (StatusCode::OK, price.to_string()),
        Err(err) => (StatusCode::NOT_FOUND, err),
    }
}

async fn stop(State(done): State<Arc<Notify>>) -> StatusCode {
    done.notify_one();
    StatusCode::OK
}

fn main() {
    let obs = match flext_obs::init_from_env() {
        Ok(obs) => obs,
        Err(err) => {
            eprintln!("otlp_peer: {err}");
            std::process::exit(2);
        }
    };
    flext_obs::log::set_writer(std::io::sink());
    let exporter = match flext_obs::export::otlp::OtlpExporter::from_config(obs.config()) {
        Ok(Some(exporter)) => exporter,
        Ok(None) => {
            eprintln!("otlp_peer: OTEL_EXPORTER_OTLP_ENDPOINT is not set");
            std::process::exit(2);
        }
        Err(err) => {
            eprintln!("otlp_peer: {err}");
            std::process::exit(2);
        }
    };
    let handle = exporter.install(obs.clone()).expect("exporter starts");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let done = Arc::new(Notify::new());
        let mut app = Router::new()
            .route("/quote/{item}", get(quote))
            .route("/served/{item}", get(served))
            .route("/stop", post(stop))
            .with_state(Arc::clone(&done));
        if std::env::var("FLEXT_PEER_MIDDLEWARE").as_deref() == Ok("1") {
            app = app.layer(flext_obs::bridge::http::HttpLayer::new(obs.clone()));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        println!("listening {}", listener.local_addr().expect("address"));
        std::io::stdout().flush().ok();
        axum::serve(listener, app).with_graceful_shutdown(async move { done.notified().await }).await.expect("serves");
    });
    if let Err(err) = handle.shutdown() {
        eprintln!("otlp_peer: export failed: {err}");
        std::process::exit(1);
    }
}
