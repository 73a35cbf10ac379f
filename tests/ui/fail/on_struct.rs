use flext_obs::flext_monitor;

#[flext_monitor]
struct Service;

fn main() {
    let _ = Service;
}
