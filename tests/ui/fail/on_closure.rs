use flext_obs::flext_monitor;

fn main() {
    #[flext_monitor]
    let work = || 1;
    let _ = work();
}
