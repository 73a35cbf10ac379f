//! One signal's way to the collector: its URL, agent (TLS files read once), headers, protocol
//! (protobuf or the specification's JSON mapping) and compression; one attempt of a request,
//! classified for the retry policy; and the `partial_success` of a 2xx answer.

use super::SERVICE;
use super::retry;
use crate::config::{OtlpCompression, OtlpProtocol, OtlpTarget};
use crate::error::{Error, Result};
use crate::export::client;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use std::io::Write as _;
use std::time::Duration;

/// The most of an answer's body read (a `partial_success` or an error message is far smaller).
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// How one attempt ended.
pub(super) enum Attempt {
    /// A 2xx answer, with its body (at most 64 KiB).
    Accepted(Vec<u8>),
    /// A failure; `retry` when the policy allows another attempt, `after` the server's
    /// `Retry-After`.
    Failed { error: Error, retry: bool, after: Option<Duration> },
}

/// Where one signal's requests go.
#[derive(Debug)]
pub(super) struct Channel {
    target: OtlpTarget,
    wire: Wire,
}

/// OTLP/HTTP through ureq, or OTLP/gRPC through tonic.
#[derive(Debug)]
enum Wire {
    Http(ureq::Agent),
    #[cfg(feature = "otlp-grpc")]
    Grpc(Box<super::grpc::GrpcChannel>),
}

impl Channel {
    /// The channel to `target` for `signal`; its TLS files are read now.
    pub(super) fn open(target: OtlpTarget, signal: crate::config::Signal) -> Result<Self> {
        let wire = match target.protocol {
            OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => Wire::Http(client::agent_for(SERVICE, &target.tls)?),
            #[cfg(feature = "otlp-grpc")]
            OtlpProtocol::Grpc => Wire::Grpc(Box::new(super::grpc::GrpcChannel::open(&target, signal)?)),
            #[cfg(not(feature = "otlp-grpc"))]
            OtlpProtocol::Grpc => {
                let _ = signal;
                return Err(Error::invalid(SERVICE, "protocol", "grpc", crate::config::GRPC_MISSING));
            }
        };
        Ok(Channel { target, wire })
    }

    /// The longest one attempt may take.
    pub(super) fn request_timeout(&self) -> Duration {
        self.target.timeout
    }

    /// `message` in the channel's protocol, compressed as asked.
    pub(super) fn body<M: prost::Message + serde::Serialize>(&self, message: &M) -> Result<Vec<u8>> {
        let raw = match self.target.protocol {
            OtlpProtocol::HttpJson => serde_json::to_vec(message)
                .map_err(|e| Error::Transport { service: SERVICE, message: format!("the request could not be encoded as JSON: {e}") })?,
            OtlpProtocol::HttpProtobuf | OtlpProtocol::Grpc => message.encode_to_vec(),
        };
        // gRPC compresses each message itself (grpc-encoding), not the body.
        if self.target.protocol == OtlpProtocol::Grpc {
            return Ok(raw);
        }
        match self.target.compression {
            OtlpCompression::None => Ok(raw),
            OtlpCompression::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(raw.len() / 4), flate2::Compression::default());
                encoder
                    .write_all(&raw)
                    .and_then(|()| encoder.finish())
                    .map_err(|e| Error::Transport { service: SERVICE, message: format!("the request could not be compressed: {e}") })
            }
        }
    }

    /// Sends `body` once, within `timeout`.
    pub(super) fn attempt(&self, body: &[u8], timeout: Duration) -> Attempt {
        match &self.wire {
            Wire::Http(agent) => self.attempt_http(agent, body, timeout),
            #[cfg(feature = "otlp-grpc")]
            Wire::Grpc(grpc) => grpc.attempt(body, timeout),
        }
    }

    fn attempt_http(&self, agent: &ureq::Agent, body: &[u8], timeout: Duration) -> Attempt {
        let content_type = match self.target.protocol {
            OtlpProtocol::HttpJson => "application/json",
            OtlpProtocol::HttpProtobuf | OtlpProtocol::Grpc => "application/x-protobuf",
        };
        let mut request = agent.post(&self.target.url);
        for (name, value) in &self.target.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request = request.header("Content-Type", content_type);
        if self.target.compression == OtlpCompression::Gzip {
            request = request.header("Content-Encoding", "gzip");
        }
        let mut response = match client::with_timeout(request, timeout).send(body) {
            Ok(response) => response,
            Err(err) => {
                let retry = network_error(&err);
                return Attempt::Failed { error: Error::Transport { service: SERVICE, message: err.to_string() }, retry, after: None };
            }
        };
        let status = response.status().as_u16();
        let after =
            response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| retry::retry_after(v, chrono::Utc::now()));
        let text = response.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_vec().unwrap_or_default();
        if (200..300).contains(&status) {
            return Attempt::Accepted(text);
        }
        let message = String::from_utf8_lossy(&text).trim().to_owned();
        Attempt::Failed { error: Error::Remote { service: SERVICE, status, message }, retry: retry::retryable_status(status), after }
    }

    /// The items a 2xx answer says were rejected (`partial_success`), with the collector's
    /// message; `(0, "")` when it says nothing (an empty or undecodable body).
    pub(super) fn rejected<R: Rejected>(&self, answer: &[u8]) -> (u64, String) {
        if answer.is_empty() {
            return (0, String::new());
        }
        let decoded: Option<R> = match self.target.protocol {
            OtlpProtocol::HttpJson => serde_json::from_slice(answer).ok(),
            OtlpProtocol::HttpProtobuf | OtlpProtocol::Grpc => R::decode(answer).ok(),
        };
        decoded.map_or((0, String::new()), |r| r.rejected())
    }
}

/// Whether `err` is a network error, which the specification retries; a certificate the
/// client does not trust, or a request that cannot be built, fails the same way next time.
/// (rustls reports a refused handshake, such as an unknown issuer, as `InvalidData` I/O.)
fn network_error(err: &ureq::Error) -> bool {
    match err {
        ureq::Error::Tls(_) | ureq::Error::BadUri(_) | ureq::Error::Http(_) => false,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => false,
        #[cfg(feature = "tls")]
        ureq::Error::Rustls(_) => false,
        _ => true,
    }
}

/// An export answer with a `partial_success`.
pub(super) trait Rejected: prost::Message + Default + serde::de::DeserializeOwned {
    /// The rejected count (never negative) and the message.
    fn rejected(&self) -> (u64, String);
}

impl Rejected for ExportTraceServiceResponse {
    fn rejected(&self) -> (u64, String) {
        self.partial_success.as_ref().map_or((0, String::new()), |p| (p.rejected_spans.max(0).unsigned_abs(), p.error_message.clone()))
    }
}

impl Rejected for ExportMetricsServiceResponse {
    fn rejected(&self) -> (u64, String) {
        self.partial_success
            .as_ref()
            .map_or((0, String::new()), |p| (p.rejected_data_points.max(0).unsigned_abs(), p.error_message.clone()))
    }
}

impl Rejected for ExportLogsServiceResponse {
    fn rejected(&self) -> (u64, String) {
        self.partial_success
            .as_ref()
            .map_or((0, String::new()), |p| (p.rejected_log_records.max(0).unsigned_abs(), p.error_message.clone()))
    }
}
