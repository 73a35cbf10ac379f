use flext_obs::flext_monitor;

#[flext_monitor]
#[track_caller]
fn check(x: u32) -> u32 {
    assert!(x > 0);
    x
}

fn main() {
    let _ = check(1);
}
