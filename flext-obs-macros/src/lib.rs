//! The `#[flext_monitor]` attribute of [flext-obs](https://docs.rs/flext-obs). Use it through
//! `flext_obs::flext_monitor`; the expansion calls into `flext_obs::__private`.
//!
//! The attribute goes on a function (sync or `async`, free, method or associated) or on an
//! `impl` block (every method, `function` label `Type::method`).
//! Its options are documented on `flext_obs::flext_monitor`.
//!
//! Parse (`parse.rs`) -> validate (while parsing; every error collected) -> expand
//! (`expand.rs`). When anything is wrong, the item is emitted unchanged next to the errors, so
//! the user sees our error and not a cascade of follow-on ones.

mod error;
mod expand;
#[cfg(test)]
mod expansion_size;
mod parse;

use proc_macro::TokenStream;

/// Monitors a function, or every method of an impl block.
///
/// Every call records, in the process-wide store (`flext_obs::global()`):
/// `function_calls_total{function, module, service_name, caller_function, caller_module,
/// result}` with `result` = `ok` | `error` (a panic is an error, also counted in
/// `flext_function_panics_total`), the duration histogram
/// `function_calls_duration_seconds`, the in-flight gauge `function_calls_concurrent`, a span
/// in `flext_obs::trace` (trace ID from the current context or new, parent = the enclosing
/// span) and, on an error or a panic, an alert in `flext_obs::alert`. The function's body,
/// signature and return value are unchanged; a panic keeps unwinding.
///
/// Every exit is classified by its value, never by how the return type is spelled: a `return`
/// or `?` written by the user or by a macro (`anyhow::bail!`, a `?` inside `format!`), and the
/// tail value. An `Err` of any `Result` (under any alias) is an error; `None` only with
/// `none_is_error`; anything else is ok. A call counts as panicked only if the panic started
/// during it.
///
/// ```
/// type Fallible<T> = Result<T, String>;
/// macro_rules! fail { ($m:expr) => { return Err($m.to_owned()) }; }
///
/// #[flext_obs::flext_monitor]
/// fn reserve(qty: u32) -> Fallible<u32> {
///     if qty == 0 { fail!("nothing to reserve"); }
///     Ok(qty)
/// }
/// let _ = reserve(0);
/// let snapshot = flext_obs::global().snapshot();
/// assert_eq!(snapshot.sum("function_calls_total", &[("function", "reserve"), ("result", "error")]), 1.0);
/// assert!(flext_obs::alert::recent().iter().any(|a| a.message() == "nothing to reserve"));
/// ```
///
/// ```
/// use flext_obs::flext_monitor;
///
/// #[flext_monitor]
/// fn parse_port(text: &str) -> Result<u16, std::num::ParseIntError> {
///     let port = text.trim().parse()?;
///     Ok(port)
/// }
///
/// assert_eq!(parse_port("8080"), Ok(8080));
/// assert!(parse_port("http").is_err());
/// let alerts = flext_obs::alert::recent();
/// assert_eq!(alerts[0].message(), "invalid digit found in string"); // the error's Display
/// ```
///
/// # Where it goes
/// Free functions, methods and associated functions, `async fn` (each poll runs in the call's
/// context), `unsafe fn`, generic functions, `impl Trait` arguments and returns, every `self`
/// form. On an `impl` block it monitors every method as `Type::method`; a method can carry its own `#[flext_monitor(...)]` to override options, or
/// `#[flext_monitor(skip)]`. With `#[async_trait]`, put `#[flext_monitor]` above it.
///
/// ```
/// use flext_obs::flext_monitor;
///
/// struct Orders;
///
/// #[flext_monitor]
/// impl Orders {
///     fn place(&self, qty: u32) -> Result<u32, String> {
///         if qty == 0 { Err("empty order".into()) } else { Ok(qty) }
///     }
///
///     async fn ship(&self, id: u32) -> Option<u32> {
///         Some(id)
///     }
///
///     #[flext_monitor(skip)]
///     fn helper(&self) {}
/// }
///
/// Orders.place(2).unwrap();
/// let snapshot = flext_obs::global().snapshot();
/// assert!(snapshot.series.iter().any(|s| s.labels.get("function").is_some_and(|f| f == "Orders::place")));
/// ```
///
/// # Options
/// `name = "..."` replaces the `function` label:
/// ```
/// #[flext_obs::flext_monitor(name = "checkout_total")]
/// fn total(items: &[u32]) -> u32 { items.iter().sum() }
/// assert_eq!(total(&[1, 2]), 3);
/// assert!(flext_obs::trace::recent_spans().iter().any(|s| s.name() == "checkout_total"));
/// ```
/// `service = "..."` overrides the `service_name` label for this function only (by default every
/// series of a process carries the one configured service name, as the Autometrics
/// specification asks; an impl block does not change it):
/// ```
/// #[flext_obs::flext_monitor(service = "billing")]
/// fn invoice() {}
/// invoice();
/// ```
/// `objective = PATH` attaches a `flext_obs::slo::Objective` (a `const` or `static`): its labels go
/// on the calls counter (success rate) and the duration histogram (latency), on one function or
/// every method of an impl block:
/// ```
/// use flext_obs::slo::{Latency, Objective, Percentile};
/// const CHECKOUT: Objective = Objective::new("checkout").success_rate(Percentile::P99).latency(Latency::Ms250, Percentile::P95);
/// #[flext_obs::flext_monitor(objective = CHECKOUT)]
/// fn checkout() -> Result<(), String> { Ok(()) }
/// checkout().unwrap();
/// let snapshot = flext_obs::global().snapshot();
/// let histogram = snapshot.series("function_calls_duration_seconds", &[("function", "checkout")]).next().unwrap();
/// assert_eq!(histogram.labels["objective_latency_threshold"], "0.25");
/// ```
/// `severity = "low" | "medium" | "high" | "critical" | "emergency"` is the alerts' severity
/// (default `high`); `alert = false` records errors without raising alerts:
/// ```
/// #[flext_obs::flext_monitor(severity = "critical")]
/// fn pay() -> Result<(), String> { Err("gateway down".into()) }
/// #[flext_obs::flext_monitor(alert = false)]
/// fn probe() -> Result<(), String> { Err("expected".into()) }
/// let _ = pay();
/// let _ = probe();
/// let alerts = flext_obs::alert::recent();
/// assert!(alerts.iter().any(|a| a.source_function() == Some("pay") && a.severity() == flext_obs::Severity::Critical));
/// assert!(!alerts.iter().any(|a| a.source_function() == Some("probe")));
/// ```
/// `none_is_error` counts `Option::None` as an error (by default it is not):
/// ```
/// #[flext_obs::flext_monitor(none_is_error)]
/// fn find(id: u32) -> Option<u32> { (id == 1).then_some(1) }
/// assert_eq!(find(2), None);
/// assert_eq!(flext_obs::alert::recent()[0].message(), "returned None");
/// ```
/// `ok_if = path` / `error_if = path` classify any return type with a `fn(&T) -> bool`; they
/// decide first, so a tolerated `Err` is ok everywhere (counter, span status, no alert):
/// ```
/// fn is_success(status: &u16) -> bool { (200..300).contains(status) }
/// #[flext_obs::flext_monitor(ok_if = is_success, severity = "medium")]
/// fn fetch() -> u16 { 404 }
/// assert_eq!(fetch(), 404); // returned untouched, counted as an error
/// let alert = flext_obs::alert::recent().into_iter().find(|a| a.source_function() == Some("fetch")).unwrap();
/// assert_eq!(alert.message(), "the result was classified as an error by `ok_if`");
/// ```
/// ```
/// fn is_server_error(status: &u16) -> bool { *status >= 500 }
/// #[flext_obs::flext_monitor(error_if = is_server_error)]
/// fn handle() -> u16 { 503 }
/// assert_eq!(handle(), 503); // returned untouched, counted as an error
/// assert!(flext_obs::alert::recent().iter().any(|a| a.source_function() == Some("handle")));
/// ```
/// `labels(key = "value", ...)` adds static labels to every series of the function:
/// ```
/// #[flext_obs::flext_monitor(labels(team = "payments", tier = "1"))]
/// fn refund() {}
/// refund();
/// let snapshot = flext_obs::global().snapshot();
/// assert!(snapshot.series.iter().any(|s| s.labels.get("team").is_some_and(|t| t == "payments")));
/// ```
/// `fields(key = value, ...)` records values from the arguments on the call's span (and its
/// `tracing` span) on entry, only when the span is kept or a subscriber listens; `key = %value`
/// uses `Display`, `key = ?value` `Debug`, plain `key = value` `Display` when there is one, else
/// `Debug`:
/// ```
/// #[flext_obs::flext_monitor(fields(user = user_id, tags = ?tags))]
/// fn greet(user_id: u32, tags: &[&str]) -> usize { tags.len() }
/// greet(7, &["new"]);
/// let span = flext_obs::trace::recent_spans().into_iter().rev().find(|s| s.name() == "greet").unwrap();
/// assert_eq!(span.attributes()["user"], "7");
/// assert_eq!(span.attributes()["tags"], "[\"new\"]");
/// ```
/// `ret` records the return value's `Debug` as the span field `return`; `err` records the
/// error's `Display` as `error` when the call ended as an error:
/// ```
/// #[flext_obs::flext_monitor(ret, err)]
/// fn half(n: u32) -> Result<u32, String> { if n % 2 == 0 { Ok(n / 2) } else { Err(format!("{n} is odd")) } }
/// let _ = half(4);
/// let _ = half(3);
/// let spans: Vec<_> = flext_obs::trace::recent_spans().into_iter().filter(|s| s.name() == "half").collect();
/// assert!(spans.iter().any(|s| s.attributes().get("return").is_some_and(|r| r == "Ok(2)")));
/// assert!(spans.iter().any(|s| s.attributes().get("error").is_some_and(|e| e == "3 is odd")));
/// ```
/// `skip` leaves a function (or a method of a monitored impl block) alone:
/// ```
/// #[flext_obs::flext_monitor(skip)]
/// fn untouched() -> u8 { 1 }
/// assert_eq!(untouched(), 1);
/// ```
/// `crate = path` names flext-obs when it is re-exported by another crate:
/// ```
/// mod reexport {
///     pub use flext_obs::{__private, flext_monitor};
/// }
/// #[reexport::flext_monitor(crate = crate::reexport)]
/// fn through() -> u8 { 2 }
/// # fn main() {
/// assert_eq!(through(), 2);
/// # }
/// ```
///
/// A plain function whose body ends in an `async` block (`-> impl Future`, or
/// `Box::pin(async move { .. })`) is monitored until that future completes, like an `async fn`.
///
/// # Errors at compile time
/// Unknown or repeated options, a misspelt severity, an invalid function, label or field name,
/// `const fn`, `#[track_caller]`, `name`/`fields`/`ret`/`err` on an impl block, `ok_if`/
/// `error_if`/`ret`/`err` on a function returning `()`, `none_is_error` on a non-`Option`, a
/// predicate of the wrong signature, a declaration without a body, the `= "..."` form and the
/// attribute on anything but a function or impl block (a closure: use `flext_obs::monitor::run`)
/// are compile errors that point at the offending token and say what to write instead; the item
/// is then emitted unchanged, so only that error shows.
///
/// ```compile_fail
/// #[flext_obs::flext_monitor(severity = "error")] // unknown severity "error": expected one of ...
/// fn f() {}
/// ```
///
/// With the `disable-monitoring` feature of `flext-obs`, the attribute checks its arguments and
/// emits the item unchanged; at run time `flext_obs::monitor::set_enabled` switches monitoring
/// off for the cost of one relaxed load per call.
#[proc_macro_attribute]
pub fn flext_monitor(args: TokenStream, item: TokenStream) -> TokenStream {
    let original: proc_macro2::TokenStream = item.into();
    let mut errors = error::Errors::default();
    let args = parse::Args::parse(args.into(), &mut errors);
    let parsed = match syn::parse2::<syn::Item>(original.clone()) {
        Ok(parsed) => parsed,
        Err(err) => {
            errors.push(not_an_item(&original).unwrap_or(err));
            return with_errors_in_expression(errors, original);
        }
    };
    let expanded = match parsed {
        syn::Item::Fn(item) => expand::function(&args, item, &mut errors),
        syn::Item::Impl(item) => expand::impl_block(&args, item, &mut errors),
        syn::Item::Verbatim(tokens) if syn::parse2::<syn::ForeignItemFn>(tokens.clone()).is_ok() => {
            let declaration = syn::parse2::<syn::ForeignItemFn>(tokens).unwrap_or_else(|_| unreachable!("parsed just above"));
            errors.push(syn::Error::new(
                declaration.sig.ident.span(),
                "#[flext_monitor] needs a function body to monitor, and this declaration has none (a trait method without a default body, or a function in an `extern` block): put #[flext_monitor] on the method in each `impl` of the trait (or on those impl blocks), or on a Rust function that calls the foreign one",
            ));
            original.clone()
        }
        other => {
            let kind = match &other {
                syn::Item::Struct(_) => "a struct",
                syn::Item::Enum(_) => "an enum",
                syn::Item::Trait(_) => "a trait definition (put it on the trait's impl blocks)",
                syn::Item::Mod(_) => "a module",
                syn::Item::Const(_) => "a const",
                syn::Item::Static(_) => "a static",
                _ => "this item",
            };
            errors.push(syn::Error::new(
                parse::item_span(&other),
                format!("#[flext_monitor] goes on a function or an impl block, not on {kind}"),
            ));
            original.clone()
        }
    };
    if !errors.is_empty() {
        // Impl blocks come back with their method markers removed, so no error repeats.
        return with_errors(errors, expanded_or(original, expanded));
    }
    if cfg!(feature = "disable-monitoring") {
        return strip_markers(original).into();
    }
    expanded.into()
}

fn expanded_or(original: proc_macro2::TokenStream, expanded: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    if expanded.is_empty() { original } else { expanded }
}

/// A precise error for input that is not an item: a closure (or a statement holding one), which
/// the attribute cannot go on.
fn not_an_item(original: &proc_macro2::TokenStream) -> Option<syn::Error> {
    let closure = match syn::parse2::<syn::Stmt>(original.clone()) {
        Ok(syn::Stmt::Local(local)) => local.init.map(|init| *init.expr),
        Ok(syn::Stmt::Expr(expr, _)) => Some(expr),
        _ => syn::parse2::<syn::Expr>(original.clone()).ok(),
    }?;
    let syn::Expr::Closure(closure) = closure else { return None };
    Some(syn::Error::new(
        closure.or1_token.span,
        "#[flext_monitor] goes on a function or an impl block, not on a closure: monitor a closure's work with `flext_obs::monitor::run(\"name\", || ...)` (for a `Result`) or `flext_obs::monitor::call(\"name\")`",
    ))
}

/// The errors, then the input unchanged, in a block: the input may be an expression (a closure),
/// where the errors cannot stand next to it.
fn with_errors_in_expression(errors: error::Errors, input: proc_macro2::TokenStream) -> TokenStream {
    let errors = errors.into_compile_errors();
    if syn::parse2::<syn::Expr>(input.clone()).is_ok() {
        return quote::quote!({ #errors #input }).into();
    }
    let mut out = errors;
    out.extend(input);
    out.into()
}

fn with_errors(errors: error::Errors, item: proc_macro2::TokenStream) -> TokenStream {
    let mut out = errors.into_compile_errors();
    out.extend(item);
    out.into()
}

/// The item as written, minus the methods' `#[flext_monitor]` markers (with monitoring compiled
/// out they must not expand on their own).
fn strip_markers(item: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    match syn::parse2::<syn::ItemImpl>(item.clone()) {
        Ok(mut block) => {
            for impl_item in &mut block.items {
                if let syn::ImplItem::Fn(method) = impl_item {
                    method.attrs.retain(|attr| !parse::is_marker(attr));
                }
            }
            quote::ToTokens::into_token_stream(block)
        }
        Err(_) => item,
    }
}
