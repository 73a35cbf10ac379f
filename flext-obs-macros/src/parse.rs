//! Parses and validates the attribute's arguments: `#[flext_monitor(name = "...", ...)]`.

use crate::error::Errors;
use proc_macro2::{Span, TokenStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit, LitBool, LitStr, Meta, MetaNameValue, Path, Token};

const OPTIONS: &str = "name, service, severity, alert, skip, ok_if, error_if, none_is_error, labels, fields, ret, err, objective, crate";
const SEVERITIES: [(&str, &str); 5] =
    [("low", "Low"), ("medium", "Medium"), ("high", "High"), ("critical", "Critical"), ("emergency", "Emergency")];
/// Labels the monitor sets itself; a static label may not reuse them.
const RESERVED_LABELS: [&str; 10] = [
    "function",
    "module",
    "service_name",
    "caller_function",
    "caller_module",
    "result",
    "flext_overflow",
    "objective_name",
    "objective_percentile",
    "objective_latency_threshold",
];
/// Span fields the monitor sets itself; `fields(...)` may not reuse them.
const RESERVED_FIELDS: [&str; 6] = ["function", "module", "trace_id", "correlation_id", "return", "error"];

/// How a `fields(...)` value is formatted: `key = value` (its `Display`, else its `Debug`),
/// `key = %value` (`Display`), `key = ?value` (`Debug`), as `tracing` writes them.
#[derive(Clone, Copy)]
pub(crate) enum FieldFormat {
    Auto,
    Display,
    Debug,
}

/// One `fields(key = value)` entry.
#[derive(Clone)]
pub(crate) struct FieldArg {
    pub(crate) key: String,
    pub(crate) key_span: Span,
    pub(crate) format: FieldFormat,
    pub(crate) value: Expr,
}

/// The validated arguments. `None` means "not given" so impl-level and method-level arguments
/// can be merged.
#[derive(Default, Clone)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    pub(crate) service: Option<LitStr>,
    /// The `Severity` variant's identifier.
    pub(crate) severity: Option<Ident>,
    pub(crate) alert: Option<bool>,
    pub(crate) skip: bool,
    pub(crate) ok_if: Option<Path>,
    pub(crate) error_if: Option<Path>,
    /// The `none_is_error` token, when given.
    pub(crate) none_is_error: Option<Span>,
    pub(crate) labels: Vec<(String, LitStr)>,
    pub(crate) fields: Vec<FieldArg>,
    /// The span of the `fields` option itself (for errors about where it may go).
    pub(crate) fields_span: Option<Span>,
    /// The `ret` token, when given.
    pub(crate) ret: Option<Span>,
    /// The `err` token, when given.
    pub(crate) err: Option<Span>,
    /// `objective = PATH`: a `flext_obs::slo::Objective` constant or static.
    pub(crate) objective: Option<Path>,
    pub(crate) krate: Option<Path>,
}

impl Args {
    /// Parses `tokens`, pushing every problem found into `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
        let mut args = Args::default();
        if tokens.is_empty() {
            return args;
        }
        if let Some(first) = tokens.clone().into_iter().next() {
            let is_value = match &first {
                proc_macro2::TokenTree::Punct(p) => p.as_char() == '=',
                proc_macro2::TokenTree::Literal(_) => true,
                _ => false,
            };
            if is_value {
                errors.push(syn::Error::new(
                    first.span(),
                    "#[flext_monitor] takes a list of options, not a value: write `#[flext_monitor]` or `#[flext_monitor(name = \"...\")]`",
                ));
                return args;
            }
        }
        let metas = match syn::parse::Parser::parse2(Punctuated::<Meta, Token![,]>::parse_terminated, tokens) {
            Ok(metas) => metas,
            Err(err) => {
                errors.push(err);
                return args;
            }
        };
        let mut seen: Vec<String> = Vec::new();
        for meta in metas {
            let key =
                meta.path().get_ident().map(ToString::to_string).or_else(|| meta.path().is_ident("crate").then(|| "crate".to_owned()));
            let key = match key {
                Some(key) if meta.path().segments.len() == 1 => key,
                _ => {
                    errors.push(syn::Error::new(meta.path().span(), format!("unknown option; expected one of: {OPTIONS}")));
                    continue;
                }
            };
            if seen.contains(&key) {
                errors.push(syn::Error::new(meta.path().span(), format!("duplicate option `{key}`")));
                continue;
            }
            seen.push(key.clone());
            if let Err(err) = args.apply(&key, &meta) {
                errors.push(err);
            }
        }
        if let (Some(ok_if), Some(_)) = (&args.ok_if, &args.error_if) {
            errors.push(syn::Error::new(ok_if.span(), "use either `ok_if` or `error_if`, not both"));
        }
        args
    }

    fn apply(&mut self, key: &str, meta: &Meta) -> syn::Result<()> {
        match key {
            "name" => {
                let lit = string(meta)?;
                check_function_name(&lit)?;
                self.name = Some(lit);
            }
            "service" => {
                let lit = string(meta)?;
                if lit.value().trim().is_empty() {
                    return Err(syn::Error::new(lit.span(), "`service` must not be empty"));
                }
                self.service = Some(lit);
            }
            "severity" => {
                let lit = string(meta)?;
                let value = lit.value();
                let Some((_, variant)) = SEVERITIES.iter().find(|(text, _)| *text == value) else {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!("unknown severity {value:?}: expected one of \"low\", \"medium\", \"high\", \"critical\", \"emergency\""),
                    ));
                };
                self.severity = Some(Ident::new(variant, lit.span()));
            }
            "alert" => match value(meta)? {
                Expr::Lit(ExprLit { lit: Lit::Bool(LitBool { value, .. }), .. }) => self.alert = Some(*value),
                other => return Err(syn::Error::new(other.span(), "`alert` takes `true` or `false`")),
            },
            "skip" => {
                flag(meta)?;
                self.skip = true;
            }
            "none_is_error" => {
                flag(meta)?;
                self.none_is_error = Some(meta.path().span());
            }
            "ret" => {
                flag(meta)?;
                self.ret = Some(meta.path().span());
            }
            "err" => {
                flag(meta)?;
                self.err = Some(meta.path().span());
            }
            "fields" => {
                self.fields = fields(meta)?;
                self.fields_span = Some(meta.path().span());
            }
            "ok_if" => self.ok_if = Some(path(meta)?),
            "error_if" => self.error_if = Some(path(meta)?),
            "crate" => self.krate = Some(path(meta)?),
            "objective" => {
                let objective = path(meta)?;
                if objective.segments.first().is_some_and(|s| s.ident == "Self") {
                    return Err(syn::Error::new(
                        objective.span(),
                        "`objective` is read in a `static`, where `Self` cannot be named: use the type's name or a free constant",
                    ));
                }
                self.objective = Some(objective);
            }
            "labels" => self.labels = labels(meta)?,
            _ => return Err(syn::Error::new(meta.path().span(), format!("unknown option `{key}`; expected one of: {OPTIONS}"))),
        }
        Ok(())
    }

    /// `inner` (a method's own arguments) over `self` (the impl block's).
    pub(crate) fn merged(&self, inner: Args) -> Args {
        let (inner_ok_if, inner_error_if) = (inner.ok_if.is_some(), inner.error_if.is_some());
        let mut labels = self.labels.clone();
        for (key, value) in inner.labels {
            labels.retain(|(k, _)| *k != key);
            labels.push((key, value));
        }
        Args {
            name: inner.name,
            service: inner.service.or_else(|| self.service.clone()),
            severity: inner.severity.or_else(|| self.severity.clone()),
            alert: inner.alert.or(self.alert),
            skip: inner.skip,
            ok_if: inner.ok_if.or_else(|| if inner_error_if { None } else { self.ok_if.clone() }),
            error_if: inner.error_if.or_else(|| if inner_ok_if { None } else { self.error_if.clone() }),
            none_is_error: inner.none_is_error.or(self.none_is_error),
            labels,
            fields: inner.fields,
            fields_span: inner.fields_span,
            ret: inner.ret,
            err: inner.err,
            objective: inner.objective.or_else(|| self.objective.clone()),
            krate: inner.krate.or_else(|| self.krate.clone()),
        }
    }
}

fn value(meta: &Meta) -> syn::Result<&Expr> {
    match meta {
        Meta::NameValue(MetaNameValue { value, .. }) => Ok(value),
        _ => Err(syn::Error::new(meta.span(), format!("`{}` takes a value: `{} = ...`", name_of(meta), name_of(meta)))),
    }
}

fn name_of(meta: &Meta) -> String {
    meta.path().get_ident().map_or_else(|| "crate".to_owned(), ToString::to_string)
}

fn string(meta: &Meta) -> syn::Result<LitStr> {
    match value(meta)? {
        Expr::Lit(ExprLit { lit: Lit::Str(lit), .. }) => Ok(lit.clone()),
        other => Err(syn::Error::new(other.span(), format!("`{}` takes a string literal", name_of(meta)))),
    }
}

fn path(meta: &Meta) -> syn::Result<Path> {
    match value(meta)? {
        Expr::Path(p) if p.qself.is_none() => Ok(p.path.clone()),
        other => {
            Err(syn::Error::new(other.span(), format!("`{}` takes a path, such as `{} = my_module::item`", name_of(meta), name_of(meta))))
        }
    }
}

fn flag(meta: &Meta) -> syn::Result<()> {
    match meta {
        Meta::Path(_) => Ok(()),
        _ => Err(syn::Error::new(meta.span(), format!("`{}` takes no value", name_of(meta)))),
    }
}

fn labels(meta: &Meta) -> syn::Result<Vec<(String, LitStr)>> {
    let Meta::List(list_meta) = meta else {
        return Err(syn::Error::new(meta.span(), "`labels` takes a list: `labels(team = \"payments\")`"));
    };
    let pairs = list_meta.parse_args_with(Punctuated::<KeyValue, Token![,]>::parse_terminated)?;
    let mut out: Vec<(String, LitStr)> = Vec::new();
    let mut errors = Errors::default();
    for pair in pairs {
        let key = &pair.key;
        let name = key.to_string();
        let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
        if let Err(message) = check_label_name(&name) {
            errors.push(syn::Error::new(key.span(), message));
            continue;
        }
        if out.iter().any(|(k, _)| *k == name) {
            errors.push(syn::Error::new(key.span(), format!("duplicate label `{name}`")));
            continue;
        }
        if !matches!(pair.format, FieldFormat::Auto) {
            errors.push(syn::Error::new(pair.value.span(), "a label value is a string literal (`%` and `?` are for `fields`)"));
            continue;
        }
        match &pair.value {
            Expr::Lit(ExprLit { lit: Lit::Str(text), .. }) if text.value().len() <= 4096 => out.push((name, text.clone())),
            Expr::Lit(ExprLit { lit: Lit::Str(text), .. }) => {
                errors.push(syn::Error::new(text.span(), "a label value must be at most 4096 bytes"));
            }
            other => errors.push(syn::Error::new(other.span(), "a label value is a string literal")),
        }
    }
    errors.into_result().map(|()| out)
}

/// `key = value` in `labels(...)` and `fields(...)`, where a `-` in the key (`team-name`) gets
/// its own error instead of syn's bare "expected `=`".
struct KeyValue {
    key: Ident,
    format: FieldFormat,
    value: Expr,
}

impl syn::parse::Parse for KeyValue {
    fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = syn::ext::IdentExt::parse_any(input)?;
        if input.peek(Token![-]) || input.peek(Token![.]) || input.peek(Token![::]) {
            let mut written = key.to_string();
            let mut end = key.span();
            while input.peek(Token![-]) || input.peek(Token![.]) || input.peek(Token![::]) {
                let sep: TokenStream = if input.peek(Token![::]) {
                    quote::ToTokens::into_token_stream(input.parse::<Token![::]>()?)
                } else if input.peek(Token![-]) {
                    quote::ToTokens::into_token_stream(input.parse::<Token![-]>()?)
                } else {
                    quote::ToTokens::into_token_stream(input.parse::<Token![.]>()?)
                };
                written.push_str(&sep.to_string());
                if let Ok(part) = syn::ext::IdentExt::parse_any(input) {
                    let part: Ident = part;
                    written.push_str(&part.to_string());
                    end = part.span();
                }
            }
            let suggestion: String = written.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
            let span = key.span().join(end).unwrap_or_else(|| key.span());
            return Err(syn::Error::new(
                span,
                format!("`{written}` is not a valid name: names are [a-zA-Z_][a-zA-Z0-9_]*; write `{suggestion}`"),
            ));
        }
        input.parse::<Token![=]>()?;
        let format = if input.peek(Token![%]) {
            input.parse::<Token![%]>()?;
            FieldFormat::Display
        } else if input.peek(Token![?]) {
            input.parse::<Token![?]>()?;
            FieldFormat::Debug
        } else {
            FieldFormat::Auto
        };
        let value: Expr = input.parse()?;
        Ok(KeyValue { key, format, value })
    }
}

fn fields(meta: &Meta) -> syn::Result<Vec<FieldArg>> {
    let Meta::List(list_meta) = meta else {
        return Err(syn::Error::new(meta.span(), "`fields` takes a list: `fields(user = user.id, items = %order.len())`"));
    };
    let pairs = list_meta.parse_args_with(Punctuated::<KeyValue, Token![,]>::parse_terminated)?;
    let mut out: Vec<FieldArg> = Vec::new();
    let mut errors = Errors::default();
    for pair in pairs {
        let name = unraw(&pair.key);
        if RESERVED_FIELDS.contains(&name.as_str()) {
            errors.push(syn::Error::new(
                pair.key.span(),
                format!("span field `{name}` is set by the monitor itself; reserved: {}", RESERVED_FIELDS.join(", ")),
            ));
            continue;
        }
        if out.iter().any(|f| f.key == name) {
            errors.push(syn::Error::new(pair.key.span(), format!("duplicate field `{name}`")));
            continue;
        }
        out.push(FieldArg { key: name, key_span: pair.key.span(), format: pair.format, value: pair.value });
    }
    errors.into_result().map(|()| out)
}

fn unraw(ident: &Ident) -> String {
    let name = ident.to_string();
    name.strip_prefix("r#").map_or_else(|| name.clone(), str::to_owned)
}

fn check_label_name(name: &str) -> Result<(), String> {
    let valid = name.bytes().enumerate().all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
    if !valid || name.is_empty() {
        return Err(format!("invalid label name `{name}`: must match [a-zA-Z_][a-zA-Z0-9_]*"));
    }
    if name.starts_with("__") {
        return Err(format!("invalid label name `{name}`: names starting with `__` are reserved for Prometheus"));
    }
    if RESERVED_LABELS.contains(&name) {
        return Err(format!("label `{name}` is set by the monitor itself; reserved: {}", RESERVED_LABELS.join(", ")));
    }
    Ok(())
}

fn check_function_name(lit: &LitStr) -> syn::Result<()> {
    let name = lit.value();
    let valid = !name.is_empty()
        && name.len() <= 256
        && name.bytes().enumerate().all(|(i, b)| b == b'_' || b == b':' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
    if valid {
        Ok(())
    } else {
        Err(syn::Error::new(lit.span(), format!("invalid function name {name:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]*, at most 256 bytes")))
    }
}

/// Whether `attr` is a `#[flext_monitor(...)]` marker (by its last path segment).
pub(crate) fn is_marker(attr: &syn::Attribute) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == "flext_monitor")
}

/// The arguments of a marker attribute.
pub(crate) fn marker_args(attr: &syn::Attribute, errors: &mut Errors) -> Args {
    match &attr.meta {
        Meta::Path(_) => Args::default(),
        Meta::List(list) => Args::parse(list.tokens.clone(), errors),
        Meta::NameValue(nv) => {
            errors.push(syn::Error::new(nv.span(), "use `#[flext_monitor(...)]`"));
            Args::default()
        }
    }
}

/// The span to blame for a whole item.
pub(crate) fn item_span(item: &syn::Item) -> Span {
    match item {
        syn::Item::Struct(s) => s.struct_token.span,
        syn::Item::Enum(e) => e.enum_token.span,
        syn::Item::Trait(t) => t.trait_token.span,
        syn::Item::Mod(m) => m.mod_token.span,
        syn::Item::Const(c) => c.const_token.span,
        syn::Item::Static(s) => s.static_token.span,
        other => other.span(),
    }
}
