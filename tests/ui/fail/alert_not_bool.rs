use flext_obs::flext_monitor;

#[flext_monitor(alert = "no")]
fn f() {}

fn main() {
    f();
}
