//! A TLS peer on 127.0.0.1 for the exporters' `https://` tests: a certificate authority made by
//! rcgen in the test (never a file from the host), a server certificate it signs for
//! `127.0.0.1`, a client pair for mutual TLS, and a rustls server that answers each HTTP/1.1
//! request with `200` (an empty OTLP answer) and counts what it decoded. Every socket has read
//! and write timeouts; the peer stops when dropped.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A test CA with a server and a client certificate, written as PEM files to a fresh
/// directory.
#[derive(Debug)]
pub struct Pki {
    /// The directory holding the files.
    pub dir: PathBuf,
    /// The CA certificate (what `OTEL_EXPORTER_OTLP_CERTIFICATE` names).
    pub ca: PathBuf,
    /// The client certificate, signed by the CA.
    pub client_cert: PathBuf,
    /// The client's private key.
    pub client_key: PathBuf,
    /// A second CA's certificate, which signed nothing here.
    pub other_ca: PathBuf,
    /// The server certificate and key as PEM (for servers that take PEM, such as tonic's).
    pub server_pem: (String, String),
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

impl Pki {
    /// Makes the CA and the certificates.
    ///
    /// # Panics
    /// When a key or certificate cannot be made or written.
    pub fn generate(tag: &str) -> Self {
        let dir = crate::servers::temp_dir(tag);
        let ca_key = KeyPair::generate().expect("CA key");
        let authority = ca_params("flext-obs test CA");
        let ca_cert = authority.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::from_params(&authority, &ca_key);

        let server_key = KeyPair::generate().expect("server key");
        let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("server parameters");
        server.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &issuer).expect("server certificate");

        let client_key = KeyPair::generate().expect("client key");
        let mut client = CertificateParams::new(Vec::<String>::new()).expect("client parameters");
        client.distinguished_name.push(DnType::CommonName, "flext-obs exporter");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &issuer).expect("client certificate");

        let other_key = KeyPair::generate().expect("other CA key");
        let other_ca = ca_params("another CA").self_signed(&other_key).expect("other CA certificate");

        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("PEM file written");
            path
        };
        Pki {
            ca: write("ca.pem", ca_cert.pem()),
            client_cert: write("client.pem", client_cert.pem()),
            client_key: write("client.key", client_key.serialize_pem()),
            other_ca: write("other-ca.pem", other_ca.pem()),
            dir,
            server_pem: (server_cert.pem(), server_key.serialize_pem()),
            ca_der: ca_cert.der().clone(),
            server_chain: vec![server_cert.der().clone()],
            server_key: server_key.serialize_der(),
        }
    }
}

/// What the peer saw.
#[derive(Debug, Default)]
struct Seen {
    /// Requests answered 200.
    requests: AtomicUsize,
    /// Spans decoded from trace requests.
    spans: AtomicUsize,
    /// Connections whose handshake or request failed.
    failed: AtomicUsize,
    /// The request heads (request line and headers), in order.
    heads: Mutex<Vec<String>>,
}

/// A rustls HTTP/1.1 server on 127.0.0.1.
#[derive(Debug)]
pub struct TlsPeer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Seen>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsPeer {
    /// Starts one with `pki`'s server certificate; with `client_auth`, only clients presenting a
    /// certificate signed by `pki`'s CA get through the handshake.
    ///
    /// # Panics
    /// When no port can be bound or the TLS configuration is refused.
    pub fn start(pki: &Pki, client_auth: bool) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            rustls::ServerConfig::builder_with_provider(Arc::clone(&provider)).with_safe_default_protocol_versions().expect("TLS versions");
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(pki.ca_der.clone()).expect("CA as a root");
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key.clone()));
        let config = Arc::new(builder.with_single_cert(pki.server_chain.clone(), key).expect("server certificate"));

        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Seen::default());
        let (stopping, counts) = (Arc::clone(&stop), Arc::clone(&seen));
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if serve(&config, stream, &counts).is_err() {
                            counts.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TlsPeer { addr, stop, seen, thread: Some(thread) }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Requests answered 200.
    pub fn requests(&self) -> usize {
        self.seen.requests.load(Ordering::Relaxed)
    }

    /// Spans decoded.
    pub fn spans(&self) -> usize {
        self.seen.spans.load(Ordering::Relaxed)
    }

    /// Connections that failed (handshake refused, request unreadable).
    pub fn failed(&self) -> usize {
        self.seen.failed.load(Ordering::Relaxed)
    }

    /// The request heads (request line and headers) answered, in order.
    pub fn heads(&self) -> Vec<String> {
        self.seen.heads.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for TlsPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One connection: the handshake, one request (head, then `Content-Length` bytes of body, at
/// most 16 MiB), a `200` answer, and close.
fn serve(config: &Arc<rustls::ServerConfig>, stream: TcpStream, seen: &Seen) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    stream.set_write_timeout(Some(Duration::from_secs(3)))?;
    let connection = rustls::ServerConnection::new(Arc::clone(config)).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(connection, stream);
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > 64 * 1024 {
            return Err(std::io::Error::other("request head too long"));
        }
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the request head ended"));
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(16 << 20);
    while buffer.len() < head_end + length {
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the body ended"));
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = &buffer[head_end..head_end + length];
    if path.ends_with("/v1/traces") {
        let request = ExportTraceServiceRequest::decode(body).map_err(std::io::Error::other)?;
        let spans: usize = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
        seen.spans.fetch_add(spans, Ordering::Relaxed);
    }
    seen.heads.lock().unwrap_or_else(PoisonError::into_inner).push(head);
    tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    tls.flush()?;
    seen.requests.fetch_add(1, Ordering::Relaxed);
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}
