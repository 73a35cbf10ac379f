//! Monitored functions compiled the way a user's crate is: a crate of their own, `flext-obs`
//! with its default features, no `#[inline]` hints, called from the benchmark crate through an
//! ordinary (non-LTO) cross-crate call. Inlining inside one crate cannot flatter the per-call
//! figure measured through these.

use flext_obs::flext_monitor;

/// The error type every function here returns.
#[derive(Debug)]
pub struct UserError;

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("user error")
    }
}

impl std::error::Error for UserError {}

/// The unmonitored body, the baseline of [`monitored`].
pub fn plain(x: u64) -> Result<u64, UserError> {
    if x == u64::MAX { Err(UserError) } else { Ok(x.wrapping_mul(3)) }
}

/// The same body under `#[flext_monitor]`, as a user writes it.
#[flext_monitor]
pub fn monitored(x: u64) -> Result<u64, UserError> {
    if x == u64::MAX { Err(UserError) } else { Ok(x.wrapping_mul(3)) }
}
