//! Parses and validates the attribute's arguments: `#[flext_monitor(name = "...", ...)]`.

use crate::error::Errors;
use proc_macro2::{Span, TokenStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit, LitBool, LitStr, Meta, MetaNameValue, Path, Token};

const OPTIONS: &str = "name, service, severity, alert, skip, ok_if, error_if, none_is_error, labels, crate";
const SEVERITIES: [(&str, &str); 5] =
    [("low", "Low"), ("medium", "Medium"), ("high", "High"), ("critical", "Critical"), ("emergency", "Emergency")];
/// Labels the monitor sets itself; a static label may not reuse them.
const RESERVED_LABELS: [&str; 7] = ["function", "module", "service_name", "caller_function", "caller_module", "result", "flext_overflow"];

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
    pub(crate) none_is_error: bool,
    pub(crate) labels: Vec<(String, LitStr)>,
    pub(crate) krate: Option<Path>,
}

impl Args {
    /// Parses `tokens`, pushing every problem found into `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
        let mut args = Args::default();
        if tokens.is_empty() {
            return args;
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
                self.none_is_error = true;
            }
            "ok_if" => self.ok_if = Some(path(meta)?),
            "error_if" => self.error_if = Some(path(meta)?),
            "crate" => self.krate = Some(path(meta)?),
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
            none_is_error: inner.none_is_error || self.none_is_error,
            labels,
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
    let pairs = list_meta.parse_args_with(Punctuated::<MetaNameValue, Token![,]>::parse_terminated)?;
    let mut out: Vec<(String, LitStr)> = Vec::new();
    let mut errors = Errors::default();
    for pair in pairs {
        let Some(key) = pair.path.get_ident() else {
            errors.push(syn::Error::new(pair.path.span(), "a label name is a single identifier"));
            continue;
        };
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
