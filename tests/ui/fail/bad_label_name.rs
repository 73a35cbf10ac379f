use flext_obs::flext_monitor;

#[flext_monitor(labels(__team = "core"))]
fn f() {}

fn main() {
    f();
}
