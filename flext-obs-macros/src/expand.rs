//! Turns a validated function or impl block into its monitored form.
//!
//! The expansion adds a `static` call site and a guard to each function and calls into
//! `flext_obs::__private` for everything else. Every exit is seen as a value:
//! - a synchronous body that returns something runs as an immediately called closure
//!   (`__private::call_once`), so a `return` or `?` written by the user *or by a macro*
//!   (`anyhow::bail!`, a `?` inside `format!`) comes back as the closure's value, and the value
//!   is classified by its type (autoref specialization in `__private::Inspect`), never by how
//!   the return type is spelled;
//! - an `async fn` body, and the `async` block a plain function returns (`fn f() -> impl
//!   Future` ending in `async move { .. }`, or `Box::pin(async move { .. })`), are awaited inside
//!   the call, so the call lasts until the future completes;
//! - a body returning `()` or `!` stays inline: there is nothing to classify.

use crate::error::Errors;
use crate::parse::{self, Args, FieldFormat};
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Block, Expr, ImplItem, ItemFn, ItemImpl, ReturnType, Signature, Stmt, Type};

/// What the expansion needs to know about one function besides its signature and body.
struct Site<'a> {
    args: &'a Args,
    function: String,
}

/// `#[flext_monitor]` on a free function, method or associated function.
pub(crate) fn function(args: &Args, mut item: ItemFn, errors: &mut Errors) -> TokenStream {
    check_signature(&item.sig, &item.attrs, args, errors);
    if !errors.is_empty() || args.skip {
        return item.into_token_stream();
    }
    let function = args.name.as_ref().map_or_else(|| unraw(&item.sig.ident), syn::LitStr::value);
    let site = Site { args, function };
    item.block = Box::new(body(&site, &item.sig, *item.block));
    item.into_token_stream()
}

/// `#[flext_monitor]` on an impl block: every method, with per-method overrides and `skip`.
/// The methods' own `#[flext_monitor(...)]` markers are removed from the output.
pub(crate) fn impl_block(args: &Args, mut item: ItemImpl, errors: &mut Errors) -> TokenStream {
    check_impl_args(args, errors);
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
        check_signature(&method.sig, &method.attrs, &merged, errors);
        plans.push(Some(merged));
    }
    if !errors.is_empty() || args.skip {
        return item.into_token_stream();
    }
    for (impl_item, plan) in item.items.iter_mut().zip(plans) {
        let (ImplItem::Fn(method), Some(method_args)) = (impl_item, plan) else { continue };
        let function = method_args.name.as_ref().map_or_else(|| format!("{type_name}::{}", unraw(&method.sig.ident)), syn::LitStr::value);
        let site = Site { args: &method_args, function };
        let block = std::mem::replace(&mut method.block, syn::parse_quote!({}));
        method.block = body(&site, &method.sig, block);
    }
    item.into_token_stream()
}

/// Options that name or read one function cannot go on a whole impl block.
fn check_impl_args(args: &Args, errors: &mut Errors) {
    if let Some(name) = &args.name {
        errors.push(syn::Error::new(
            name.span(),
            "`name` on an impl block would give every method the same name; put `#[flext_monitor(name = \"...\")]` on the method instead",
        ));
    }
    if let Some(span) = args.fields_span {
        errors.push(syn::Error::new(
            span,
            "`fields` reads one function's arguments; put `#[flext_monitor(fields(...))]` on the method instead",
        ));
    }
    for (span, option) in [(args.ret, "ret"), (args.err, "err")] {
        if let Some(span) = span {
            errors.push(syn::Error::new(span, format!("`{option}` goes on a method, not on the impl block: `#[flext_monitor({option})]`")));
        }
    }
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

/// Whether the declared return type is `()` (written or implied).
fn returns_unit(sig: &Signature) -> bool {
    match &sig.output {
        ReturnType::Default => true,
        ReturnType::Type(_, ty) => matches!(ty.as_ref(), Type::Tuple(t) if t.elems.is_empty()),
    }
}

/// Refuses what cannot be monitored, pointing at the offending token.
fn check_signature(sig: &Signature, attrs: &[syn::Attribute], args: &Args, errors: &mut Errors) {
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
    if let Some(attr) = attrs.iter().find(|a| a.path().is_ident("track_caller")) {
        errors.push(syn::Error::new(
            attr.path().span(),
            "#[flext_monitor] runs the body inside the call's guard, which would hide the caller's location from `#[track_caller]`; remove one of the two",
        ));
    }
    if returns_unit(sig) {
        let what = "this function returns `()`";
        if let Some(path) = &args.ok_if {
            errors.push(syn::Error::new(path.span(), format!("`ok_if` classifies the return value, but {what}: remove `ok_if`")));
        }
        if let Some(path) = &args.error_if {
            errors.push(syn::Error::new(path.span(), format!("`error_if` classifies the return value, but {what}: remove `error_if`")));
        }
        if let Some(span) = args.none_is_error {
            errors.push(syn::Error::new(span, format!("`none_is_error` is for functions returning `Option`, but {what}")));
        }
        if let Some(span) = args.ret {
            errors.push(syn::Error::new(span, format!("`ret` records the return value, but {what}: remove `ret`")));
        }
        if let Some(span) = args.err {
            errors.push(syn::Error::new(span, format!("`err` records the error of a `Result`, but {what}: remove `err`")));
        }
    }
}

/// The monitored body of one function.
fn body(site: &Site<'_>, sig: &Signature, block: Block) -> Block {
    let krate = site.args.krate.clone().unwrap_or_else(|| syn::parse_quote!(::flext_obs));
    let private = quote!(#krate::__private);
    let function = &site.function;
    let sync_options = options(site, &private, false);
    let future_options = options(site, &private, true);
    // Our locals are hygienic (mixed-site): the user's body can neither see nor shadow them.
    let span = Span::mixed_site();
    let call = format_ident!("__flext_call", span = span);
    let ret = format_ident!("__flext_ret", span = span);
    // The static lives in its own block, so the user's body cannot see (or be shadowed by) it.
    let enter = |method: TokenStream, options: &Option<TokenStream>| {
        let site = match options {
            None => quote!(#private::site!(#function)),
            Some(options) => quote!(#private::site!(#function, #options)),
        };
        // Gathered at link time, so the function's series exist before its first call. The
        // slice's own `macro_rules!` places the static in its link section directly: the
        // `#[distributed_slice]` attribute would expand to this same call plus a type check
        // that our fixed `CallSite` type makes redundant, at one more proc-macro run per site.
        quote_spanned! {span=> {
            #private::CALL_SITES! {
                #![linkme_macro = #private::CALL_SITES]
                static __FLEXT_SITE: #private::CallSite = #site;
            }
            #private::Call::#method(&__FLEXT_SITE)
        }}
    };
    let ret_ty = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(ty.as_ref()),
    };
    let never = matches!(ret_ty, Some(Type::Never(_)));
    let annotation_ty = ret_ty.and_then(annotation);
    let annotation = annotation_ty.as_ref().map(|ty| quote!(: #ty));
    let closure_annotation = annotation_ty.as_ref().map(|ty| quote!(-> #ty));
    let fields = fields_tokens(site, &private, &call);
    let classify = classify_tokens(site, &private, &call, &ret);
    // Every path but the unit one classifies the value with a method of these traits, so the
    // glob is used there; the unit path may call none of them.
    let imports = quote_spanned! {span=> use #private::traits::*; };

    if sig.asyncness.is_some() {
        let enter = enter(quote!(enter_async), &future_options);
        return braced(quote_spanned! {span=>
            #imports
            let mut #call = #enter;
            #fields
            let #ret #annotation = #private::run_in(async move #block, &mut #call).await;
            #classify
            #ret
        });
    }
    if returns_unit(sig) || never {
        let enter = enter(quote!(enter), &sync_options);
        return braced(quote_spanned! {span=>
            #[allow(unused_imports)]
            #imports
            #[allow(unused_mut)]
            let mut #call = #enter;
            #fields
            #block
        });
    }
    let mut block = block;
    if let Some((preamble, user_future, wrap)) = returned_future(&mut block) {
        // `fn f() -> impl Future { ..; async move { .. } }`: the call lasts from here until the
        // returned future completes (or is dropped: cancelled); the statements before the
        // `async` block run inside it (a panic there is this call's).
        let enter = enter(quote!(enter_async), &future_options);
        let future = format_ident!("__flext_future", span = span);
        let monitored = quote_spanned! {span=>
            async move {
                let mut #call = #call;
                let #ret = #private::run_in(#future, &mut #call).await;
                #classify
                #ret
            }
        };
        let tail = match wrap {
            Some(func) => quote!(#func(#monitored)),
            None => monitored,
        };
        return braced(quote_spanned! {span=>
            #imports
            let mut #call = #enter;
            #fields
            #[allow(clippy::redundant_closure_call)]
            let #future = #private::creating(&mut #call, || { #(#preamble)* #user_future });
            #tail
        });
    }
    let enter = enter(quote!(enter), &sync_options);
    braced(quote_spanned! {span=>
        #imports
        let mut #call = #enter;
        #fields
        // Every exit of the body, written by the user or by a macro, ends the closure.
        let #ret = #private::call_once(|| #closure_annotation #block);
        #[allow(unreachable_code)]
        {
            #classify
            #ret
        }
    })
}

/// The monitored body as a block holding the expansion's tokens as they are: the compiler parses
/// them once, instead of the macro parsing the user's whole body a second time (a re-parse was a
/// measurable part of the attribute's build cost).
fn braced(tokens: TokenStream) -> Block {
    Block { brace_token: syn::token::Brace(Span::mixed_site()), stmts: vec![Stmt::Expr(Expr::Verbatim(tokens), None)] }
}

/// For a plain function whose body ends in an `async` block (`async move { .. }` or
/// `Box::pin(async move { .. })`) and has no other exit (no `return` or `?` outside closures
/// and `async` blocks; an exit a macro writes there would not compile, since the statements run in
/// a closure): the statements before it, the `async` block, and the function wrapping
/// it (`Box::pin`), so the future can be monitored to completion. Other bodies take the general
/// path.
fn returned_future(block: &mut Block) -> Option<(Vec<Stmt>, Expr, Option<Expr>)> {
    struct Exits(bool);
    impl syn::visit::Visit<'_> for Exits {
        fn visit_expr(&mut self, expr: &Expr) {
            match expr {
                Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) => {}
                Expr::Return(_) | Expr::Try(_) => self.0 = true,
                _ => syn::visit::visit_expr(self, expr),
            }
        }
        fn visit_item(&mut self, _item: &syn::Item) {}
    }
    let is_future_tail = match block.stmts.last() {
        Some(Stmt::Expr(Expr::Async(_), None)) => true,
        Some(Stmt::Expr(Expr::Call(call), None)) => {
            call.args.len() == 1 && is_box_pin(&call.func) && matches!(call.args.first(), Some(Expr::Async(_)))
        }
        _ => false,
    };
    if !is_future_tail {
        return None;
    }
    let mut exits = Exits(false);
    for stmt in &block.stmts[..block.stmts.len() - 1] {
        syn::visit::Visit::visit_stmt(&mut exits, stmt);
    }
    if exits.0 {
        return None;
    }
    let Some(Stmt::Expr(tail, None)) = block.stmts.pop() else { return None };
    let preamble = std::mem::take(&mut block.stmts);
    match tail {
        Expr::Async(_) => Some((preamble, tail, None)),
        Expr::Call(call) => {
            let func = *call.func;
            let user_future = call.args.into_iter().next()?;
            Some((preamble, user_future, Some(func)))
        }
        _ => None,
    }
}

fn is_box_pin(func: &Expr) -> bool {
    let Expr::Path(path) = func else { return false };
    let segments: Vec<String> = path.path.segments.iter().map(|s| s.ident.to_string()).collect();
    segments.len() >= 2 && segments[segments.len() - 1] == "pin" && segments[segments.len() - 2] == "Box"
}

/// The `SiteOptions` expression for this function, `None` for the defaults (the call site then
/// takes the short form, `site!(name)`).
fn options(site: &Site<'_>, private: &TokenStream, is_future: bool) -> Option<TokenStream> {
    let args = site.args;
    // The builder calls on `SiteOptions::DEFAULT`, none for a function without options.
    let mut options = TokenStream::new();
    if let Some(service) = args.service.as_ref().map(syn::LitStr::value) {
        options.extend(quote!(.service(#service)));
    }
    if let Some(objective) = &args.objective {
        options.extend(quote_spanned!(objective.span()=> .objective(&#objective)));
    }
    if let Some(severity) = &args.severity {
        options.extend(quote!(.severity(#private::Severity::#severity)));
    }
    if args.alert == Some(false) {
        options.extend(quote!(.no_alert()));
    }
    if args.none_is_error.is_some() {
        options.extend(quote!(.none_is_error()));
    }
    // An async call dropped before it finished: its result is unknown. (A sync call always ends
    // with its value seen, or returns `()`, which is ok.)
    if is_future {
        options.extend(quote!(.unseen_exit(#private::Outcome::Cancelled)));
    }
    if !args.labels.is_empty() {
        let pairs = args.labels.iter().map(|(k, v)| quote!((#k, #v)));
        options.extend(quote!(.labels(&[#(#pairs),*])));
    }
    let mut names: Vec<String> = args.fields.iter().map(|f| f.key.clone()).collect();
    if args.ret.is_some() {
        names.push("return".to_owned());
    }
    if args.err.is_some() {
        names.push("error".to_owned());
    }
    if !names.is_empty() {
        options.extend(quote!(.fields(&[#(#names),*])));
    }
    (!options.is_empty()).then(|| quote!(#private::SiteOptions::DEFAULT #options))
}

/// The `fields(...)` values, evaluated on entry only when the span records them.
fn fields_tokens(site: &Site<'_>, private: &TokenStream, call: &syn::Ident) -> TokenStream {
    if site.args.fields.is_empty() {
        return TokenStream::new();
    }
    let records = site.args.fields.iter().map(|field| {
        let (key, value) = (&field.key, &field.value);
        let span = field.key_span;
        match field.format {
            FieldFormat::Auto => quote_spanned! {span=> (&&#private::Field(&(#value))).flext_field(#key, &mut #call); },
            FieldFormat::Display => {
                quote_spanned! {span=> #private::FieldDisplay::flext_field(&&#private::Field(&(#value)), #key, &mut #call); }
            }
            FieldFormat::Debug => {
                quote_spanned! {span=> #private::FieldDebug::flext_field(&#private::Field(&(#value)), #key, &mut #call); }
            }
        }
    });
    quote_spanned! {Span::mixed_site()=>
        if #call.is_recording() {
            #(#records)*
        }
    }
}

/// Classifies the value `value` (already bound): `ok_if`/`error_if` decide first, then the
/// value's type; then `ret` and `err` record it.
fn classify_tokens(site: &Site<'_>, private: &TokenStream, call: &syn::Ident, value: &syn::Ident) -> TokenStream {
    let span = Span::mixed_site();
    let args = site.args;
    let inspect = quote_spanned! {span=> (&&&#private::Inspect(&#value)).flext_inspect(&mut #call); };
    let mut tokens = TokenStream::new();
    // The value, named hygienically but located at the option that needs it, so that a type
    // error about the option points at the option.
    let value_at = |at: Span| syn::Ident::new(&value.to_string(), Span::mixed_site().located_at(at));
    if let Some(none) = args.none_is_error {
        let value = value_at(none);
        tokens.extend(quote_spanned! {none=> #private::expect_option(&#value); });
    }
    tokens.extend(match (&args.ok_if, &args.error_if) {
        (Some(path), _) => {
            let check = quote_spanned! {path.span()=> #private::predicate(#path, &#value) };
            quote_spanned! {span=>
                if #check { #call.mark_ok(); } else { #inspect if !#call.is_error() { #call.note_rule("ok_if"); } }
            }
        }
        (None, Some(path)) => {
            let check = quote_spanned! {path.span()=> #private::predicate(#path, &#value) };
            quote_spanned! {span=>
                if #check { #inspect if !#call.is_error() { #call.note_rule("error_if"); } } else { #call.mark_ok(); }
            }
        }
        (None, None) => inspect,
    });
    if let Some(ret) = args.ret {
        let (value, call) = (value_at(ret), syn::Ident::new(&call.to_string(), Span::mixed_site().located_at(ret)));
        tokens.extend(quote_spanned! {ret=> #private::record_ret(&mut #call, &#value); });
    }
    if let Some(err) = args.err {
        let (value, call) = (value_at(err), syn::Ident::new(&call.to_string(), Span::mixed_site().located_at(err)));
        tokens.extend(quote_spanned! {err=> #private::record_err(&mut #call, &#value); });
    }
    tokens
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
