//! OTLP/gRPC (cargo feature `otlp-grpc`): the same prost-encoded export requests, sent as unary
//! calls of the collector services (`opentelemetry.proto.collector.<signal>.v1.<Signal>Service/Export`)
//! over tonic's HTTP/2 channel, on a current-thread tokio runtime owned by the export thread.
//! Headers go as metadata, `gzip` as gRPC message compression, TLS (feature `tls`) with the
//! platform's roots or the CA file, and a client pair for mutual TLS. The specification's
//! retryable codes are `CANCELLED`, `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`,
//! `UNAVAILABLE` and `DATA_LOSS` (a closed port is `UNAVAILABLE`); `RESOURCE_EXHAUSTED` only with
//! a `RetryInfo`, which is not read here, so it is final.

use super::SERVICE;
use super::transport::Attempt;
use crate::config::{OtlpCompression, OtlpTarget, Signal};
use crate::error::{Error, Result};
use bytes::{Buf as _, BufMut as _};
use std::time::Duration;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// The collector service method of each signal.
fn method(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    }
}

/// One signal's gRPC way to the collector.
#[derive(Debug)]
pub(super) struct GrpcChannel {
    runtime: tokio::runtime::Runtime,
    channel: tonic::transport::Channel,
    method: &'static str,
    headers: tonic::metadata::MetadataMap,
    gzip: bool,
}

impl GrpcChannel {
    /// A lazily connecting channel to `target` (its TLS files are read now).
    pub(super) fn open(target: &OtlpTarget, signal: Signal) -> Result<Self> {
        let invalid = |why: String| Error::invalid(SERVICE, "grpc endpoint", &target.url, why);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| invalid(e.to_string()))?;
        let endpoint = tonic::transport::Endpoint::from_shared(target.url.clone())
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(crate::export::client::CONNECT_TIMEOUT);
        let endpoint = tls(endpoint, target)?;
        let channel = {
            let _entered = runtime.enter();
            endpoint.connect_lazy()
        };
        let mut headers = tonic::metadata::MetadataMap::new();
        for (name, value) in &target.headers {
            let key = tonic::metadata::AsciiMetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
                .map_err(|e| Error::invalid(SERVICE, "headers", name, e.to_string()))?;
            let value =
                value.parse().map_err(|_| Error::invalid(SERVICE, "headers", name, "a gRPC metadata value must be visible ASCII"))?;
            headers.insert(key, value);
        }
        Ok(GrpcChannel { runtime, channel, method: method(signal), headers, gzip: target.compression == OtlpCompression::Gzip })
    }

    /// One unary call with the encoded request `body`, within `timeout`.
    pub(super) fn attempt(&self, body: &[u8], timeout: Duration) -> Attempt {
        let call = async {
            let mut grpc = tonic::client::Grpc::new(self.channel.clone());
            if self.gzip {
                grpc = grpc.send_compressed(CompressionEncoding::Gzip);
            }
            grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let mut request = tonic::Request::new(body.to_vec());
            *request.metadata_mut() = self.headers.clone();
            request.set_timeout(timeout);
            grpc.unary(request, ureq::http::uri::PathAndQuery::from_static(self.method), RawCodec).await
        };
        let answer = self.runtime.block_on(async { tokio::time::timeout(timeout, call).await });
        match answer {
            Ok(Ok(response)) => Attempt::Accepted(response.into_inner()),
            Ok(Err(status)) => {
                let retry = retryable(status.code());
                let error = Error::Transport { service: SERVICE, message: format!("gRPC {:?}: {}", status.code(), status.message()) };
                Attempt::Failed { error, retry, after: None }
            }
            Err(_) => Attempt::Failed {
                error: Error::Transport { service: SERVICE, message: format!("gRPC call timed out after {timeout:?}") },
                retry: true,
                after: None,
            },
        }
    }
}

/// The specification's retryable gRPC codes.
fn retryable(code: tonic::Code) -> bool {
    use tonic::Code as C;
    matches!(code, C::Cancelled | C::DeadlineExceeded | C::Aborted | C::OutOfRange | C::Unavailable | C::DataLoss)
}

#[cfg(feature = "tls")]
fn tls(endpoint: tonic::transport::Endpoint, target: &OtlpTarget) -> Result<tonic::transport::Endpoint> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    if !target.url.starts_with("https://") {
        return Ok(endpoint);
    }
    let read = |path: &std::path::Path| std::fs::read(path).map_err(|e| Error::invalid(SERVICE, "TLS file", path.display(), e.to_string()));
    let mut config = ClientTlsConfig::new();
    config = match &target.tls.ca_certificate {
        Some(path) => config.ca_certificate(Certificate::from_pem(read(path)?)),
        None => config.with_native_roots(),
    };
    if let (Some(cert), Some(key)) = (&target.tls.client_certificate, &target.tls.client_key) {
        config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    endpoint.tls_config(config).map_err(|e| Error::invalid(SERVICE, "TLS", &target.url, e.to_string()))
}

#[cfg(not(feature = "tls"))]
#[allow(clippy::unnecessary_wraps)] // with `tls` it can fail
fn tls(endpoint: tonic::transport::Endpoint, _target: &OtlpTarget) -> Result<tonic::transport::Endpoint> {
    Ok(endpoint)
}

/// Passes already encoded protobuf bytes through (the request is encoded once, for every
/// attempt) and hands the answer's bytes back undecoded (for its `partial_success`).
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> std::result::Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> std::result::Result<Option<Vec<u8>>, tonic::Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_specification_s_codes_are_retried() {
        use tonic::Code as C;
        for code in [C::Cancelled, C::DeadlineExceeded, C::Aborted, C::OutOfRange, C::Unavailable, C::DataLoss] {
            assert!(super::retryable(code), "{code:?}");
        }
        for code in [C::InvalidArgument, C::NotFound, C::PermissionDenied, C::Unauthenticated, C::ResourceExhausted, C::Internal] {
            assert!(!super::retryable(code), "{code:?}");
        }
    }
}
