use flext_obs::flext_monitor;

#[flext_monitor]
const fn f() -> u8 {
    1
}

fn main() {
    f();
}
