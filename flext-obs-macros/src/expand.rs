//! Turns a validated function or impl block into its monitored form.
//!
//! The expansion adds a `static` call site and a guard to each function and calls into
//! `flext_obs::__private` for everything else. A synchronous body stays inline: its `return`
//! values and `?` operands are inspected where they leave the function, so the body keeps its
//! meaning without a closure. An async body is wrapped so that every poll runs in the call's
//! context.

use crate::error::Errors;
use crate::parse::{self, Args};
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Block, Expr, ImplItem, ItemFn, ItemImpl, ReturnType, Signature, Type, parse_quote_spanned};

/// What the expansion needs to know about one function besides its signature and body.
struct Site<'a> {
    args: &'a Args,
    function: String,
    default_service: Option<String>,
}

/// `#[flext_monitor]` on a free function, method or associated function.
pub(crate) fn function(args: &Args, mut item: ItemFn, errors: &mut Errors) -> TokenStream {
    check_signature(&item.sig, errors);
    if !errors.is_empty() || args.skip {
        return item.into_token_stream();
    }
    let function = args.name.as_ref().map_or_else(|| unraw(&item.sig.ident), syn::LitStr::value);
    let site = Site { args, function, default_service: None };
    item.block = Box::new(body(&site, &item.sig, *item.block));
    item.into_token_stream()
}

/// `#[flext_monitor]` on an impl block: every method, with per-method overrides and `skip`.
/// The methods' own `#[flext_monitor(...)]` markers are removed from the output.
pub(crate) fn impl_block(args: &Args, mut item: ItemImpl, errors: &mut Errors) -> TokenStream {
    let type_name = type_name(&item.self_ty);
    let mut plans: Vec<Option<Args>> = Vec::with_capacity(item.items.len());
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            plans.push(None);
            continue;
        };
        let mut own = Args::default();
        let mut markers = 0;
        method.attrs.retain(|attr| {
            let marker = parse::is_marker(attr);
            if marker {
                markers += 1;
                own = parse::marker_args(attr, errors);
            }
            !marker
        });
        if markers > 1 {
            errors.push(syn::Error::new(method.sig.ident.span(), "more than one #[flext_monitor] on this method"));
        }
        let merged = args.merged(own);
        if merged.skip {
            plans.push(None);
            continue;
        }
        check_signature(&method.sig, errors);
        plans.push(Some(merged));
    }
    if !errors.is_empty() || args.skip {
        return item.into_token_stream();
    }
    for (impl_item, plan) in item.items.iter_mut().zip(plans) {
        let (ImplItem::Fn(method), Some(method_args)) = (impl_item, plan) else { continue };
        let function = method_args.name.as_ref().map_or_else(|| format!("{type_name}::{}", unraw(&method.sig.ident)), syn::LitStr::value);
        let site = Site { args: &method_args, function, default_service: Some(type_name.clone()) };
        let block = std::mem::replace(&mut method.block, syn::parse_quote!({}));
        method.block = body(&site, &method.sig, block);
    }
    item.into_token_stream()
}

fn unraw(ident: &syn::Ident) -> String {
    let name = ident.to_string();
    name.strip_prefix("r#").map_or_else(|| name.clone(), str::to_owned)
}

fn type_name(ty: &Type) -> String {
    match ty {
        Type::Path(p) => p.path.segments.last().map_or_else(|| "Self".to_owned(), |s| unraw(&s.ident)),
        Type::Reference(r) => type_name(&r.elem),
        Type::Group(g) => type_name(&g.elem),
        Type::Paren(p) => type_name(&p.elem),
        _ => "Self".to_owned(),
    }
}

/// Refuses what cannot be monitored, pointing at the offending token.
fn check_signature(sig: &Signature, errors: &mut Errors) {
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new(constness.span, "#[flext_monitor] cannot monitor a `const fn`: recording happens at run time"));
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        if ty.to_token_stream().to_string().contains("'async_trait") {
            errors.push(syn::Error::new(
                ty.span(),
                "#[flext_monitor] must be placed above #[async_trait] (so that it sees the `async fn` before #[async_trait] rewrites it)",
            ));
        }
    }
}

/// The monitored body of one function.
fn body(site: &Site<'_>, sig: &Signature, block: Block) -> Block {
    let krate = site.args.krate.clone().unwrap_or_else(|| syn::parse_quote!(::flext_obs));
    let private = quote!(#krate::__private);
    let function = &site.function;
    let options = options(site, sig, &private);
    // Our locals are hygienic (mixed-site): the user's body can neither see nor shadow them.
    let span = Span::mixed_site();
    let call = format_ident!("__flext_call", span = span);
    let ret = format_ident!("__flext_ret", span = span);
    // The static lives in its own block, so the user's body cannot see (or be shadowed by) it.
    let enter = |method: TokenStream| {
        quote_spanned! {span=> {
            static __FLEXT_SITE: #private::CallSite = #private::CallSite::new(#function, ::core::module_path!(), #options);
            #private::Call::#method(&__FLEXT_SITE)
        }}
    };
    let ret_ty = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(ty.as_ref()),
    };
    let never = matches!(ret_ty, Some(Type::Never(_)));
    let unit = ret_ty.is_none() || matches!(ret_ty, Some(Type::Tuple(t)) if t.elems.is_empty());
    let annotation = ret_ty.and_then(annotation);
    let inspect = inspect_tokens(site, &private, &call, &ret);

    if sig.asyncness.is_some() {
        let annotation = annotation.map(|ty| quote!(: #ty));
        let enter = enter(quote!(enter_async));
        return parse_quote_spanned! {span=> {
            #[allow(unused_imports)]
            use #private::{InspectAny as _, InspectDebug as _, InspectDisplay as _, InspectResult as _};
            let mut #call = #enter;
            let #ret #annotation = #private::run_in(async move #block, &#call).await;
            #inspect
            #ret
        }};
    }
    let enter = enter(quote!(enter));
    if unit || never {
        return parse_quote_spanned! {span=> {
            let #call = #enter;
            #block
        }};
    }
    let mut block = block;
    ExitRewriter { inspect: &inspect, call: &call, private: &private, annotation: annotation.as_ref() }.visit_block_mut(&mut block);
    let annotation = annotation.map(|ty| quote!(: #ty));
    parse_quote_spanned! {span=> {
        #[allow(unused_imports)]
        use #private::{InspectAny as _, InspectDebug as _, InspectDisplay as _, InspectResult as _};
        let mut #call = #enter;
        // A body that only panics (`todo!()`) is a diverging initializer: fine here.
        #[allow(clippy::diverging_sub_expression)]
        let #ret #annotation = #block;
        #[allow(unreachable_code)]
        {
            #inspect
            return #ret;
        }
    }}
}

/// The `SiteOptions` expression for this function.
fn options(site: &Site<'_>, sig: &Signature, private: &TokenStream) -> TokenStream {
    let args = site.args;
    let mut options = quote!(#private::SiteOptions::DEFAULT);
    if let Some(service) = args.service.as_ref().map(syn::LitStr::value).or_else(|| site.default_service.clone()) {
        options.extend(quote!(.service(#service)));
    }
    if let Some(severity) = &args.severity {
        options.extend(quote!(.severity(#private::Severity::#severity)));
    }
    if args.alert == Some(false) {
        options.extend(quote!(.no_alert()));
    }
    if args.none_is_error {
        options.extend(quote!(.none_is_error()));
    }
    let unseen = if sig.asyncness.is_some() {
        Some(quote!(Cancelled))
    } else if returns_result(sig) {
        Some(quote!(Error))
    } else {
        None
    };
    if let Some(outcome) = unseen {
        options.extend(quote!(.unseen_exit(#private::Outcome::#outcome)));
    }
    if !args.labels.is_empty() {
        let pairs = args.labels.iter().map(|(k, v)| quote!((#k, #v)));
        options.extend(quote!(.labels(&[#(#pairs),*])));
    }
    options
}

/// Whether the return type looks like a `Result` (`Result`, `io::Result`, `MyResult`, ...): then
/// an exit the expansion could not inspect (a `?` inside a macro call) was an error.
fn returns_result(sig: &Signature) -> bool {
    match &sig.output {
        ReturnType::Type(_, ty) => match ty.as_ref() {
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident.to_string().ends_with("Result")),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

/// The type to annotate the return value with: the declared type, with `impl Trait` replaced by
/// `_`; `None` when the whole type is `impl Trait`.
fn annotation(ty: &Type) -> Option<Type> {
    struct InferImpl;
    impl VisitMut for InferImpl {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if matches!(ty, Type::ImplTrait(_)) {
                *ty = Type::Infer(syn::TypeInfer { underscore_token: <syn::Token![_]>::default() });
            } else {
                syn::visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    if matches!(ty, Type::ImplTrait(_)) {
        return None;
    }
    let mut ty = ty.clone();
    InferImpl.visit_type_mut(&mut ty);
    Some(ty)
}

/// Inspects `value` (already bound) and applies `ok_if`/`error_if`.
fn inspect_tokens(site: &Site<'_>, private: &TokenStream, call: &syn::Ident, value: &syn::Ident) -> TokenStream {
    let span = Span::mixed_site();
    let mut tokens = quote_spanned! {span=> (&&&#private::Inspect(&#value)).flext_inspect(&mut #call); };
    if let Some(path) = &site.args.ok_if {
        tokens.extend(quote_spanned! {span=> #call.note_verdict(!#path(&#value), "ok_if"); });
    }
    if let Some(path) = &site.args.error_if {
        tokens.extend(quote_spanned! {span=> #call.note_verdict(#path(&#value), "error_if"); });
    }
    tokens
}

/// Inspects the values that leave a synchronous function early: `return` values and `?`
/// operands. Closures, async blocks and nested items keep their own exits and are not entered.
struct ExitRewriter<'a> {
    inspect: &'a TokenStream,
    call: &'a syn::Ident,
    private: &'a TokenStream,
    annotation: Option<&'a Type>,
}

impl VisitMut for ExitRewriter<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(_) | Expr::Async(_) | Expr::TryBlock(_) | Expr::Const(_) => {}
            Expr::Return(ret) => {
                syn::visit_mut::visit_expr_return_mut(self, ret);
                if let Some(value) = ret.expr.take() {
                    let span = Span::mixed_site();
                    let v = format_ident!("__flext_ret", span = span);
                    let inspect = self.inspect;
                    let annotation = self.annotation.map(|ty| quote!(: #ty));
                    ret.expr = Some(parse_quote_spanned! {value.span()=> { let #v #annotation = #value; #inspect #v } });
                }
            }
            Expr::Try(try_expr) => {
                syn::visit_mut::visit_expr_try_mut(self, try_expr);
                let span = Span::mixed_site();
                let v = format_ident!("__flext_try", span = span);
                let (call, private) = (self.call, self.private);
                let operand = &try_expr.expr;
                try_expr.expr = parse_quote_spanned! {operand.span()=>
                    { let #v = #operand; (&&&#private::Inspect(&#v)).flext_inspect(&mut #call); #v }
                };
            }
            _ => syn::visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_item_mut(&mut self, _item: &mut syn::Item) {}
}
