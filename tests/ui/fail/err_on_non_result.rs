use flext_obs::flext_monitor;

#[flext_monitor(err)]
fn count() -> u32 {
    1
}

fn main() {
    let _ = count();
}
