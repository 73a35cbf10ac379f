//! Panic messages on alerts are never another panic's, also after the program installs its own
//! panic hook. One test in this binary: the panic hook is process-wide state.

use flext_obs::flext_monitor;
use flext_obs_tests::alerts_of;
use std::panic::catch_unwind;

#[flext_monitor]
fn first_failure() {
    panic!("first failure: secret-1");
}

#[flext_monitor]
fn after_own_hook() {
    panic!("second failure");
}

#[flext_monitor]
async fn async_after_own_hook(really: bool) {
    assert!(!really, "third failure");
}

#[flext_monitor]
fn catches_inside(really: bool) {
    let _ = catch_unwind(|| panic!("caught inside: secret-2"));
    assert!(!really, "fourth failure");
}

fn message_of(function: &str) -> String {
    let alerts = alerts_of(function);
    assert_eq!(alerts.len(), 1, "{function}: {alerts:?}");
    alerts[0].message().to_owned()
}

#[test]
fn alerts_never_carry_an_earlier_panic_s_message() {
    // Our hook is in place (the first monitored call installs it): the message is the panic's own.
    assert!(catch_unwind(first_failure).is_err());
    assert_eq!(message_of("first_failure"), "first_failure panicked: first failure: secret-1");
    // A panic outside any monitored call, noted by our hook, is no later call's message.
    let _ = catch_unwind(|| panic!("outside: secret-3"));
    assert!(catch_unwind(|| catches_inside(true)).is_err());
    assert_eq!(message_of("catches_inside"), "catches_inside panicked: fourth failure");

    // The program replaces the hook: our hook no longer sees panics, so no message is trusted.
    std::panic::set_hook(Box::new(|info| eprintln!("the program's own hook: {info}")));
    assert!(catch_unwind(after_own_hook).is_err());
    let message = message_of("after_own_hook");
    assert_eq!(message, "after_own_hook panicked", "no stale text from an earlier panic");

    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let result = runtime.block_on(async { tokio::spawn(async_after_own_hook(true)).await });
    assert!(result.unwrap_err().is_panic());
    assert_eq!(message_of("async_after_own_hook"), "async_after_own_hook panicked");
    for alert in flext_obs::alert::recent() {
        let own = alert.message().starts_with("first_failure panicked: first failure: secret-1");
        assert!(own || !alert.message().contains("secret"), "a message from another panic: {}", alert.message());
    }
    let _ = std::panic::take_hook();
}
