//! Monitored calls named at run time, for code that cannot carry the attribute.

use super::call::Call;
use super::site::{CallSite, SiteOptions};
use crate::entity::validate;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, Mutex, PoisonError};

/// Call sites made at run time by [`call`], by name.
static DYNAMIC_SITES: LazyLock<Mutex<HashMap<String, &'static CallSite>>> = LazyLock::new(Mutex::default);
/// Most distinct names [`call`] accepts (each one is a call site that lives for the process).
pub const MAX_DYNAMIC_SITES: usize = 1_000;

/// Starts a monitored call of a block of code named `name`, recording exactly what
/// `#[flext_monitor]` records. The outcome is ok unless [`Call::mark_error`] is called (or the
/// thread panics before the guard is dropped).
pub fn call(name: &str) -> Result<Call> {
    Ok(Call::enter(site_named(name)?))
}

/// Like [`call`], for work that runs as a future: the call's span is not attached to the
/// thread; run the work in [`Call::context`] on every poll (as the HTTP middleware does).
///
/// ```
/// let call = flext_obs::monitor::call_async("GET /orders/{id}")?;
/// let context = call.context(); // attach it around each poll of the work
/// assert!(context.span().is_some());
/// drop(call);
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn call_async(name: &str) -> Result<Call> {
    Ok(Call::enter_async(site_named(name)?))
}

/// The call site of run-time name `name`, made on its first use (at most
/// [`MAX_DYNAMIC_SITES`] names): for callers that start many calls of one name and keep the
/// site, as the HTTP middleware does per route.
#[doc(hidden)]
pub fn site_named(name: &str) -> Result<&'static CallSite> {
    site_named_as(name, crate::SpanKind::Internal)
}

/// Like [`site_named`], the site's spans of `kind` (the first use of a name decides).
#[doc(hidden)]
pub fn site_named_as(name: &str, kind: crate::SpanKind) -> Result<&'static CallSite> {
    validate::text("monitor", "name", name)?;
    if name.len() > validate::MAX_NAME_LEN {
        return Err(Error::invalid("monitor", "name", name, format!("must be at most {} bytes", validate::MAX_NAME_LEN)));
    }
    let site = {
        let mut sites = DYNAMIC_SITES.lock().unwrap_or_else(PoisonError::into_inner);
        match sites.get(name) {
            Some(site) => *site,
            None if sites.len() >= MAX_DYNAMIC_SITES => {
                return Err(Error::invalid(
                    "monitor",
                    "name",
                    name,
                    format!("at most {MAX_DYNAMIC_SITES} distinct names may be monitored with monitor::call"),
                ));
            }
            None => {
                let function: &'static str = Box::leak(name.to_owned().into_boxed_str());
                let site: &'static CallSite = Box::leak(Box::new(CallSite::new(function, "", SiteOptions::DEFAULT.kind(kind))));
                sites.insert(name.to_owned(), site);
                site
            }
        }
    };
    Ok(site)
}

/// Runs `work` as a monitored call named `name`; an `Err` is recorded as an error (alert
/// message: its `Display`) and returned untouched. An invalid name runs `work` unmonitored.
pub fn run<T, E: fmt::Display + 'static>(name: &str, work: impl FnOnce() -> std::result::Result<T, E>) -> std::result::Result<T, E> {
    let mut call = call(name).ok();
    let result = work();
    if let (Some(call), Err(err)) = (call.as_mut(), &result) {
        call.note_error(std::any::type_name::<E>(), &|f| fmt::Display::fmt(err, f));
    }
    drop(call);
    result
}
