//! Handing what the store holds to the systems operators run. Prometheus exposition (text 0.0.4
//! and OpenMetrics 1.0) is a pure function of a [`Snapshot`](crate::store::Snapshot): it never
//! runs under the store's locks.

pub mod prometheus;

#[cfg(feature = "http")]
pub mod http;

#[cfg(feature = "push")]
pub mod alertmanager;
#[cfg(any(feature = "push", feature = "otlp"))]
mod client;
#[cfg(feature = "otlp")]
pub mod otlp;
#[cfg(feature = "push")]
pub mod push;

/// The exporters a [`Config`](crate::Config) asks for, running; dropping this stops them all at
/// once, each within its deadline (the pusher pushes once more, the Alertmanager sink and the
/// OTLP exporter send what is queued; what is not sent by the deadline is dropped and counted), so
/// with every peer dead the drop takes the longest deadline, not their sum.
#[cfg(all(feature = "http", feature = "push"))]
#[derive(Debug, Default)]
pub struct Exporters {
    /// The HTTP endpoint, when `FLEXT_METRICS_ADDR` is set.
    pub http: Option<http::Server>,
    /// The Pushgateway pusher, when `PROMETHEUS_PUSH_GATEWAY` is set.
    pub push: Option<push::PushHandle>,
    /// The Alertmanager sink, when `FLEXT_ALERTMANAGER_URL` is set.
    pub alertmanager: Option<alertmanager::Installed>,
    /// The OTLP exporter, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (feature `otlp`).
    #[cfg(feature = "otlp")]
    pub otlp: Option<otlp::OtlpHandle>,
}

/// Starts, for the process-wide instance, every exporter `config` names: the endpoint on
/// `FLEXT_METRICS_ADDR`, a pusher to `PROMETHEUS_PUSH_GATEWAY` (every 15 s, job = service name)
/// the sink to `FLEXT_ALERTMANAGER_URL` and (feature `otlp`) the OTLP exporter to
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
///
/// ```
/// let config = flext_obs::Config::builder().metrics_addr("127.0.0.1:0".parse().unwrap()).build()?;
/// let exporters = flext_obs::export::start_from_config(&config)?;
/// assert!(exporters.http.is_some() && exporters.push.is_none());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[cfg(all(feature = "http", feature = "push"))]
pub fn start_from_config(config: &crate::Config) -> crate::Result<Exporters> {
    let http = http::serve_from_config(config)?;
    let push =
        push::Pusher::from_config(config)?.map(|p| p.start(crate::global().clone(), std::time::Duration::from_secs(15))).transpose()?;
    let alertmanager = alertmanager::AlertmanagerSink::from_config(config)?.map(|sink| sink.install()).transpose()?;
    #[cfg(feature = "otlp")]
    let otlp = otlp::OtlpExporter::from_config(config)?.map(|e| e.install(crate::global().clone())).transpose()?;
    Ok(Exporters {
        http,
        push,
        alertmanager,
        #[cfg(feature = "otlp")]
        otlp,
    })
}

#[cfg(all(feature = "http", feature = "push"))]
impl Drop for Exporters {
    fn drop(&mut self) {
        // Each stop waits on its own peer, so they run side by side on scoped threads. When a
        // thread cannot be started, std drops the closure, and with it the exporter, right here:
        // that exporter still stops, within its own deadline, on this thread.
        let http = self.http.take();
        let push = self.push.take();
        let alertmanager = self.alertmanager.take();
        #[cfg(feature = "otlp")]
        let otlp = self.otlp.take();
        std::thread::scope(|scope| {
            let stop_beside = |stop: Box<dyn FnOnce() + Send>| {
                let _ = std::thread::Builder::new().name("flext-obs-stop".into()).spawn_scoped(scope, stop);
            };
            if let Some(push) = push {
                stop_beside(Box::new(move || drop(push)));
            }
            if let Some(alertmanager) = alertmanager {
                stop_beside(Box::new(move || drop(alertmanager)));
            }
            #[cfg(feature = "otlp")]
            if let Some(otlp) = otlp {
                stop_beside(Box::new(move || drop(otlp)));
            }
            drop(http);
        });
    }
}
