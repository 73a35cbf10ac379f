//! The expansion keeps the function's attributes: `#[must_use]` still warns (here: errors).
#![deny(unused_must_use)]

use flext_obs::flext_monitor;

#[flext_monitor]
#[must_use]
fn total(a: u32, b: u32) -> u32 {
    a + b
}

fn main() {
    total(1, 2);
}
