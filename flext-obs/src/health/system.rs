//! System readings through `sysinfo`: CPU, memory, disks, and this process's resident memory and
//! thread count. CPU use needs two samples apart, so a background thread refreshes the readings
//! on an interval and checks read the cached values: a health request never waits for a
//! measurement.

use crate::entity::HealthStatus;
use crate::error::{Error, Result};
use crate::store::Store;
use serde::Serialize;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// When a reading turns a component degraded, then unhealthy (`value >= threshold`).
///
/// ```
/// use flext_obs::health::Thresholds;
/// use flext_obs::HealthStatus;
/// let memory = Thresholds::new(0.80, 0.95)?;
/// assert_eq!(memory.status(0.50), HealthStatus::Healthy);
/// assert_eq!(memory.status(0.80), HealthStatus::Degraded);
/// assert_eq!(memory.status(0.97), HealthStatus::Unhealthy);
/// assert!(Thresholds::new(0.9, 0.5).is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    degraded: f64,
    unhealthy: f64,
}

impl Thresholds {
    /// Degraded from `degraded` on, unhealthy from `unhealthy` on; both finite, not negative,
    /// `degraded <= unhealthy`.
    pub fn new(degraded: f64, unhealthy: f64) -> Result<Self> {
        for (field, value) in [("degraded", degraded), ("unhealthy", unhealthy)] {
            if !value.is_finite() || value < 0.0 {
                return Err(Error::invalid("Thresholds", field, value, "must be a finite number >= 0"));
            }
        }
        if degraded > unhealthy {
            return Err(Error::invalid("Thresholds", "degraded", degraded, format!("must not exceed the unhealthy threshold {unhealthy}")));
        }
        Ok(Thresholds { degraded, unhealthy })
    }

    /// The status of `value`.
    pub fn status(&self, value: f64) -> HealthStatus {
        if value >= self.unhealthy {
            HealthStatus::Unhealthy
        } else if value >= self.degraded {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        }
    }
}

/// Thresholds of the system checks. Defaults from the original library: memory and disk 80 % /
/// 95 % used, threads 50 / 100; CPU 80 % / 95 % busy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SystemThresholds {
    /// CPU busy ratio (0 to 1).
    pub cpu: Thresholds,
    /// Memory used ratio (0 to 1).
    pub memory: Thresholds,
    /// Disk used ratio per filesystem (0 to 1).
    pub disk: Thresholds,
    /// Threads of this process.
    pub threads: Thresholds,
}

impl Default for SystemThresholds {
    fn default() -> Self {
        SystemThresholds {
            cpu: Thresholds { degraded: 0.80, unhealthy: 0.95 },
            memory: Thresholds { degraded: 0.80, unhealthy: 0.95 },
            disk: Thresholds { degraded: 0.80, unhealthy: 0.95 },
            threads: Thresholds { degraded: 50.0, unhealthy: 100.0 },
        }
    }
}

/// One filesystem's space.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskReading {
    /// Where it is mounted.
    pub mount_point: String,
    /// Size in bytes.
    pub total_bytes: u64,
    /// Free space in bytes.
    pub available_bytes: u64,
}

impl DiskReading {
    /// Used share, 0 to 1.
    #[allow(clippy::cast_precision_loss)]
    pub fn used_ratio(&self) -> f64 {
        if self.total_bytes == 0 { 0.0 } else { 1.0 - self.available_bytes as f64 / self.total_bytes as f64 }
    }
}

/// The latest system readings.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct SystemReadings {
    /// CPU busy ratio, 0 to 1; `None` until two samples were taken.
    pub cpu_usage: Option<f64>,
    /// Memory in use, bytes.
    pub memory_used_bytes: u64,
    /// Memory installed, bytes.
    pub memory_total_bytes: u64,
    /// Filesystems with a size.
    pub disks: Vec<DiskReading>,
    /// This process's resident memory, bytes.
    pub process_resident_bytes: u64,
    /// This process's threads.
    pub process_threads: usize,
    /// When they were read.
    pub sampled_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl SystemReadings {
    /// Memory used share, 0 to 1.
    #[allow(clippy::cast_precision_loss)]
    pub fn memory_ratio(&self) -> f64 {
        if self.memory_total_bytes == 0 { 0.0 } else { self.memory_used_bytes as f64 / self.memory_total_bytes as f64 }
    }
}

/// Reads the system once (CPU usage stays as `previous` gave it: it needs two samples).
fn read(system: &mut sysinfo::System, disks: &mut sysinfo::Disks, pid: Option<sysinfo::Pid>) -> SystemReadings {
    system.refresh_cpu_usage();
    system.refresh_memory();
    disks.refresh(true);
    let (mut rss, mut threads) = (0, 0);
    if let Some(pid) = pid {
        system.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[pid]), true);
        if let Some(process) = system.process(pid) {
            rss = process.memory();
            threads = process.tasks().map_or(1, std::collections::HashSet::len);
        }
    }
    let mut seen = std::collections::HashSet::new();
    let disks = disks
        .list()
        .iter()
        .filter(|d| d.total_space() > 0)
        .map(|d| DiskReading {
            mount_point: d.mount_point().to_string_lossy().into_owned(),
            total_bytes: d.total_space(),
            available_bytes: d.available_space(),
        })
        .filter(|d| seen.insert(d.mount_point.clone()))
        .collect();
    SystemReadings {
        cpu_usage: Some(f64::from(system.global_cpu_usage()) / 100.0),
        memory_used_bytes: system.used_memory(),
        memory_total_bytes: system.total_memory(),
        disks,
        process_resident_bytes: rss,
        process_threads: threads,
        sampled_at: Some(chrono::Utc::now()),
    }
}

/// The background sampler: keeps [`SystemReadings`] fresh and mirrors them into gauges.
#[derive(Debug)]
pub(crate) struct Sampler {
    pub(crate) readings: Arc<RwLock<SystemReadings>>,
    _worker: crate::worker::Worker,
}

impl Sampler {
    pub(crate) fn start(interval: Duration, store: Option<Store>) -> Result<Self> {
        if interval < sysinfo::MINIMUM_CPU_UPDATE_INTERVAL {
            return Err(Error::invalid(
                "health",
                "system_interval",
                interval,
                format!("must be at least {:?} (CPU use needs two samples that far apart)", sysinfo::MINIMUM_CPU_UPDATE_INTERVAL),
            ));
        }
        let readings = Arc::new(RwLock::new(SystemReadings::default()));
        let shared = readings.clone();
        let worker = crate::worker::Worker::spawn("flext-health-system", move |stopped| {
            let mut system = sysinfo::System::new();
            let mut disks = sysinfo::Disks::new();
            let pid = sysinfo::get_current_pid().ok();
            // The first CPU figure needs a second sample a short while after the first.
            system.refresh_cpu_usage();
            let mut wait = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                let now = read(&mut system, &mut disks, pid);
                if let Some(store) = &store {
                    mirror(store, &now);
                }
                *shared.write().unwrap_or_else(PoisonError::into_inner) = now;
                wait = interval;
            }
        })?;
        Ok(Sampler { readings, _worker: worker })
    }

    pub(crate) fn latest(&self) -> SystemReadings {
        self.readings.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Gauge names of the system readings.
pub const SYSTEM_GAUGES: [&str; 5] = [
    "flext_system_cpu_usage_ratio",
    "flext_system_memory_usage_ratio",
    "flext_system_disk_usage_ratio",
    "flext_process_resident_memory_bytes",
    "flext_process_threads",
];

#[allow(clippy::cast_precision_loss)]
fn mirror(store: &Store, r: &SystemReadings) {
    let set = |name: &str, labels: &[(&str, &str)], value: f64| {
        if let Ok(gauge) = store.gauge(name, labels) {
            let _ = gauge.set(value);
        }
    };
    if let Some(cpu) = r.cpu_usage {
        set(SYSTEM_GAUGES[0], &[], cpu);
    }
    set(SYSTEM_GAUGES[1], &[], r.memory_ratio());
    for disk in &r.disks {
        set(SYSTEM_GAUGES[2], &[("mount_point", &disk.mount_point)], disk.used_ratio());
    }
    set(SYSTEM_GAUGES[3], &[], r.process_resident_bytes as f64);
    set(SYSTEM_GAUGES[4], &[], r.process_threads as f64);
}
