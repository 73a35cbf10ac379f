use flext_obs::flext_monitor;

#[flext_monitor = "checkout"]
fn checkout() {}

fn main() {
    checkout();
}
