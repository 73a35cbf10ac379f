use flext_obs::flext_monitor;

#[flext_monitor(ret)]
fn work() {}

fn main() {
    work();
}
