//! The `#[flext_monitor]` attribute of [flext-obs](https://docs.rs/flext-obs). Use it through
//! `flext_obs::flext_monitor`; the expansion calls into `flext_obs::__private`.
//!
//! The attribute goes on a function (sync or `async`, free, method or associated) or on an
//! `impl` block (every method, `function` label `Type::method`, `service_name` the type's name).
//! Its options are documented on `flext_obs::flext_monitor`.
//!
//! Parse (`parse.rs`) -> validate (while parsing; every error collected) -> expand
//! (`expand.rs`). When anything is wrong, the item is emitted unchanged next to the errors, so
//! the user sees our error and not a cascade of follow-on ones.

mod error;
mod expand;
mod parse;

use proc_macro::TokenStream;

/// Monitors a function or every method of an impl block. See `flext_obs::flext_monitor`.
#[proc_macro_attribute]
pub fn flext_monitor(args: TokenStream, item: TokenStream) -> TokenStream {
    let original: proc_macro2::TokenStream = item.into();
    let mut errors = error::Errors::default();
    let args = parse::Args::parse(args.into(), &mut errors);
    let parsed = match syn::parse2::<syn::Item>(original.clone()) {
        Ok(parsed) => parsed,
        Err(err) => {
            errors.push(err);
            return with_errors(errors, original);
        }
    };
    let expanded = match parsed {
        syn::Item::Fn(item) => expand::function(&args, item, &mut errors),
        syn::Item::Impl(item) => expand::impl_block(&args, item, &mut errors),
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
