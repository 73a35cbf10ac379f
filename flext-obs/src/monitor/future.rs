//! The future of an async monitored call: every poll runs in the call's context (and its
//! `tracing` span), and a panic that starts in a poll is noted on the call, because the
//! executor may catch it and drop the future only later, when nothing is unwinding any more.

use super::call::Call;
use crate::context::{FutureExt as _, WithContext};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

#[cfg(feature = "tracing")]
type Inner<F> = WithContext<tracing::instrument::Instrumented<F>>;
#[cfg(not(feature = "tracing"))]
type Inner<F> = WithContext<F>;

pin_project_lite::pin_project! {
    /// An async call's body, run in the call (see [`run_in`]).
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Monitored<'a, F> {
        #[pin]
        inner: Inner<F>,
        call: &'a mut Call,
    }
}

impl<F> std::fmt::Debug for Monitored<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitored").field("call", &self.call).finish_non_exhaustive()
    }
}

/// Runs an async call's body in `call`: its context on every poll, and its panics noted.
#[doc(hidden)]
pub fn run_in<F: Future>(future: F, call: &mut Call) -> Monitored<'_, F> {
    let context = call.context();
    #[cfg(feature = "tracing")]
    let future = tracing::Instrument::instrument(future, call.tracing_span());
    Monitored { inner: future.with_context(context), call }
}

/// Runs the statements a plain function executes before returning its future (and makes the
/// future), noting a panic among them on the call.
#[doc(hidden)]
#[inline]
pub fn creating<R>(call: &mut Call, make: impl FnOnce() -> R) -> R {
    let unwind = UnwindGuard::new(call);
    let future = make();
    drop(unwind);
    future
}

impl<F: Future> Future for Monitored<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let unwind = UnwindGuard::new(this.call);
        let poll = this.inner.poll(cx);
        drop(unwind);
        poll
    }
}

/// Notes a panic on the call when dropped while a panic that began during the poll unwinds.
struct UnwindGuard<'g> {
    call: &'g mut Call,
    panicking_before: bool,
    /// The thread's panic number before the poll, so only a panic that began in it is named.
    panics_before: u64,
}

impl<'g> UnwindGuard<'g> {
    fn new(call: &'g mut Call) -> Self {
        UnwindGuard { call, panicking_before: std::thread::panicking(), panics_before: super::panic::current_number() }
    }
}

impl Drop for UnwindGuard<'_> {
    fn drop(&mut self) {
        if !self.panicking_before && std::thread::panicking() {
            self.call.note_panic(self.panics_before);
        }
    }
}
