use flext_obs::flext_monitor;

unsafe extern "C" {
    #[flext_monitor]
    fn abs(x: i32) -> i32;
}

fn main() {}
