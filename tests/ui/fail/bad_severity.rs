use flext_obs::flext_monitor;

#[flext_monitor(severity = "error")]
fn f() {}

fn main() {
    f();
}
