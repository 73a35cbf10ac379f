//! `crate = path` for crates that re-export flext-obs.
#![deny(warnings)]

mod reexport {
    pub use ::flext_obs::__private;
    pub use ::flext_obs::flext_monitor;
}

#[reexport::flext_monitor(crate = crate::reexport)]
fn through_reexport(x: u8) -> u8 {
    x
}

fn main() {
    let _ = through_reexport(1);
}
