//! The message of the panic a monitored call unwinds from, noted by a chained panic hook.
//!
//! A sync guard cannot see the payload it unwinds with, so the hook notes each panic's message
//! with the thread's panic number, and a guard reads only a message whose number is newer than
//! the one it saw when its call began: a message from a panic before the call (caught, or on
//! the way to another thread's join) is never attached to a later one. When the program replaces
//! the hook (`std::panic::set_hook`), the hook is dropped and no message is trusted any more, as
//! the next panic would not be noted: alerts then say only "`<function>` panicked".

use crate::thread::THREAD;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// A text the hook noted for one panic, with the thread's panic number.
type Noted = RefCell<Option<(u64, Box<str>)>>;

thread_local! {
    /// The message of the last panic on this thread the hook saw, with its panic number.
    static PANIC_MESSAGE: Noted = const { RefCell::new(None) };
    /// Its backtrace, when `RUST_BACKTRACE` / `RUST_LIB_BACKTRACE` ask for one.
    static PANIC_BACKTRACE: Noted = const { RefCell::new(None) };
}

/// Whether our hook is still the installed one (or chained to by the program's).
static HOOK_LIVE: AtomicBool = AtomicBool::new(false);

/// Owned by the hook: dropped when the program replaces the hook without chaining to it.
struct HookAlive;

impl Drop for HookAlive {
    fn drop(&mut self) {
        HOOK_LIVE.store(false, Ordering::Release);
    }
}

/// Installs, once, a panic hook that notes the panic's message (when it is text) and then runs
/// the hook that was there before, so the default report (or the program's own hook) is
/// unchanged.
pub(super) fn install_hook() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    // Changing the hook from a panicking thread is not allowed; a later resolution installs it.
    if std::thread::panicking() {
        return;
    }
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        let alive = HookAlive;
        HOOK_LIVE.store(true, Ordering::Release);
        std::panic::set_hook(Box::new(move |info| {
            let _keep_alive = &alive;
            let number = THREAD.with(|t| {
                let number = t.panics.get().wrapping_add(1);
                t.panics.set(number);
                number
            });
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| Box::<str>::from(*s))
                .or_else(|| payload.downcast_ref::<String>().map(|s| s.as_str().into()));
            let _ = PANIC_MESSAGE.try_with(|slot| *slot.borrow_mut() = message.map(|m| (number, m)));
            // `capture` is a no-op unless the environment asks for backtraces.
            let backtrace = std::backtrace::Backtrace::capture();
            let backtrace =
                (backtrace.status() == std::backtrace::BacktraceStatus::Captured).then(|| backtrace.to_string().into_boxed_str());
            let _ = PANIC_BACKTRACE.try_with(|slot| *slot.borrow_mut() = backtrace.map(|b| (number, b)));
            previous(info);
        }));
    });
}

/// This thread's panic number now: how many panics the hook saw on it.
#[inline]
pub(super) fn number(t: &crate::thread::ThreadState) -> u64 {
    t.panics.get()
}

/// [`number`] for code outside a `THREAD` access.
pub(super) fn current_number() -> u64 {
    THREAD.with(number)
}

/// The backtrace of the panic this thread is unwinding from, when one was captured and it began
/// after panic number `since` (see [`message_since`]).
#[cold]
pub(super) fn backtrace_since(since: u64) -> Option<Box<str>> {
    noted_since(&PANIC_BACKTRACE, since)
}

/// The message of the panic this thread is unwinding from, if the hook saw it and it began
/// after panic number `since` (read when the call, or the poll, began); `None` when it is not
/// known for sure.
#[cold]
pub(super) fn message_since(since: u64) -> Option<Box<str>> {
    noted_since(&PANIC_MESSAGE, since)
}

/// What the hook noted in `slot` for a panic numbered after `since`, while the hook is live.
fn noted_since(slot: &'static std::thread::LocalKey<Noted>, since: u64) -> Option<Box<str>> {
    if !HOOK_LIVE.load(Ordering::Acquire) {
        return None;
    }
    slot.try_with(|slot| slot.borrow().as_ref().filter(|(number, _)| *number > since).map(|(_, text)| text.clone())).ok().flatten()
}
