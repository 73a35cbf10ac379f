use flext_obs::flext_monitor;

#[flext_monitor(error_if = no_such_predicate)]
fn work() -> () {}

fn main() {
    work();
}
