//! Bridges from the facades a service's other crates already report through into the
//! flext-obs store, so one pipeline serves everything: the `metrics` facade's recorder
//! ([`metrics`], feature `bridge-metrics`), the `log` facade's logger ([`log`], feature
//! `bridge-log`), `tracing` spans from every crate as flext-obs spans ([`tracing`], feature
//! `bridge-tracing`), and HTTP middleware for axum/hyper servers and outgoing requests ([`http`],
//! feature `bridge-http`). Each is behind its own feature, off by default.

#[cfg(feature = "bridge-http")]
pub mod http;
#[cfg(feature = "bridge-log")]
pub mod log;
#[cfg(feature = "bridge-metrics")]
pub mod metrics;
#[cfg(feature = "bridge-tracing")]
pub mod tracing;
