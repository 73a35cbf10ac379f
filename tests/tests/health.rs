//! Health checks: thresholds, aggregation, timeouts, panics, alerts, the report's JSON, and
//! system readings checked against /proc.

#![allow(clippy::float_cmp)] // status codes and ratios compared exactly where they are exact

use flext_obs::health::{CheckOptions, HealthRegistry, STATUS_GAUGE, SystemThresholds, Thresholds, Verdict, aggregate};
use flext_obs::{AlertStatus, HealthStatus};
use flext_obs_tests::fresh;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use HealthStatus::{Degraded, Healthy, Unhealthy, Unknown};

#[test]
fn thresholds_classify_readings_and_refuse_nonsense() {
    let t = Thresholds::new(50.0, 100.0).unwrap();
    for (value, status) in [(0.0, Healthy), (49.9, Healthy), (50.0, Degraded), (99.0, Degraded), (100.0, Unhealthy), (1e9, Unhealthy)] {
        assert_eq!(t.status(value), status, "{value}");
    }
    let defaults = SystemThresholds::default();
    assert_eq!(defaults.memory, Thresholds::new(0.80, 0.95).unwrap());
    assert_eq!(defaults.disk, Thresholds::new(0.80, 0.95).unwrap());
    assert_eq!(defaults.threads, Thresholds::new(50.0, 100.0).unwrap());
    assert!(Thresholds::new(f64::NAN, 1.0).unwrap_err().to_string().contains("must be a finite number >= 0"));
    assert!(Thresholds::new(-1.0, 1.0).is_err());
    assert!(Thresholds::new(0.9, 0.8).unwrap_err().to_string().contains("must not exceed the unhealthy threshold"));
}

#[test]
fn aggregation_table() {
    let cases: &[(&[(HealthStatus, bool)], HealthStatus)] = &[
        (&[], Unknown),
        (&[(Healthy, false)], Healthy),
        (&[(Healthy, true), (Healthy, false)], Healthy),
        (&[(Healthy, false), (Degraded, false)], Degraded),
        (&[(Healthy, false), (Unknown, false)], Degraded),
        (&[(Healthy, false), (Healthy, false), (Unhealthy, false)], Degraded),
        (&[(Healthy, false), (Unhealthy, false)], Unhealthy),
        (&[(Unhealthy, false)], Unhealthy),
        (&[(Healthy, false), (Healthy, false), (Healthy, false), (Unhealthy, true)], Unhealthy),
        (&[(Degraded, true), (Healthy, false)], Degraded),
        (&[(Unhealthy, false), (Unhealthy, false), (Healthy, false), (Healthy, false)], Unhealthy),
        (&[(Unhealthy, false), (Degraded, false), (Healthy, false), (Healthy, false), (Healthy, false)], Degraded),
    ];
    for (components, expected) in cases {
        assert_eq!(aggregate(components.iter().copied()), *expected, "{components:?}");
    }
}

#[test]
fn an_empty_registry_is_unknown_and_served_200() {
    let report = HealthRegistry::builder().build().unwrap().check();
    assert_eq!(report.status, Unknown);
    assert_eq!(report.http_status(), 200);
    assert!(report.components.is_empty());
}

#[test]
fn a_hanging_check_times_out_and_a_panicking_one_is_unhealthy_without_hurting_the_caller() {
    let health = HealthRegistry::builder().build().unwrap();
    health
        .register("slow", CheckOptions::new().timeout(Duration::from_millis(50)), || {
            std::thread::sleep(Duration::from_secs(10));
            Verdict::healthy()
        })
        .unwrap();
    health.register("broken", CheckOptions::new(), || -> Verdict { panic!("boom") }).unwrap();
    health.register("fine", CheckOptions::new(), || true).unwrap();
    let started = Instant::now();
    let report = health.check();
    assert!(started.elapsed() < Duration::from_secs(5), "a hanging check must not hold the caller");
    let by_name = |name: &str| report.components.iter().find(|c| c.component() == name).unwrap().clone();
    assert_eq!((by_name("slow").status(), by_name("slow").message()), (Unhealthy, "the check timed out after 50ms"));
    assert_eq!((by_name("broken").status(), by_name("broken").message()), (Unhealthy, "the check panicked: boom"));
    assert_eq!(by_name("fine").status(), Healthy);
    assert_eq!(report.status, Unhealthy, "two of three unhealthy");
    assert_eq!(report.http_status(), 503);
    assert!(by_name("fine").duration().is_some());
}

#[test]
fn critical_components_decide_alone() {
    let health = HealthRegistry::builder().build().unwrap();
    for name in ["a", "b", "c"] {
        health.register(name, CheckOptions::new(), || Ok::<(), String>(())).unwrap();
    }
    health.register("db", CheckOptions::new().critical(), || Err::<(), _>("connection refused")).unwrap();
    let report = health.check();
    assert_eq!(report.status, Unhealthy);
    assert!(health.unregister("db"));
    assert!(!health.unregister("db"));
    assert_eq!(health.check().status, Healthy);
}

#[test]
fn registration_refuses_bad_names_and_timeouts() {
    let health = HealthRegistry::builder().build().unwrap();
    health.register("db", CheckOptions::new(), || true).unwrap();
    assert!(health.register("db", CheckOptions::new(), || true).unwrap_err().to_string().contains("already registered"));
    assert!(health.register("system.cpu", CheckOptions::new(), || true).is_err());
    assert_eq!(
        health.register(" ", CheckOptions::new(), || true).unwrap_err().to_string(),
        r#"invalid HealthCheck.component " ": must not be empty"#
    );
    assert!(
        health.register("x", CheckOptions::new().timeout(Duration::ZERO), || true).unwrap_err().to_string().contains("greater than zero")
    );
    for absurd in [Duration::MAX, flext_obs::health::MAX_CHECK_TIMEOUT + Duration::from_millis(1)] {
        let err = health.register("x", CheckOptions::new().timeout(absurd), || true).unwrap_err();
        assert!(err.to_string().starts_with("invalid CheckOptions.timeout"), "{err}");
        assert!(err.to_string().contains("must be at most 300s"), "{err}");
    }
    health.register("x", CheckOptions::new().timeout(flext_obs::health::MAX_CHECK_TIMEOUT), || true).unwrap();
    assert_eq!(health.check().components.len(), 2, "nothing else was registered");
    assert!(HealthRegistry::builder().check_threads(65).build().unwrap_err().to_string().contains("from 1 to 64"));
}

#[test]
fn a_check_still_running_is_joined_not_started_again() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let health = HealthRegistry::builder().build().unwrap();
    let counted = runs.clone();
    health
        .register("slow", CheckOptions::new().timeout(Duration::from_millis(20)), move || {
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(600));
            true
        })
        .unwrap();
    let first = health.check();
    assert_eq!(first.components[0].message(), "the check timed out after 20ms");
    for _ in 0..10 {
        let again = health.check();
        assert!(again.components[0].message().contains("is still going"), "{}", again.components[0].message());
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "one run, however many callers");
    std::thread::sleep(Duration::from_millis(800));
    // That run ended healthy; a caller now starts a new one (and times out on it again).
    let _ = health.check();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn hung_checks_hold_at_most_the_pool_threads() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (release, hung) = std::sync::mpsc::channel::<()>();
    let hung = std::sync::Arc::new(std::sync::Mutex::new(hung));
    let started = std::sync::Arc::new(AtomicUsize::new(0));
    let health = HealthRegistry::builder().check_threads(2).build().unwrap();
    for i in 0..6 {
        let (hung, started) = (hung.clone(), started.clone());
        health
            .register(&format!("hung{i}"), CheckOptions::new().timeout(Duration::from_millis(50)), move || {
                started.fetch_add(1, Ordering::SeqCst);
                let _ = hung.lock().map(|rx| rx.recv_timeout(Duration::from_secs(1)));
                true
            })
            .unwrap();
    }
    let began = Instant::now();
    let report = health.check();
    assert!(began.elapsed() < Duration::from_secs(2), "{:?}", began.elapsed());
    assert!(report.components.iter().all(|c| c.status() == Unhealthy), "all six time out");
    std::thread::sleep(Duration::from_millis(100));
    let ran = started.load(Ordering::SeqCst);
    assert!((1..=2).contains(&ran), "two threads, so at most two run at once: {ran}");
    drop(release);
}

#[test]
fn three_unhealthy_results_in_a_row_raise_an_alert_and_recovery_resolves_it() {
    let store = fresh();
    let health = HealthRegistry::builder().store(store.store().clone()).history(4).build().unwrap();
    let state = Arc::new(AtomicU32::new(0)); // 0 healthy, 1 unhealthy
    let seen = state.clone();
    health.register("payments_gateway", CheckOptions::new(), move || seen.load(Ordering::SeqCst) == 0).unwrap();
    let alerts = || flext_obs::alert::recent().into_iter().filter(|a| a.title() == "payments_gateway unhealthy").collect::<Vec<_>>();

    state.store(1, Ordering::SeqCst);
    health.check();
    health.check();
    assert!(alerts().is_empty(), "two failures are not enough");
    health.check();
    let raised = alerts();
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].status(), AlertStatus::Active);
    assert_eq!(raised[0].labels()["component"], "payments_gateway");
    assert_eq!(raised[0].message(), "the check returned false (3 checks in a row)");
    health.check();
    assert_eq!(alerts().len(), 1, "one alert per unhealthy streak");
    assert_eq!(store.metric_value(STATUS_GAUGE, &[("component", "payments_gateway")]), Some(2.0));

    state.store(0, Ordering::SeqCst);
    health.check();
    assert_eq!(alerts()[0].status(), AlertStatus::Resolved);
    assert_eq!(store.metric_value(STATUS_GAUGE, &[("component", "payments_gateway")]), Some(0.0));
    let history = health.history("payments_gateway");
    assert_eq!(history.len(), 4, "bounded history");
    assert_eq!(history.iter().map(flext_obs::HealthCheck::status).collect::<Vec<_>>(), vec![Unhealthy, Unhealthy, Unhealthy, Healthy]);
}

#[test]
fn the_report_serializes_to_the_documented_json() {
    let health = HealthRegistry::builder().build().unwrap();
    health.register("cache", CheckOptions::new(), || Verdict::degraded("hit rate low").with_detail("hit_rate", 0.4)).unwrap();
    let json = serde_json::to_value(health.check()).unwrap();
    assert_eq!(json["status"], "degraded");
    assert!(json["checked_at"].as_str().unwrap().ends_with('Z'));
    assert!(json["duration_seconds"].as_f64().unwrap() >= 0.0);
    let component = &json["components"][0];
    assert_eq!(component["component"], "cache");
    assert_eq!(component["status"], "degraded");
    assert_eq!(component["message"], "hit rate low");
    assert_eq!(component["details"]["hit_rate"], 0.4);
    assert!(component["duration"].as_f64().is_some());
    assert!(component["id"].as_str().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_checks_run_on_the_check_pool_with_tokio_and_a_timeout() {
    let health = HealthRegistry::builder().build().unwrap();
    health
        .register_async("timer", CheckOptions::new(), || async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok::<(), String>(())
        })
        .unwrap();
    health
        .register_async("stuck", CheckOptions::new().timeout(Duration::from_millis(50)), || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Verdict::healthy()
        })
        .unwrap();
    health.register_async("exploding", CheckOptions::new(), || async { panic!("kaboom") as Verdict }).unwrap();
    // A timer made before the first await needs the runtime when the future is made.
    health
        .register_async("eager", CheckOptions::new(), || {
            let sleep = tokio::time::sleep(Duration::from_millis(5));
            async move {
                sleep.await;
                true
            }
        })
        .unwrap();
    health
        .register("sync_slow", CheckOptions::new().timeout(Duration::from_millis(50)), || {
            std::thread::sleep(Duration::from_secs(5));
            true
        })
        .unwrap();
    let report = health.check_async().await;
    let status =
        |name: &str| report.components.iter().find(|c| c.component() == name).map(|c| (c.status(), c.message().to_owned())).unwrap();
    assert_eq!(status("timer"), (Healthy, String::new()));
    assert_eq!(status("stuck"), (Unhealthy, "the check timed out after 50ms".to_owned()));
    assert_eq!(status("exploding"), (Unhealthy, "the check panicked: kaboom".to_owned()));
    assert_eq!(status("eager"), (Healthy, String::new()));
    assert_eq!(status("sync_slow"), (Unhealthy, "the check timed out after 50ms".to_owned()));
}

#[test]
fn the_blocking_run_drives_runtime_free_futures() {
    let health = HealthRegistry::builder().build().unwrap();
    health.register_async("ready", CheckOptions::new(), || async { HealthStatus::Degraded }).unwrap();
    health.register_async("never", CheckOptions::new().timeout(Duration::from_millis(30)), std::future::pending::<bool>).unwrap();
    let report = health.check();
    assert_eq!(report.components[0].status(), Degraded);
    assert_eq!(report.components[1].message(), "the check timed out after 30ms");
}

fn proc_field(file: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("{key} not in {file}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn system_readings_match_proc_and_are_served_from_the_cache() {
    let store = fresh();
    let health = HealthRegistry::builder()
        .store(store.store().clone())
        .system_checks(SystemThresholds::default(), Duration::from_millis(200))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let readings = loop {
        if let Some(r) = health.system_readings().filter(|r| r.sampled_at.is_some()) {
            break r;
        }
        assert!(Instant::now() < deadline, "no system sample within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(readings.memory_total_bytes, proc_field("/proc/meminfo", "MemTotal:") * 1024);
    assert!(readings.memory_used_bytes > 0 && readings.memory_used_bytes < readings.memory_total_bytes);
    let cpu = readings.cpu_usage.expect("two CPU samples were taken");
    assert!((0.0..=1.0).contains(&cpu), "{cpu}");
    let rss = proc_field("/proc/self/status", "VmRSS:") * 1024;
    #[allow(clippy::cast_precision_loss)]
    let ratio = readings.process_resident_bytes as f64 / rss as f64;
    assert!((0.5..2.0).contains(&ratio), "resident {} vs /proc {rss}", readings.process_resident_bytes);
    let threads = usize::try_from(proc_field("/proc/self/status", "Threads:")).unwrap();
    // Other tests of this binary start and end threads between the sample and this read.
    assert!(readings.process_threads >= 2 && readings.process_threads.abs_diff(threads) <= 32, "{} vs {threads}", readings.process_threads);
    assert!(readings.disks.iter().any(|d| d.mount_point == "/" && d.total_bytes > 0), "{:?}", readings.disks);

    let report = health.check();
    let names: Vec<&str> = report.components.iter().map(flext_obs::HealthCheck::component).collect();
    assert!(
        names.contains(&"system.cpu") && names.contains(&"system.memory") && names.contains(&"process") && names.contains(&"system.disk:/"),
        "{names:?}"
    );
    let memory = report.components.iter().find(|c| c.component() == "system.memory").unwrap();
    assert_eq!(memory.details()["total_bytes"], readings.memory_total_bytes);
    assert!(store.metric_value("flext_system_memory_usage_ratio", &[]).is_some_and(|r| r > 0.0 && r < 1.0));
    assert!(store.metric_value("flext_process_threads", &[]).is_some_and(|t| t >= 2.0));
    assert!(store.metric_value(STATUS_GAUGE, &[("component", "system.memory")]).is_some());
}

#[test]
fn a_sampler_interval_below_two_cpu_samples_is_refused() {
    let err = HealthRegistry::builder().system_checks(SystemThresholds::default(), Duration::from_millis(10)).build().unwrap_err();
    assert!(err.to_string().contains("CPU use needs two samples"), "{err}");
}

#[test]
fn the_global_registry_has_the_system_checks_and_user_checks() {
    let health = flext_obs::health::global();
    health.register("global_probe", CheckOptions::new(), || true).unwrap();
    let report = health.check();
    let names: Vec<&str> = report.components.iter().map(flext_obs::HealthCheck::component).collect();
    assert!(names.contains(&"global_probe"));
    assert!(names.iter().any(|n| n.starts_with("system")), "{names:?}");
    assert_eq!(flext_obs::global().metric_value(STATUS_GAUGE, &[("component", "global_probe")]), Some(0.0));
}
