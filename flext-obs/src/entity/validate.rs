//! The validation rules shared by the entities and the store. One place, so a name the store
//! accepts is exactly a name an entity accepts.

use crate::error::{Error, Result};

/// Longest metric or label name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest label value accepted, in bytes.
pub const MAX_LABEL_VALUE_LEN: usize = 4096;
/// Most labels one series or entity may carry.
pub const MAX_LABELS: usize = 32;
/// Longest free text (messages, titles) accepted, in bytes.
pub const MAX_TEXT_LEN: usize = 64 * 1024;

/// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, at most [`MAX_NAME_LEN`] bytes.
pub(crate) fn metric_name(entity: &'static str, field: &'static str, name: &str) -> Result<()> {
    const RULE: &str = "must match [a-zA-Z_:][a-zA-Z0-9_:]*";
    check_len(entity, field, name, MAX_NAME_LEN)?;
    let mut bytes = name.bytes();
    match bytes.next() {
        None => Err(Error::invalid(entity, field, name, "must not be empty")),
        Some(first) if !(first.is_ascii_alphabetic() || first == b'_' || first == b':') => Err(Error::invalid(entity, field, name, RULE)),
        Some(_) if bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') => Ok(()),
        Some(_) => Err(Error::invalid(entity, field, name, RULE)),
    }
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved for
/// Prometheus' own use), at most [`MAX_NAME_LEN`] bytes.
pub(crate) fn label_name(entity: &'static str, name: &str) -> Result<()> {
    const FIELD: &str = "label name";
    const RULE: &str = "must match [a-zA-Z_][a-zA-Z0-9_]*";
    check_len(entity, FIELD, name, MAX_NAME_LEN)?;
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return Err(Error::invalid(entity, FIELD, name, "must not be empty")),
        Some(first) if !(first.is_ascii_alphabetic() || first == b'_') => {
            return Err(Error::invalid(entity, FIELD, name, RULE));
        }
        Some(_) if !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            return Err(Error::invalid(entity, FIELD, name, RULE));
        }
        Some(_) => {}
    }
    if name.starts_with("__") {
        return Err(Error::invalid(entity, FIELD, name, "must not start with \"__\" (reserved for Prometheus)"));
    }
    Ok(())
}

/// A label value: any UTF-8 text up to [`MAX_LABEL_VALUE_LEN`] bytes.
pub(crate) fn label_value(entity: &'static str, name: &str, value: &str) -> Result<()> {
    if value.len() > MAX_LABEL_VALUE_LEN {
        return Err(Error::invalid(
            entity,
            "label value",
            format!("{name}=<{} bytes>", value.len()),
            format!("must be at most {MAX_LABEL_VALUE_LEN} bytes"),
        ));
    }
    Ok(())
}

/// A whole label set: at most [`MAX_LABELS`] pairs, each name and value valid.
pub(crate) fn labels<'a>(entity: &'static str, pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> Result<()> {
    if pairs.len() > MAX_LABELS {
        return Err(Error::invalid(
            entity,
            "labels",
            format!("<{} labels>", pairs.len()),
            format!("at most {MAX_LABELS} labels are allowed"),
        ));
    }
    for (name, value) in pairs {
        label_name(entity, name)?;
        label_value(entity, name, value)?;
    }
    Ok(())
}

/// Free text that must say something: not empty or blank, at most [`MAX_TEXT_LEN`] bytes.
pub(crate) fn text(entity: &'static str, field: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(entity, field, value, "must not be empty"));
    }
    check_len(entity, field, value, MAX_TEXT_LEN)
}

/// A number that is neither NaN nor infinite.
pub(crate) fn finite(entity: &'static str, field: &'static str, value: f64) -> Result<()> {
    if value.is_finite() { Ok(()) } else { Err(Error::invalid(entity, field, value, "must be finite (not NaN or infinite)")) }
}

fn check_len(entity: &'static str, field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        let head: String = value.chars().take(32).collect();
        return Err(Error::invalid(entity, field, format!("{head}...<{} bytes>", value.len()), format!("must be at most {max} bytes")));
    }
    Ok(())
}
