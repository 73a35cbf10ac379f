//! The HTTP middleware's per-request cost: one GET through an axum router in process (no
//! socket: the router called as a tower service on a current-thread runtime), bare, under
//! flext-obs's `bridge::http::HttpLayer` (context, a monitored call per request, the
//! `http.server.request.duration` histogram and the in-flight gauge) and under
//! axum-prometheus's `PrometheusMetricLayer` (its documented `pair()`: the same RED metrics
//! through metrics-exporter-prometheus), in one run.
//! Run: `cargo bench -p flext-obs-benches --features bridge --bench middleware`.

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use criterion::Criterion;
use std::hint::black_box;
use tower_service::Service as _;

fn app() -> Router {
    Router::new().route("/orders/{id}", get(|| async { "order" }))
}

fn bench(c: &mut Criterion, runtime: &tokio::runtime::Runtime, label: &str, mut router: Router) {
    c.bench_function(&format!("middleware/{label}"), |b| {
        b.iter(|| {
            let request = Request::get("/orders/42").body(Body::empty()).expect("a request");
            let response = runtime.block_on(router.call(request)).expect("a response");
            black_box(response.status())
        });
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    bench(&mut c, &runtime, "bare", app());
    let obs = flext_obs::Observability::new(flext_obs::Config::default()).expect("store");
    bench(&mut c, &runtime, "flext-obs", app().layer(flext_obs::bridge::http::HttpLayer::new(obs)));
    // Its handle spawns an upkeep task: made inside the runtime.
    let (layer, _handle) = {
        let _inside = runtime.enter();
        axum_prometheus::PrometheusMetricLayer::pair()
    };
    bench(&mut c, &runtime, "axum-prometheus", app().layer(layer));
    c.final_summary();
}
