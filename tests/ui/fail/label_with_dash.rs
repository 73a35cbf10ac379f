use flext_obs::flext_monitor;

#[flext_monitor(labels(team-name = "payments"))]
fn refund() {}

fn main() {
    refund();
}
