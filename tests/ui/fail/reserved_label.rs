use flext_obs::flext_monitor;

#[flext_monitor(labels(result = "ok"))]
fn f() {}

fn main() {
    f();
}
