//! A process that installs flext-obs's JSON layer as its `tracing` subscriber before anything
//! else, then calls monitored functions: registering the call sites asks the layer for its
//! interest, and the layer reads flext-obs; this must neither deadlock nor panic.

#![allow(clippy::float_cmp)] // exact counts are the point

use std::time::Duration;

#[flext_obs::flext_monitor]
fn first_call() -> u32 {
    7
}

#[flext_obs::flext_monitor]
fn other_call() -> u32 {
    8
}

#[test]
fn monitored_calls_and_init_under_our_json_layer_do_not_deadlock() {
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(flext_obs::log::JsonLayer::new());
    tracing::subscriber::set_global_default(subscriber).expect("the first subscriber");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let first = first_call(); // before any global(): its call site resolves first
        let init = flext_obs::init(flext_obs::Config::builder().service_name("layered").build().unwrap()).is_ok();
        tx.send((first, other_call(), init)).unwrap();
    });
    let (first, other, _) = rx.recv_timeout(Duration::from_secs(20)).expect("no deadlock");
    assert_eq!((first, other), (7, 8));
    let snapshot = flext_obs::global().snapshot();
    assert_eq!(snapshot.sum("function_calls_total", &[("function", "first_call")]), 1.0);
}
