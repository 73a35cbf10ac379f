use flext_obs::flext_monitor;

fn yes(_: &u8) -> bool {
    true
}

#[flext_monitor(ok_if = yes, error_if = yes)]
fn f() -> u8 {
    1
}

fn main() {
    f();
}
