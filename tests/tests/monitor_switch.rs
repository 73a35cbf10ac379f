//! The runtime switch: a process configured with recording off (`FLEXT_OBSERVABILITY_ENABLED`
//! false) records nothing for monitored calls until it is switched on. Own binary: the switch
//! is process-wide.

#![allow(clippy::float_cmp)]

use flext_obs::{Config, flext_monitor};
use flext_obs_tests::{calls, spans_of};

#[flext_monitor]
fn switched(n: u32) -> Result<u32, String> {
    if n == 0 { Err("zero".into()) } else { Ok(n) }
}

#[test]
fn recording_off_in_the_config_silences_monitored_calls_until_switched_on() {
    let config = Config::from_lookup(|var| (var == "FLEXT_OBSERVABILITY_ENABLED").then(|| "false".to_owned())).unwrap();
    let obs = flext_obs::init(config).unwrap();
    assert_eq!(switched(3), Ok(3), "the function still runs");
    assert!(switched(0).is_err());
    assert_eq!((calls("switched", "ok"), calls("switched", "error")), (0.0, 0.0));
    assert!(spans_of("switched").is_empty());
    assert!(flext_obs::alert::recent().is_empty());

    obs.set_enabled(true);
    assert_eq!(switched(3), Ok(3));
    assert!(switched(0).is_err());
    assert_eq!((calls("switched", "ok"), calls("switched", "error")), (1.0, 1.0));
    assert_eq!(spans_of("switched").len(), 2);
    assert_eq!(flext_obs::alert::recent().len(), 1);
}
