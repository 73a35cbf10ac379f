use flext_obs::flext_monitor;

#[flext_monitor(sevrity = "low")]
fn f() {}

fn main() {
    f();
}
