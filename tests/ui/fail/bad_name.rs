use flext_obs::flext_monitor;

#[flext_monitor(name = "my function")]
fn f() {}

fn main() {
    f();
}
