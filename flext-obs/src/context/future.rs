//! Carrying a [`Context`] through a future's polls.

use super::{Context, current, swap};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

pin_project_lite::pin_project! {
    /// A future that runs every poll in its own context (see [`FutureExt`]).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct WithContext<F> {
        #[pin]
        inner: F,
        context: Context,
    }
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // The task's context is swapped in for the poll and swapped back out afterwards (also
        // on unwind), so changes made inside the task persist to its next poll and never leak
        // into whatever the executor thread runs next.
        let mut guard = PollGuard { saved: this.context, previous: None };
        guard.previous = Some(swap(std::mem::take(guard.saved)));
        this.inner.poll(cx)
    }
}

struct PollGuard<'a> {
    saved: &'a mut Context,
    previous: Option<Context>,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            *self.saved = swap(previous);
        }
    }
}

/// Carries a [`Context`] across `.await` points and executor threads.
///
/// ```
/// use flext_obs::context::{self, FutureExt};
/// let id = flext_obs::CorrelationId::new();
/// let task = context::with_correlation_id(id, || async { context::current().correlation_id() }.with_current_context());
/// // polled anywhere, later: the task still sees its ID
/// let seen = futures_lite_block_on(task);
/// assert_eq!(seen, Some(id));
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// ```
pub trait FutureExt: Future + Sized {
    /// Runs the future in `context`.
    fn with_context(self, context: Context) -> WithContext<Self> {
        WithContext { inner: self, context }
    }

    /// Runs the future in the context current now (the usual call before `tokio::spawn`).
    fn with_current_context(self) -> WithContext<Self> {
        self.with_context(current())
    }
}

impl<F: Future> FutureExt for F {}
