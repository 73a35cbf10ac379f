use flext_obs::flext_monitor;

#[flext_monitor(fields(trace_id = 1))]
fn work() -> u32 {
    1
}

fn main() {
    let _ = work();
}
