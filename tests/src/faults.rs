//! Misbehaving peers on 127.0.0.1 for the exporter fault tests: a port nobody listens on, a
//! server that accepts connections and never answers, and one that answers every request with a
//! fixed error status (and `Retry-After`). Each stops when dropped; every wait is bounded.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// `http://127.0.0.1:<port>` where nothing listens (the port was free a moment ago).
pub fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}", crate::servers::free_port())
}

/// Accepts every connection and never reads or answers; holds the sockets until dropped.
#[derive(Debug)]
pub struct Silent {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Silent {
    /// Starts one on a free port.
    ///
    /// # Panics
    /// When no port can be bound.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (stopping, count) = (Arc::clone(&stop), Arc::clone(&accepted));
        let thread = std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        // At most 1,000 held: a test never needs more.
                        if held.len() < 1000 {
                            held.push(stream);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Silent { addr, stop, accepted, thread: Some(thread) }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers every request, whatever its path and method, with one status (and a `Retry-After`
/// when given); counts the requests.
#[derive(Debug)]
pub struct Failing {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Failing {
    /// Starts one on a free port answering `status`, with `Retry-After: <retry_after>` if set.
    ///
    /// # Panics
    /// When no port or runtime can be had, or `status` is not a status code.
    pub fn start(status: u16, retry_after: Option<u32>) -> Self {
        let status = StatusCode::from_u16(status).expect("a status code");
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let requests = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&requests);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let app = Router::new().fallback(move || {
                    count.fetch_add(1, Ordering::Relaxed);
                    async move {
                        let mut response: Response = (status, "the peer is failing on purpose").into_response();
                        if let Some(secs) = retry_after {
                            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
                        }
                        response
                    }
                });
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Failing { addr, requests, stop: Mutex::new(Some(stop)), thread: Some(thread) }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Failing {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = stop.send(());
        }
        // Not joined: a client's pooled keep-alive connection would hold the graceful shutdown;
        // the thread ends when the last connection closes.
        drop(self.thread.take());
    }
}

/// This process's resident set size in bytes (`/proc/self/statm`), or 0 where unreadable.
pub fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()))
        .unwrap_or(0);
    pages * 4096
}
