use flext_obs::flext_monitor;

struct Opaque;

#[flext_monitor(fields(value = Opaque))]
fn work() -> u32 {
    1
}

fn main() {
    let _ = work();
}
