//! The HTTP endpoint against misbehaving clients, on real sockets on 127.0.0.1: slowloris
//! (partial heads), idle sockets, connections past the limit, a reader that stalls on a big
//! `/metrics`, a shutdown with a half-sent request, `/health` with a blocking check, a big
//! `/snapshot` (`/health` against a hung check, counting threads, is `http_health_threads.rs`:
//! a process of its own, so other tests' threads do not count). Bounds are asserted with wide margins; the measured figures are printed
//! (`cargo test --test http_faults -- --nocapture`).

use flext_obs::config::{HttpSettings, Routes};
use flext_obs::export::http::{Server, router_with, serve_router_with, serve_with};
use flext_obs::health::{CheckOptions, HealthRegistry, Verdict};
use flext_obs::{Config, Observability};
use flext_obs_tests::http::get;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn instance() -> Observability {
    Observability::new(Config::builder().service_name("http-faults").max_series_per_metric(50_000).build().unwrap()).unwrap()
}

fn settings() -> HttpSettings {
    HttpSettings::default()
}

fn serve(obs: &Observability, health: HealthRegistry, settings: &HttpSettings) -> Server {
    serve_with("127.0.0.1:0".parse().unwrap(), obs.clone(), health, settings).unwrap()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    stream
}

/// Reads until the server closes the connection (EOF or reset); the time it took, or `None` if
/// it stayed open for `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    while started.elapsed() < within {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

/// Waits up to `within` for `done`.
fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// `n` scrapes of `/metrics`, one after another; their latencies sorted.
fn scrape_latencies(addr: SocketAddr, n: usize, expect: &str) -> Vec<Duration> {
    let mut took: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            let response = get(addr, "/metrics", &[]).unwrap();
            assert_eq!(response.status, 200);
            assert!(response.body.contains(expect));
            started.elapsed()
        })
        .collect();
    took.sort();
    took
}

#[test]
fn metrics_keep_answering_while_1000_slowloris_sockets_are_held_open() {
    let obs = instance();
    obs.store().counter("ticks_total", &[]).unwrap().increment();
    let held = HttpSettings { header_read_timeout: Duration::from_secs(60), ..settings() };
    let server = serve(&obs, HealthRegistry::builder().build().unwrap(), &held);
    let addr = server.local_addr();
    let mut slow: Vec<TcpStream> = (0..1000)
        .map(|i| {
            let mut stream = connect(addr);
            stream.write_all(if i % 2 == 0 { b"GET /metrics HTTP/1.1\r\nHost: x\r\n" } else { b"GE" }).unwrap();
            stream
        })
        .collect();
    assert!(eventually(Duration::from_secs(20), || server.stats().open >= 1000), "all held: {:?}", server.stats());
    let took = scrape_latencies(addr, 100, "ticks_total 1\n");
    let (p50, p99) = (percentile(&took, 0.5), percentile(&took, 0.99));
    println!("/metrics during 1000 slowloris sockets: p50 {p50:?}, p99 {p99:?}, max {:?}", took[took.len() - 1]);
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");
    // One more byte on each: still within the head deadline, still held, still no answer.
    for stream in &mut slow {
        stream.write_all(b"X").unwrap();
    }
    assert_eq!(server.stats().header_timeouts, 0);
    assert!(server.stats().open >= 1000);
    drop(slow);
    assert!(eventually(Duration::from_secs(20), || server.stats().open == 0), "closed: {:?}", server.stats());
}

#[test]
fn slowloris_sockets_are_closed_after_the_header_read_timeout() {
    let obs = instance();
    let short = HttpSettings { header_read_timeout: Duration::from_millis(400), ..settings() };
    let server = serve(&obs, HealthRegistry::builder().build().unwrap(), &short);
    let addr = server.local_addr();
    let started = Instant::now();
    let mut silent: Vec<TcpStream> = (0..20).map(|_| connect(addr)).collect();
    let mut partial: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(b"GET /metrics HTTP/1.1\r\nHo").unwrap();
            s
        })
        .collect();
    // A trickler: a byte every 100 ms is progress, but not a head within the deadline.
    let mut trickler = connect(addr);
    let trickling = std::thread::spawn(move || {
        for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: yes" {
            if trickler.write_all(&[*byte]).is_err() {
                return (trickler, true);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        (trickler, false)
    });
    for stream in silent.iter_mut().chain(partial.iter_mut()) {
        let closed = closed_within(stream, Duration::from_secs(10));
        assert!(closed.is_some(), "a slowloris socket stayed open");
    }
    let all_closed = started.elapsed();
    assert!(all_closed >= Duration::from_millis(300), "not before the deadline: {all_closed:?}");
    assert!(all_closed < Duration::from_millis(400) + Duration::from_secs(5), "{all_closed:?}");
    let (mut trickler, write_failed) = trickling.join().unwrap();
    assert!(write_failed || closed_within(&mut trickler, Duration::from_secs(5)).is_some(), "the trickler was closed too");
    assert!(eventually(Duration::from_secs(5), || server.stats().header_timeouts == 41), "{:?}", server.stats());
    let closed = obs.snapshot().value("flext_http_connections_closed_total", &[("reason", "header_timeout")]);
    assert_eq!(closed, Some(41.0), "counted in the store too");
    println!("40 slowloris sockets + 1 trickler, header timeout 400 ms: all closed {all_closed:?} after they connected");
    assert_eq!(get(addr, "/ready", &[]).unwrap().status, 200);
}

#[test]
fn connections_beyond_the_limit_are_closed_at_once() {
    let obs = instance();
    let limited = HttpSettings { max_connections: 10, header_read_timeout: Duration::from_secs(60), ..settings() };
    let server = serve(&obs, HealthRegistry::builder().build().unwrap(), &limited);
    let addr = server.local_addr();
    let held: Vec<TcpStream> = (0..10).map(|_| connect(addr)).collect();
    assert!(eventually(Duration::from_secs(10), || server.stats().open == 10));
    let mut extra = connect(addr);
    let closed = closed_within(&mut extra, Duration::from_secs(5));
    assert!(closed.is_some_and(|t| t < Duration::from_secs(2)), "closed at once: {closed:?}");
    assert_eq!(server.stats().refused, 1);
    assert_eq!(obs.snapshot().value("flext_http_connections_refused_total", &[]), Some(1.0));
    drop(held);
    assert!(eventually(Duration::from_secs(10), || server.stats().open == 0));
    assert_eq!(get(addr, "/metrics", &[]).unwrap().status, 200, "served again once slots are free");
}

#[test]
fn a_thousand_idle_sockets_do_not_stop_metrics_and_kept_alive_ones_close_when_idle() {
    let obs = instance();
    obs.store().counter("idle_ticks_total", &[]).unwrap().increment();
    let idle = HttpSettings { header_read_timeout: Duration::from_secs(60), idle_timeout: Duration::from_millis(300), ..settings() };
    let server = serve(&obs, HealthRegistry::builder().build().unwrap(), &idle);
    let addr = server.local_addr();
    let sockets: Vec<TcpStream> = (0..1000).map(|_| connect(addr)).collect();
    assert!(eventually(Duration::from_secs(20), || server.stats().open >= 1000), "{:?}", server.stats());
    let took = scrape_latencies(addr, 50, "idle_ticks_total 1\n");
    println!("/metrics with 1000 idle sockets: p99 {:?}", percentile(&took, 0.99));
    assert!(percentile(&took, 0.99) < Duration::from_secs(1));
    drop(sockets);

    // A kept-alive connection: answered, then closed after idle_timeout without a request.
    let mut kept = connect(addr);
    kept.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut head = [0u8; 256];
    let n = kept.read(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    let closed = closed_within(&mut kept, Duration::from_secs(10));
    assert!(closed.is_some_and(|t| t >= Duration::from_millis(200) && t < Duration::from_secs(5)), "idle close: {closed:?}");
    assert!(eventually(Duration::from_secs(5), || server.stats().idle_timeouts == 1), "{:?}", server.stats());
}

#[test]
fn a_stalled_reader_of_a_big_metrics_is_dropped_after_the_write_timeout() {
    let obs = instance();
    let padding = "p".repeat(200);
    for i in 0..25_000 {
        obs.store().counter("big_total", &[("path", &format!("/{padding}/{i}"))]).unwrap().increment();
    }
    let stalled = HttpSettings { write_timeout: Duration::from_millis(500), ..settings() };
    let server = serve(&obs, HealthRegistry::builder().build().unwrap(), &stalled);
    let addr = server.local_addr();
    // A small receive buffer, so the ~6 MB body cannot all sit in the kernel's buffers.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = runtime.block_on(socket.connect(addr)).unwrap().into_std().unwrap();
    client.set_nonblocking(false).unwrap();
    let mut client = client;
    client.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let started = Instant::now();
    assert!(eventually(Duration::from_secs(30), || server.stats().write_timeouts == 1), "{:?}", server.stats());
    let dropped_after = started.elapsed();
    println!("stalled reader of a 25k-series /metrics dropped {dropped_after:?} after its request (write timeout 500 ms)");
    assert!(eventually(Duration::from_secs(5), || server.stats().open == 0), "the connection and its body are gone");
    assert!(dropped_after < Duration::from_millis(500) + Duration::from_secs(20), "{dropped_after:?}");
    assert_eq!(obs.snapshot().value("flext_http_connections_closed_total", &[("reason", "write_timeout")]), Some(1.0));
    // What the client reads now ends early: the rest of the response was dropped.
    let mut received = Vec::new();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = client.read_to_end(&mut received);
    let whole = get(addr, "/metrics", &[]).unwrap().body.len();
    assert!(whole > 5_000_000, "{whole}");
    assert!(received.len() < whole, "the response was cut: {} of {whole} bytes", received.len());
}

#[test]
fn shutdown_returns_soon_after_its_deadline_with_a_half_sent_request_and_a_request_in_flight() {
    let obs = instance();
    let health = HealthRegistry::builder().build().unwrap();
    health
        .register("slow", CheckOptions::new().timeout(Duration::from_secs(20)), || {
            std::thread::sleep(Duration::from_secs(8));
            true
        })
        .unwrap();
    let quick = HttpSettings { shutdown_timeout: Duration::from_secs(1), header_read_timeout: Duration::from_secs(60), ..settings() };
    let server = serve(&obs, health, &quick);
    let addr = server.local_addr();
    let mut half = connect(addr);
    half.write_all(b"GET /metr").unwrap();
    let mut in_flight = connect(addr);
    in_flight.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(eventually(Duration::from_secs(10), || server.stats().open == 2));
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    server.shutdown();
    let took = started.elapsed();
    println!("shutdown with a half-sent request and a request in flight: {took:?} (deadline 1 s)");
    assert!(took < Duration::from_secs(1) + Duration::from_secs(2), "{took:?}");
    assert!(closed_within(&mut half, Duration::from_secs(2)).is_some(), "the half-sent request's connection is closed");
    assert!(closed_within(&mut in_flight, Duration::from_secs(2)).is_some(), "the request in flight is dropped");
    // Neither finished by the deadline: both dropped, and counted.
    assert_eq!(obs.snapshot().value("flext_http_connections_closed_total", &[("reason", "shutdown")]), Some(2.0));
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(), "no longer listening");

    // Dropping the server is bounded the same way.
    let server = serve(&obs, HealthRegistry::builder().build().unwrap(), &quick);
    let mut half = connect(server.local_addr());
    half.write_all(b"GET /metrics HTTP/1.1\r\nHo").unwrap();
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(3), "drop: {:?}", started.elapsed());
}

#[test]
fn metrics_and_health_stay_responsive_while_a_blocking_async_check_runs() {
    let health = HealthRegistry::builder().build().unwrap();
    health
        .register_async("blocking", CheckOptions::new().timeout(Duration::from_millis(100)), || async {
            std::thread::sleep(Duration::from_secs(3)); // blocks whatever thread polls it
            Verdict::healthy()
        })
        .unwrap();
    let obs = instance();
    obs.store().counter("beats_total", &[]).unwrap().increment();
    let server = serve(&obs, health, &settings());
    let addr = server.local_addr();
    let started = Instant::now();
    let report = get(addr, "/health", &[]).unwrap();
    let health_took = started.elapsed();
    assert_eq!(report.status, 503);
    assert!(health_took < Duration::from_secs(2), "the check's timeout holds: {health_took:?}");
    let took = scrape_latencies(addr, 20, "beats_total 1\n");
    let concurrent = std::thread::spawn(move || get(addr, "/health", &[]).unwrap().status);
    let took_during = scrape_latencies(addr, 20, "beats_total 1\n");
    assert_eq!(concurrent.join().unwrap(), 503);
    println!(
        "blocking async check (3 s, timeout 100 ms): /health {health_took:?}; /metrics max {:?} / {:?}",
        took[took.len() - 1],
        took_during[took_during.len() - 1]
    );
    assert!(took[took.len() - 1] < Duration::from_secs(1) && took_during[took_during.len() - 1] < Duration::from_secs(1));
}

#[test]
fn a_big_snapshot_does_not_block_metrics_or_ready() {
    let obs = instance();
    for i in 0..30_000 {
        obs.store().gauge("wide", &[("id", &i.to_string())]).unwrap().set(1.0).unwrap();
    }
    let all = HttpSettings { routes: Routes::ALL, ..settings() };
    let server =
        serve_router_with("127.0.0.1:0".parse().unwrap(), router_with(obs.clone(), HealthRegistry::builder().build().unwrap(), &all), &all)
            .unwrap();
    let addr = server.local_addr();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let snapshots: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut took = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && took.len() < 20 {
                    let started = Instant::now();
                    let response = get(addr, "/snapshot", &[]).unwrap();
                    assert!(response.status == 200 || response.status == 503, "{}", response.status);
                    took.push(started.elapsed());
                }
                took
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut ready = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(get(addr, "/ready", &[]).unwrap().status, 200);
        ready.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    // /metrics of the same wide store, while snapshots render.
    let started = Instant::now();
    assert!(get(addr, "/metrics", &[]).unwrap().body.contains("wide{id=\"29999\"} 1\n"));
    let metrics_took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let snapshot_took: Vec<Duration> = snapshots.into_iter().flat_map(|t| t.join().unwrap()).collect();
    ready.sort();
    println!(
        "30k-series /snapshot x3 in a loop (each {:?}..{:?}): /ready max {:?}, /metrics {metrics_took:?}",
        snapshot_took.iter().min().unwrap(),
        snapshot_took.iter().max().unwrap(),
        ready[ready.len() - 1]
    );
    assert!(ready[ready.len() - 1] < Duration::from_secs(1), "/ready stays quick: {ready:?}");
}
