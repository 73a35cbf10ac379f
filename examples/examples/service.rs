//! An instrumented service: an inventory whose impl block carries `#[flext_monitor]`, with sync
//! and async methods, one that fails now and then and one that panics once. It serves
//! `/metrics`, `/health` and `/ready` on `FLEXT_METRICS_ADDR` (default 127.0.0.1:9464) and opts
//! in to `/snapshot`, `/alerts`, `/traces`, `/logs` and the live page `/ui` (what it prints at the end, also served;
//! they show error text, so a real service keeps them off or behind `FLEXT_HTTP_TOKEN`), prints a Prometheus scrape config, and keeps serving under load until Ctrl-C
//! (or for `--seconds N`), printing per-function calls, error rate and latency every few
//! seconds; at the end, the recent alerts, the health report and one trace as a tree.
//!
//! Run with `cargo run -p flext-obs-examples --example service` (add `-- --seconds N` to stop
//! after N seconds). `-- rules` prints the Prometheus rules for its objective and `-- dashboards
//! DIR` writes its Grafana dashboards, instead of running.

use flext_obs::context::{self, FutureExt};
use flext_obs::slo::{Latency, Objective, Percentile};
use flext_obs::{CorrelationId, flext_monitor};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Why a reservation failed.
#[derive(Debug)]
enum StockError {
    OutOfStock { sku: u32 },
}

impl fmt::Display for StockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StockError::OutOfStock { sku } => write!(f, "sku {sku} is out of stock"),
        }
    }
}

struct Inventory {
    stock: AtomicU32,
    audited: AtomicBool,
}

/// The service's objective: 99 % of calls succeed and 99 % take at most 10 ms. Every method
/// counts toward it, so the SLO dashboard and the generated rules have data as soon as it runs.
/// The warehouse that runs dry for every 7th SKU fails about 10 % of the calls: ten times the
/// error budget, so the generated burn-rate alerts fire too.
const INVENTORY_API: Objective = Objective::new("inventory-api").success_rate(Percentile::P99).latency(Latency::Ms10, Percentile::P99);

#[flext_monitor(objective = INVENTORY_API)]
impl Inventory {
    /// Takes an order: reserves the items, then bills them.
    fn place_order(&self, sku: u32, qty: u32) -> Result<u32, StockError> {
        let reserved = self.reserve(sku, qty)?;
        Ok(self.bill(reserved))
    }

    /// Fails for every 7th SKU, like a warehouse that runs dry now and then.
    fn reserve(&self, sku: u32, qty: u32) -> Result<u32, StockError> {
        if sku % 7 == 0 {
            return Err(StockError::OutOfStock { sku });
        }
        self.stock.fetch_sub(qty.min(self.stock.load(Ordering::Relaxed)), Ordering::Relaxed);
        Ok(qty)
    }

    fn bill(&self, qty: u32) -> u32 {
        std::hint::black_box(qty * 1999)
    }

    /// Refills stock after a (simulated) call to a supplier.
    async fn restock(&self, qty: u32) -> u32 {
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.stock.fetch_add(qty, Ordering::Relaxed) + qty
    }

    /// Panics the first time it runs: a bug that the monitor reports and lets unwind.
    #[flext_monitor(severity = "critical")]
    fn audit(&self) -> u32 {
        assert!(self.audited.swap(true, Ordering::Relaxed), "audit found a negative stock count");
        self.stock.load(Ordering::Relaxed)
    }
}

/// `--seconds N`, if given.
fn seconds_from_args() -> Option<f64> {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).find(|w| w[0] == "--seconds").and_then(|w| w[1].parse().ok())
}

fn print_table(snapshot: &flext_obs::store::Snapshot) {
    println!("{:<24} {:>10} {:>8} {:>7} {:>12} {:>12}", "FUNCTION", "CALLS", "ERROR %", "PANICS", "P50", "P99");
    for f in flext_obs::monitor::function_stats(snapshot) {
        let micros = |q: Option<f64>| q.map_or_else(|| "-".to_owned(), |s| format!("{:.1} µs", s * 1e6));
        println!(
            "{:<24} {:>10} {:>7.2}% {:>7} {:>12} {:>12}",
            f.function,
            f.calls,
            f.error_rate() * 100.0,
            f.panics,
            micros(f.p50),
            micros(f.p99)
        );
    }
}

/// Reports the audit's planned panic once, briefly; any other panic as usual. Installed before
/// flext-obs, whose panic hook then chains to it (and notes each panic's message for its alert).
fn quiet_planned_panics() {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let planned = info.payload().downcast_ref::<&str>().is_some_and(|m| m.contains("negative stock"));
        if !planned {
            default_hook(info);
        } else if !REPORTED.swap(true, Ordering::Relaxed) {
            eprintln!("(expected, reported once) {info}");
        }
    }));
}

/// Serves the endpoint with the opt-in routes (unless `FLEXT_HTTP_ROUTES` says which) and the
/// other `FLEXT_HTTP_*` settings (timeouts, limits, token) as the environment gives them; also
/// returns the opt-in paths served.
fn serve_endpoint(
    obs: &flext_obs::Observability,
    health: &flext_obs::health::HealthRegistry,
    addr: std::net::SocketAddr,
) -> Result<(flext_obs::export::http::Server, String), flext_obs::Error> {
    let mut http = obs.config().http().clone();
    if std::env::var_os("FLEXT_HTTP_ROUTES").is_none() {
        http.routes = flext_obs::config::Routes::ALL;
    }
    let r = http.routes;
    let opted: Vec<&str> = [(r.snapshot, "/snapshot"), (r.alerts, "/alerts"), (r.traces, "/traces"), (r.logs, "/logs"), (r.ui, "/ui")]
        .into_iter()
        .filter_map(|(on, path)| on.then_some(path))
        .collect();
    let server = flext_obs::export::http::serve_with(addr, obs.clone(), health.clone(), &http)?;
    Ok((server, opted.join(" ")))
}

fn main() -> Result<(), flext_obs::Error> {
    // `-- rules` prints the Prometheus rules for the service's objectives; `-- dashboards DIR`
    // writes its Grafana dashboards (see scripts/monitoring-stack.sh).
    if let Some(generated) = flext_obs::slo::cli(std::env::args().skip(1), &[INVENTORY_API]) {
        print!("{}", generated?);
        return Ok(());
    }
    quiet_planned_panics();
    let obs = flext_obs::init_from_env()?;
    flext_obs::set_build_info!()?; // build_info{version, commit} for the Autometrics dashboards
    let health = flext_obs::health::global(); // starts sampling the system in the background
    let addr = obs.config().metrics_addr().unwrap_or_else(|| "127.0.0.1:9464".parse().expect("a valid address"));
    let (server, opted) = serve_endpoint(obs, health, addr)?;
    let listen = server.local_addr();
    println!("flext-obs service example: serving http://{listen}/metrics (also /health /ready; opted in: {opted})");
    if opted.split(' ').any(|path| path == "/ui") {
        println!("live page: open http://{listen}/ui in a browser");
    }
    println!(
        "Prometheus scrape config:\n  scrape_configs:\n    - job_name: flext-service\n      static_configs:\n        - targets: ['{listen}']\n"
    );
    let seconds = seconds_from_args();
    match seconds {
        Some(s) => println!("driving the inventory for {s} s ...\n"),
        None => println!("driving the inventory until Ctrl-C ...\n"),
    }
    let inventory = std::sync::Arc::new(Inventory { stock: AtomicU32::new(1_000_000), audited: AtomicBool::new(false) });

    // The panicking audit: recorded, alerted, and still unwinding to here.
    let audit = std::panic::catch_unwind(|| inventory.audit());
    println!("first audit panicked as planned: {}", audit.is_err());
    println!("second audit counted {} items\n", inventory.audit());

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().expect("tokio runtime");
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs_f64(s));
    let running = move || deadline.is_none_or(|d| Instant::now() < d);
    let restocker = {
        let inventory = inventory.clone();
        runtime.spawn(
            async move {
                let mut restocks = 0u32;
                while running() {
                    inventory.restock(100).await;
                    restocks += 1;
                }
                restocks
            }
            .with_current_context(),
        )
    };
    let workers: Vec<_> = (0..2u32)
        .map(|worker| {
            let inventory = inventory.clone();
            std::thread::spawn(move || {
                let mut orders = 0u32;
                while running() {
                    // Each order is one request: its own correlation ID and trace.
                    context::with_correlation_id(CorrelationId::new(), || {
                        let _ = inventory.place_order(orders * 2 + worker, 1 + orders % 3);
                    });
                    orders += 1;
                }
                orders
            })
        })
        .collect();
    let mut last_table = Instant::now();
    while running() {
        std::thread::sleep(Duration::from_millis(100));
        if last_table.elapsed() >= Duration::from_secs(3) {
            // The audit bug strikes again every few seconds, so the panic shows in error rates.
            inventory.audited.store(false, Ordering::Relaxed);
            let _ = std::panic::catch_unwind(|| inventory.audit());
            print_table(&obs.snapshot());
            println!();
            last_table = Instant::now();
        }
    }
    let orders: u32 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    let restocks = runtime.block_on(restocker).expect("restocker");
    println!("placed {orders} orders and {restocks} restocks\n");

    print_table(&obs.snapshot());

    println!("\nrecent alerts:");
    for alert in flext_obs::alert::recent() {
        println!("  [{}] {} - {} (x{})", alert.severity(), alert.title(), alert.message(), alert.count());
    }

    let _ = health.register("inventory", flext_obs::health::CheckOptions::new().critical(), {
        let inventory = inventory.clone();
        move || inventory.stock.load(Ordering::Relaxed) > 0
    });
    let report = health.check();
    println!("\nhealth: {} (HTTP {})", report.status, report.http_status());
    for component in &report.components {
        println!("  {:<22} {:<10} {}", component.component(), component.status().as_str(), component.message());
    }

    let traces = flext_obs::trace::traces();
    if let Some(spans) =
        traces.values().filter(|spans| spans.iter().any(|s| s.name() == "Inventory::place_order")).find(|spans| spans.len() >= 3)
    {
        println!("\none trace ({}):", spans[0].trace_id());
        println!("{}", flext_obs::trace::format_tree(spans));
    }
    server.shutdown();
    Ok(())
}
