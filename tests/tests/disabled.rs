//! With the `disable-monitoring` feature the attribute emits the item unchanged: nothing is
//! recorded. Run by scripts/test.sh with `--features disable-monitoring`.
#![cfg(feature = "disable-monitoring")]

use flext_obs::flext_monitor;

#[flext_monitor(severity = "low", labels(team = "core"))]
fn compiled_out(x: u32) -> Result<u32, String> {
    if x == 0 { Err("zero".into()) } else { Ok(x) }
}

struct Service;

#[flext_monitor]
impl Service {
    fn call(&self) -> u8 {
        1
    }

    #[flext_monitor(skip)]
    fn other(&self) -> u8 {
        2
    }
}

#[test]
fn nothing_is_recorded_when_monitoring_is_compiled_out() {
    assert_eq!(compiled_out(1), Ok(1));
    assert!(compiled_out(0).is_err());
    assert_eq!(Service.call() + Service.other(), 3);
    let snapshot = flext_obs::global().snapshot();
    assert!(snapshot.series.iter().all(|s| s.name != "function_calls_total"), "no call may be counted");
    assert!(flext_obs::trace::recent_spans().is_empty());
    assert!(flext_obs::alert::recent().is_empty());
}
