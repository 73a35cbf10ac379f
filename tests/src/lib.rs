//! Behaviour tests for flext-obs live in `tests/`; this library only holds shared helpers.

use flext_obs::{Config, Observability};

/// A fresh, isolated instance for one test.
///
/// # Panics
/// When the default configuration is refused, which would be a bug in itself.
pub fn fresh() -> Observability {
    Observability::new(Config::builder().service_name("tests").build().expect("valid config")).expect("valid store")
}
