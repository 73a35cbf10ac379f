//! The message of the panic a monitored call unwinds from, noted by a chained panic hook.

thread_local! {
    /// The message of the last panic on this thread, noted by the hook below for the monitored
    /// calls it unwinds through.
    static PANIC_MESSAGE: std::cell::RefCell<Option<Box<str>>> = const { std::cell::RefCell::new(None) };
}

/// Installs, once, a panic hook that notes the panic's message (when it is text) and then runs
/// the hook that was there before, so the default report (or the program's own hook) is
/// unchanged. A hook the program installs later replaces this one; alerts then say only
/// "<function> panicked".
pub(super) fn install_hook() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    // Changing the hook from a panicking thread is not allowed; a later resolution installs it.
    if std::thread::panicking() {
        return;
    }
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| Box::<str>::from(*s))
                .or_else(|| payload.downcast_ref::<String>().map(|s| s.as_str().into()));
            let _ = PANIC_MESSAGE.try_with(|slot| *slot.borrow_mut() = message);
            previous(info);
        }));
    });
}

/// The message of the panic this thread is unwinding from, if the hook saw it.
#[cold]
pub(super) fn message() -> Option<Box<str>> {
    PANIC_MESSAGE.try_with(|slot| slot.borrow().clone()).ok().flatten()
}
