//! Handing what the store holds to the systems operators run. Prometheus exposition (text 0.0.4
//! and OpenMetrics 1.0) is a pure function of a [`Snapshot`](crate::store::Snapshot): it never
//! runs under the store's locks.

pub mod prometheus;

#[cfg(feature = "http")]
pub mod http;

#[cfg(feature = "push")]
pub mod alertmanager;
#[cfg(feature = "push")]
mod client;
#[cfg(feature = "push")]
pub mod push;
