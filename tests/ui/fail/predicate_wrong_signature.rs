use flext_obs::flext_monitor;

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

#[flext_monitor(ok_if = is_success)]
fn fetch() -> u16 {
    200
}

fn main() {
    let _ = fetch();
}
