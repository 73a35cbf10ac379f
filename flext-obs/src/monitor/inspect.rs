//! How the expansion classifies and records a call's value: the `Inspect*` traits (autoref
//! specialization, so the outcome comes from the value's type, never from how the return type is
//! spelled), `fields(...)` values, `ret` and `err`.

use super::call::Call;
use std::fmt;

/// Runs a synchronous body as a closure, so that every exit (a `return` or `?` written by the
/// user or by a macro, and the tail value) comes back here as one value to classify. Always
/// inlined: the closure costs nothing (see the `monitor` benchmark). The `FnOnce` bound is what
/// lets a body move its captures out or return a borrow of them (`Some(slot) => Ok(slot)` from
/// `&mut self`): a closure called in place is inferred `FnMut` and refuses that.
#[doc(hidden)]
#[inline(always)]
#[allow(clippy::inline_always)] // one frame less for every monitored call, also in debug builds
pub fn call_once<R>(body: impl FnOnce() -> R) -> R {
    body()
}

/// A borrowed return value, inspected by the expansion to classify the call. The four
/// `Inspect*` traits are tried in order (autoref specialization): `Result` with a `Display`
/// error, with a `Debug` error, any `Result` or `Option`, anything else.
#[doc(hidden)]
pub struct Inspect<'a, T>(pub &'a T);

impl<T> Clone for Inspect<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Inspect<'_, T> {}
impl<T> fmt::Debug for Inspect<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Inspect")
    }
}

#[doc(hidden)]
pub trait InspectDisplay {
    fn flext_inspect(self, call: &mut Call);
}
#[doc(hidden)]
pub trait InspectDebug {
    fn flext_inspect(self, call: &mut Call);
}
#[doc(hidden)]
pub trait InspectResult {
    fn flext_inspect(self, call: &mut Call);
}
#[doc(hidden)]
pub trait InspectAny {
    fn flext_inspect(self, call: &mut Call);
}

impl<T, E: fmt::Display> InspectDisplay for &&&Inspect<'_, std::result::Result<T, E>> {
    fn flext_inspect(self, call: &mut Call) {
        match self.0 {
            Ok(_) => call.mark_ok(),
            Err(err) => call.note_error(std::any::type_name::<E>(), &|f| fmt::Display::fmt(err, f)),
        }
    }
}
impl<T, E: fmt::Debug> InspectDebug for &&Inspect<'_, std::result::Result<T, E>> {
    fn flext_inspect(self, call: &mut Call) {
        match self.0 {
            Ok(_) => call.mark_ok(),
            Err(err) => call.note_error(std::any::type_name::<E>(), &|f| fmt::Debug::fmt(err, f)),
        }
    }
}
impl<T, E> InspectResult for &Inspect<'_, std::result::Result<T, E>> {
    fn flext_inspect(self, call: &mut Call) {
        match self.0 {
            Ok(_) => call.mark_ok(),
            Err(_) => call.note_error(std::any::type_name::<E>(), &|f| f.write_str(std::any::type_name::<E>())),
        }
    }
}
impl<T> InspectResult for &Inspect<'_, Option<T>> {
    fn flext_inspect(self, call: &mut Call) {
        match self.0 {
            Some(_) => call.mark_ok(),
            None => call.note_none(),
        }
    }
}
impl<T> InspectAny for Inspect<'_, T> {
    fn flext_inspect(self, call: &mut Call) {
        call.mark_ok();
    }
}

/// A `fields(key = value)` value, recorded with its `Display` when it has one, else its `Debug`
/// (autoref specialization, like [`Inspect`]).
#[doc(hidden)]
pub struct Field<'a, T: ?Sized>(pub &'a T);

impl<T: ?Sized> fmt::Debug for Field<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Field")
    }
}

#[doc(hidden)]
pub trait FieldDisplay {
    fn flext_field(self, key: &'static str, call: &mut Call);
}
#[doc(hidden)]
pub trait FieldDebug {
    fn flext_field(self, key: &'static str, call: &mut Call);
}

impl<T: fmt::Display + ?Sized> FieldDisplay for &&Field<'_, T> {
    fn flext_field(self, key: &'static str, call: &mut Call) {
        call.record_field(key, &DisplayText(self.0));
    }
}
impl<T: fmt::Debug + ?Sized> FieldDebug for &Field<'_, T> {
    fn flext_field(self, key: &'static str, call: &mut Call) {
        call.record_field(key, &DebugText(self.0));
    }
}

/// A possibly unsized `Display` value as a `dyn Display`.
struct DisplayText<'a, T: ?Sized>(&'a T);

impl<T: fmt::Display + ?Sized> fmt::Display for DisplayText<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.0, f)
    }
}

/// Shows a value's `Debug` through `Display`.
struct DebugText<'a, T: ?Sized>(&'a T);

impl<T: fmt::Debug + ?Sized> fmt::Display for DebugText<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

/// `ret`: the return value's `Debug` as the span field `return`.
#[doc(hidden)]
pub fn record_ret<T: fmt::Debug + ?Sized>(call: &mut Call, value: &T) {
    if call.is_recording() {
        call.record_field("return", &DebugText(value));
    }
}

/// What `err` can record: the error of a `Result` whose error type implements `Display`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`err` records the error of a function returning `Result<_, E>` with `E: Display`; `{Self}` is not such a Result",
    label = "`err` given here",
    note = "remove `err`, or return a `Result` whose error type implements `std::fmt::Display`"
)]
pub trait ErrorValue {
    /// The error, when the value is one.
    fn error(&self) -> Option<&dyn fmt::Display>;
}

impl<T, E: fmt::Display> ErrorValue for Result<T, E> {
    fn error(&self) -> Option<&dyn fmt::Display> {
        self.as_ref().err().map(|e| e as &dyn fmt::Display)
    }
}

/// `err`: the error's `Display` as the span field `error`, when the call ended as an error.
#[doc(hidden)]
pub fn record_err<V: ErrorValue>(call: &mut Call, value: &V) {
    if let Some(error) = value.error() {
        // A tolerated error (`ok_if`/`error_if` said ok) is not an error anywhere.
        if call.is_error() && call.is_recording() {
            call.record_field("error", error);
        }
    }
}

/// What `ok_if = f` / `error_if = f` take: a function of a borrowed return value.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`ok_if` and `error_if` take a function `fn(&{T}) -> bool`; this one does not fit",
    label = "expected a `fn(&{T}) -> bool`",
    note = "the predicate borrows the return value: `fn is_ok(value: &{T}) -> bool`"
)]
pub trait Predicate<T: ?Sized> {
    /// Applies the predicate.
    fn check(self, value: &T) -> bool;
}

impl<T: ?Sized, F: FnOnce(&T) -> bool> Predicate<T> for F {
    fn check(self, value: &T) -> bool {
        self(value)
    }
}

/// Applies an `ok_if`/`error_if` predicate.
#[doc(hidden)]
#[inline]
pub fn predicate<T: ?Sized, P: Predicate<T>>(predicate: P, value: &T) -> bool {
    predicate.check(value)
}

/// What `none_is_error` applies to: an `Option`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`none_is_error` is for functions returning `Option<_>`; this one returns `{Self}`",
    label = "`none_is_error` given here",
    note = "a `Result`'s `Err` is already an error: remove `none_is_error`"
)]
pub trait OptionValue {}

impl<T> OptionValue for Option<T> {}

/// Checks at compile time that `none_is_error` is on a function returning an `Option`.
#[doc(hidden)]
#[inline]
pub fn expect_option<V: OptionValue>(_value: &V) {}
