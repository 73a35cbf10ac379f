use flext_obs::flext_monitor;

#[flext_monitor(name = "a", name = "b")]
fn f() {}

fn main() {
    f();
}
