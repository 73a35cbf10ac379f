use flext_obs::flext_monitor;

fn is_fine(_: &()) -> bool {
    true
}

#[flext_monitor(ok_if = is_fine)]
fn work() {}

fn main() {
    work();
}
