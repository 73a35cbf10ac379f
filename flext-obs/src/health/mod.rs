//! Health checks: system resources, user checks, aggregation, history and alerts.
//!
//! A [`HealthRegistry`] holds named checks. System checks read cached `sysinfo` samples
//! ([`SystemReadings`]); user checks are closures or futures run on the registry's bounded pool
//! of threads ([`HealthRegistryBuilder::check_threads`]) with a timeout of at most
//! [`MAX_CHECK_TIMEOUT`], so a check that hangs or panics is reported `unhealthy` with that
//! reason and never blocks or crashes the caller. A check still running from an earlier call is
//! not started again: the new caller waits for that run (up to its own timeout), so a hung check
//! holds one thread however often `/health` is asked for. Each run yields a [`HealthReport`]: one
//! [`HealthCheck`] per component plus the aggregated status ([`aggregate`]).
//!
//! ```
//! use flext_obs::health::{CheckOptions, HealthRegistry, Verdict};
//! use flext_obs::HealthStatus;
//! use std::time::Duration;
//!
//! let health = HealthRegistry::builder().build()?;
//! health.register("database", CheckOptions::new().critical(), || Ok::<(), String>(()))?;
//! health.register("cache", CheckOptions::new().timeout(Duration::from_millis(50)), || {
//!     Verdict::degraded("hit rate 40 %").with_detail("hit_rate", 0.4)
//! })?;
//! let report = health.check();
//! assert_eq!(report.status, HealthStatus::Degraded);
//! assert_eq!(report.http_status(), 200);
//! # Ok::<(), flext_obs::Error>(())
//! ```

mod pool;
mod run;
mod system;
mod timer;
mod verdict;

pub use system::{DiskReading, SYSTEM_GAUGES, SystemReadings, SystemThresholds, Thresholds};
pub use verdict::{CheckOptions, HealthReport, STATUS_GAUGE, Verdict, aggregate, status_code};

use crate::entity::{Alert, HealthCheck, HealthStatus, Severity, validate};
use crate::error::{Error, Result};
use crate::store::Store;
use run::{Ran, Run};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use verdict::entity;

/// The longest timeout a check may have: a timeout is how long a caller (a `/health` request)
/// may wait, and longer ones are refused at registration rather than clamped.
pub const MAX_CHECK_TIMEOUT: Duration = Duration::from_secs(300);

/// Threads a registry runs checks on by default (see [`HealthRegistryBuilder::check_threads`]).
pub const DEFAULT_CHECK_THREADS: usize = 4;

type SyncCheck = Arc<dyn Fn() -> Verdict + Send + Sync>;
/// A check run in progress, with how long it took when done.
type TimedRun = Pin<Box<dyn Future<Output = (Ran<Verdict>, Duration)> + Send>>;
type AsyncCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Verdict> + Send>> + Send + Sync>;

enum CheckFn {
    Sync(SyncCheck),
    Async(AsyncCheck),
}

struct Registered {
    name: String,
    options: CheckOptions,
    check: CheckFn,
    /// The run in progress or last finished, so a check is never run twice at once.
    running: Mutex<Option<Arc<Run<Verdict>>>>,
}

/// Per-component memory: recent results, the current unhealthy streak and its alert.
#[derive(Default)]
struct Component {
    history: VecDeque<HealthCheck>,
    unhealthy_streak: u32,
    alert: Option<uuid::Uuid>,
}

struct Inner {
    checks: RwLock<Vec<Arc<Registered>>>,
    components: Mutex<HashMap<String, Component>>,
    history_len: usize,
    alert_after: u32,
    system: Option<(system::Sampler, SystemThresholds)>,
    store: Option<Store>,
    pool: pool::Pool,
}

/// Named health checks and what they said lately. Cloning shares it.
#[derive(Clone)]
pub struct HealthRegistry {
    inner: Arc<Inner>,
}

impl fmt::Debug for HealthRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.inner.checks.read().unwrap_or_else(PoisonError::into_inner).iter().map(|c| c.name.clone()).collect();
        f.debug_struct("HealthRegistry")
            .field("checks", &names)
            .field("system", &self.inner.system.is_some())
            .field("check_threads", &self.inner.pool.workers())
            .finish_non_exhaustive()
    }
}

/// Builder for [`HealthRegistry`].
#[derive(Debug, Clone)]
#[must_use]
pub struct HealthRegistryBuilder {
    store: Option<Store>,
    system: Option<(SystemThresholds, Duration)>,
    history_len: usize,
    alert_after: u32,
    check_threads: usize,
}

impl HealthRegistryBuilder {
    /// Threads that run the user checks, at most (default [`DEFAULT_CHECK_THREADS`], 1 to 64):
    /// started when checks run, ended after 10 s idle. Checks that hang hold one each until they
    /// end; when all are held, the other checks wait in the queue and time out.
    ///
    /// ```
    /// let health = flext_obs::health::HealthRegistry::builder().check_threads(2).build()?;
    /// assert!(flext_obs::health::HealthRegistry::builder().check_threads(0).build().is_err());
    /// # let _ = health;
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn check_threads(mut self, threads: usize) -> Self {
        self.check_threads = threads;
        self
    }
    /// Mirrors statuses (and system readings) into gauges of `store`.
    pub fn store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }
    /// Adds the system checks (CPU, memory, disks, process), sampled every `interval` (at least
    /// 200 ms) on a background thread.
    pub fn system_checks(mut self, thresholds: SystemThresholds, interval: Duration) -> Self {
        self.system = Some((thresholds, interval));
        self
    }
    /// Results kept per component (default 20).
    pub fn history(mut self, results: usize) -> Self {
        self.history_len = results;
        self
    }
    /// Unhealthy results in a row that raise an alert (default 3).
    pub fn alert_after(mut self, results: u32) -> Self {
        self.alert_after = results;
        self
    }
    /// Starts the registry (and the system sampler, if asked for).
    pub fn build(self) -> Result<HealthRegistry> {
        if self.alert_after == 0 {
            return Err(Error::invalid("HealthRegistry", "alert_after", 0, "must be at least 1"));
        }
        if !(1..=64).contains(&self.check_threads) {
            return Err(Error::invalid("HealthRegistry", "check_threads", self.check_threads, "must be from 1 to 64"));
        }
        let system = match self.system {
            Some((thresholds, interval)) => Some((system::Sampler::start(interval, self.store.clone())?, thresholds)),
            None => None,
        };
        Ok(HealthRegistry {
            inner: Arc::new(Inner {
                checks: RwLock::new(Vec::new()),
                components: Mutex::new(HashMap::new()),
                history_len: self.history_len.max(1),
                alert_after: self.alert_after,
                system,
                store: self.store,
                pool: pool::Pool::new(self.check_threads),
            }),
        })
    }
}

impl HealthRegistry {
    /// No checks, no system sampler, no metrics; history 20; alerts after 3 failures.
    pub fn builder() -> HealthRegistryBuilder {
        HealthRegistryBuilder { store: None, system: None, history_len: 20, alert_after: 3, check_threads: DEFAULT_CHECK_THREADS }
    }

    fn add(&self, name: &str, options: CheckOptions, check: CheckFn) -> Result<()> {
        validate::text("HealthCheck", "component", name)?;
        if options.timeout.is_zero() {
            return Err(Error::invalid("CheckOptions", "timeout", options.timeout, "must be greater than zero"));
        }
        if options.timeout > MAX_CHECK_TIMEOUT {
            return Err(Error::invalid(
                "CheckOptions",
                "timeout",
                options.timeout,
                format!("must be at most {MAX_CHECK_TIMEOUT:?} (a caller waits that long)"),
            ));
        }
        let mut checks = self.inner.checks.write().unwrap_or_else(PoisonError::into_inner);
        if checks.iter().any(|c| c.name == name) || name.starts_with("system.") || name == "process" {
            return Err(Error::invalid("HealthCheck", "component", name, "is already registered (or reserved for the system checks)"));
        }
        checks.push(Arc::new(Registered { name: name.to_owned(), options, check, running: Mutex::new(None) }));
        Ok(())
    }

    /// Registers a synchronous check.
    pub fn register<V: Into<Verdict>>(
        &self,
        name: &str,
        options: CheckOptions,
        check: impl Fn() -> V + Send + Sync + 'static,
    ) -> Result<()> {
        self.add(name, options, CheckFn::Sync(Arc::new(move || check().into())))
    }

    /// Registers an asynchronous check.
    ///
    /// ```
    /// use flext_obs::health::{CheckOptions, HealthRegistry};
    /// let health = HealthRegistry::builder().build()?;
    /// health.register_async("queue", CheckOptions::new(), || async { Ok::<(), String>(()) })?;
    /// assert_eq!(health.check().status, flext_obs::HealthStatus::Healthy);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn register_async<V, F>(&self, name: &str, options: CheckOptions, check: impl Fn() -> F + Send + Sync + 'static) -> Result<()>
    where
        V: Into<Verdict>,
        F: Future<Output = V> + Send + 'static,
    {
        let check: AsyncCheck = Arc::new(move || {
            let future = check();
            Box::pin(async move { future.await.into() })
        });
        self.add(name, options, CheckFn::Async(check))
    }

    /// Removes a check; returns whether it was there.
    pub fn unregister(&self, name: &str) -> bool {
        let mut checks = self.inner.checks.write().unwrap_or_else(PoisonError::into_inner);
        let before = checks.len();
        checks.retain(|c| c.name != name);
        checks.len() != before
    }

    /// Runs every check now, all at once, each within its timeout (a check still running from an
    /// earlier call is waited for, not started again). Async checks run on the pool too: with
    /// the `http` feature under a tokio runtime of the pool thread (tokio timers and I/O work),
    /// without it under a plain executor (they must not need a runtime).
    pub fn check(&self) -> HealthReport {
        let (started, now) = (Instant::now(), chrono::Utc::now());
        let checks = self.registered();
        let runs: Vec<_> = checks.iter().map(|c| self.start(c)).collect();
        let results = checks
            .iter()
            .zip(runs)
            .map(|(c, (run, joined))| {
                let timeout = c.options.timeout;
                (c.clone(), run.wait(started + timeout, timeout, joined), started.elapsed())
            })
            .collect();
        self.finish(now, started, results)
    }

    /// Runs every check now, all at once, each within its timeout, waiting without blocking the
    /// calling task: the checks run on the registry's pool (as for [`check`](Self::check)), so
    /// one that blocks its thread cannot stall the caller's runtime.
    pub async fn check_async(&self) -> HealthReport {
        let (started, now) = (Instant::now(), chrono::Utc::now());
        let checks = self.registered();
        let mut pending: Vec<TimedRun> = Vec::new();
        for c in &checks {
            let (run, joined) = self.start(c);
            let timeout = c.options.timeout;
            let waiting = run.wait_async(started + timeout, timeout, joined);
            pending.push(Box::pin(async move { (waiting.await, started.elapsed()) }));
        }
        let mut done: Vec<Option<(Ran<Verdict>, Duration)>> = pending.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut all = true;
            for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
                if slot.is_none() {
                    match future.as_mut().poll(cx) {
                        std::task::Poll::Ready(value) => *slot = Some(value),
                        std::task::Poll::Pending => all = false,
                    }
                }
            }
            if all { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
        })
        .await;
        let results = checks.iter().zip(done).filter_map(|(c, d)| d.map(|(ran, took)| (c.clone(), ran, took))).collect();
        self.finish(now, started, results)
    }

    /// The run of `check` to wait for: the one in progress (`true`: joined), else a new one on
    /// the pool.
    fn start(&self, check: &Arc<Registered>) -> (Arc<Run<Verdict>>, bool) {
        let mut running = check.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(run) = running.as_ref().filter(|run| !run.is_finished()) {
            return (run.clone(), true);
        }
        let run = Run::new();
        *running = Some(run.clone());
        drop(running);
        let (job_check, job_run) = (check.clone(), run.clone());
        let submitted = self.inner.pool.submit(move || {
            let ran = match &job_check.check {
                CheckFn::Sync(f) => run::run_sync(|| f()),
                CheckFn::Async(f) => run::run_async(f.as_ref(), job_check.options.timeout),
            };
            job_run.finish(ran);
        });
        if let Err(why) = submitted {
            run.finish(Ran::NotStarted(why));
        }
        (run, false)
    }

    /// The most recent results of `component`, oldest first.
    pub fn history(&self, component: &str) -> Vec<HealthCheck> {
        self.inner
            .components
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(component)
            .map(|c| c.history.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The latest system readings, when system checks are on.
    pub fn system_readings(&self) -> Option<SystemReadings> {
        self.inner.system.as_ref().map(|(sampler, _)| sampler.latest())
    }

    fn registered(&self) -> Vec<Arc<Registered>> {
        self.inner.checks.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn finish(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        started: Instant,
        results: Vec<(Arc<Registered>, Ran<Verdict>, Duration)>,
    ) -> HealthReport {
        let mut components: Vec<(HealthCheck, bool)> = self.system_components(now);
        for (check, ran, took) in results {
            let verdict = match ran {
                Ran::Done(verdict) => verdict,
                Ran::Panicked(message) => Verdict::unhealthy(format!("the check panicked: {message}")),
                Ran::TimedOut { after, since: None } => Verdict::unhealthy(format!("the check timed out after {after:?}")),
                Ran::TimedOut { after, since: Some(since) } => Verdict::unhealthy(format!(
                    "the check timed out after {after:?} (its run started {:.1}s ago is still going)",
                    since.as_secs_f64()
                )),
                Ran::NotStarted(why) => Verdict::unhealthy(format!("the check could not start: {why}")),
            };
            components.push((entity(&check.name, verdict, now, took), check.options.critical));
        }
        let status = aggregate(components.iter().map(|(c, critical)| (c.status(), *critical)));
        for (component, critical) in &components {
            self.remember(component, *critical);
        }
        HealthReport {
            status,
            checked_at: now,
            duration_seconds: started.elapsed().as_secs_f64(),
            components: components.into_iter().map(|(c, _)| c).collect(),
        }
    }

    /// The system components, from the cached readings (no measurement here).
    fn system_components(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<(HealthCheck, bool)> {
        let Some((sampler, t)) = &self.inner.system else { return Vec::new() };
        let r = sampler.latest();
        if r.sampled_at.is_none() {
            return vec![(entity("system", Verdict::unknown("no system sample yet"), now, Duration::ZERO), false)];
        }
        let mut out = Vec::new();
        let cpu = match r.cpu_usage {
            Some(usage) => Verdict::with(t.cpu.status(usage), format!("CPU {:.1} % busy", usage * 100.0)).with_detail("usage_ratio", usage),
            None => Verdict::unknown("CPU use needs a second sample"),
        };
        out.push(cpu.into_entry("system.cpu", now));
        let memory = r.memory_ratio();
        out.push(
            Verdict::with(t.memory.status(memory), format!("memory {:.1} % used", memory * 100.0))
                .with_detail("used_bytes", r.memory_used_bytes)
                .with_detail("total_bytes", r.memory_total_bytes)
                .into_entry("system.memory", now),
        );
        for disk in &r.disks {
            let used = disk.used_ratio();
            out.push(
                Verdict::with(t.disk.status(used), format!("{} {:.1} % used", disk.mount_point, used * 100.0))
                    .with_detail("mount_point", disk.mount_point.as_str())
                    .with_detail("total_bytes", disk.total_bytes)
                    .with_detail("available_bytes", disk.available_bytes)
                    .into_entry(&format!("system.disk:{}", disk.mount_point), now),
            );
        }
        #[allow(clippy::cast_precision_loss)]
        let threads = r.process_threads as f64;
        out.push(
            Verdict::with(t.threads.status(threads), format!("{} threads, {} bytes resident", r.process_threads, r.process_resident_bytes))
                .with_detail("threads", r.process_threads)
                .with_detail("resident_bytes", r.process_resident_bytes)
                .into_entry("process", now),
        );
        out.into_iter().map(|c| (c, false)).collect()
    }

    /// Keeps `check` in its component's history, raises an alert on the unhealthy streak that
    /// reaches the limit and resolves it on recovery, and mirrors the status into the gauge.
    fn remember(&self, check: &HealthCheck, critical: bool) {
        let name = check.component();
        if let Some(store) = &self.inner.store {
            if let Ok(gauge) = store.gauge(STATUS_GAUGE, &[("component", name)]) {
                let _ = gauge.set(status_code(check.status()));
            }
        }
        let mut components = self.inner.components.lock().unwrap_or_else(PoisonError::into_inner);
        let component = components.entry(name.to_owned()).or_default();
        if component.history.len() == self.inner.history_len {
            component.history.pop_front();
        }
        component.history.push_back(check.clone());
        if check.status() == HealthStatus::Unhealthy {
            component.unhealthy_streak += 1;
            if component.unhealthy_streak == self.inner.alert_after {
                let severity = if critical { Severity::Critical } else { Severity::High };
                let message = if check.message().is_empty() { "unhealthy" } else { check.message() };
                let alert = Alert::builder(format!("{name} unhealthy"), format!("{message} ({} checks in a row)", self.inner.alert_after))
                    .severity(severity)
                    .source_function("health")
                    .label("component", name)
                    .build();
                match alert {
                    Ok(alert) => component.alert = Some(crate::alert::raise(alert)),
                    Err(err) => eprintln!("flext-obs: health alert for {name} not raised: {err}"),
                }
            }
        } else {
            component.unhealthy_streak = 0;
            if let Some(id) = component.alert.take() {
                crate::alert::resolve(id);
            }
        }
    }
}

static GLOBAL: LazyLock<HealthRegistry> = LazyLock::new(|| {
    HealthRegistry::builder()
        .store(crate::global().store().clone())
        .system_checks(SystemThresholds::default(), Duration::from_secs(5))
        .build()
        .unwrap_or_else(|err| {
            eprintln!("flext-obs: system health checks unavailable: {err}");
            HealthRegistry::builder().build().unwrap_or_else(|_| unreachable!("the plain builder cannot fail"))
        })
});

/// The process-wide registry: system checks sampled every 5 s, statuses mirrored into the
/// global store. The HTTP endpoint's `/health` serves its report.
pub fn global() -> &'static HealthRegistry {
    &GLOBAL
}
