//! `/health` against a hung check, on a real socket: 200 requests leave the number of threads
//! as it was (one pool thread runs the hung check; every request joins that run and times out).
//! Alone in its test binary so that the process's thread count is this test's alone.

use flext_obs::Observability;
use flext_obs::export::http::serve_with;
use flext_obs::health::{CheckOptions, HealthRegistry};
use flext_obs_tests::http::get;
use std::sync::{Mutex, mpsc};
use std::time::Duration;

/// Threads of this process whose name starts with `prefix`, and all of them.
fn threads(prefix: &str) -> (usize, usize) {
    let tasks: Vec<String> =
        std::fs::read_dir("/proc/self/task").unwrap().filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok()).collect();
    (tasks.iter().filter(|name| name.starts_with(prefix)).count(), tasks.len())
}

#[test]
fn health_with_a_hung_check_does_not_grow_threads() {
    let (release, hung) = mpsc::channel::<()>();
    let hung = Mutex::new(hung);
    let health = HealthRegistry::builder().build().unwrap();
    health
        .register("hung", CheckOptions::new().timeout(Duration::from_millis(20)), move || {
            let _ = hung.lock().unwrap().recv_timeout(Duration::from_secs(60));
            true
        })
        .unwrap();
    let obs: Observability = flext_obs_tests::fresh();
    let server = serve_with("127.0.0.1:0".parse().unwrap(), obs, health, &flext_obs::config::HttpSettings::default()).unwrap();
    let addr = server.local_addr();
    let first = get(addr, "/health", &[]).unwrap();
    assert_eq!(first.status, 503);
    let (health_before, all_before) = threads("flext-health");
    let answers: Vec<_> =
        (0..4).map(|_| std::thread::spawn(move || (0..50).map(|_| get(addr, "/health", &[]).unwrap()).collect::<Vec<_>>())).collect();
    let mut answered_503 = 0;
    for answered in answers {
        for response in answered.join().unwrap() {
            assert_eq!(response.status, 503);
            let json: serde_json::Value = serde_json::from_str(&response.body).unwrap();
            let message = json["components"][0]["message"].as_str().unwrap().to_owned();
            assert!(message.starts_with("the check timed out after 20ms (its run started"), "{message}");
            answered_503 += 1;
        }
    }
    let (health_after, all_after) = threads("flext-health");
    println!(
        "200 /health requests against a hung check: flext-health threads {health_before} -> {health_after}, all threads {all_before} -> {all_after}"
    );
    assert_eq!(answered_503, 200);
    assert!(health_after <= 2 && health_after <= health_before + 1, "{health_before} -> {health_after}");
    assert!(all_after <= all_before + 8, "no thread per request: {all_before} -> {all_after}");
    drop(release);
}
