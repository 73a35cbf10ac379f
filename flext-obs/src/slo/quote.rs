//! Quoting for the three languages an objective name ends up in: `PromQL` string literals, YAML
//! scalars and Go templates (alert annotations). Objective names are printable ASCII (the
//! [`Objective`](super::Objective) constructor enforces it), so no control character or line
//! break ever needs escaping; quotes, backslashes, `{`, `}` and `$` do.

/// A `PromQL` double-quoted string literal: `api` becomes `"api"`, `a"b` becomes `"a\"b"`.
pub(crate) fn promql_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A YAML single-quoted scalar: the only escape is `''` for `'`, so what is inside is literal
/// (no `#` comment, no `: ` mapping, no `{` flow collection, no `*` alias).
pub(crate) fn yaml_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Text that a Go template (Prometheus annotations) prints as is: each `{` and `}` becomes an
/// action printing it, so a name like `a{{b}}` cannot open an action of its own.
pub(crate) fn template_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '{' => out.push_str(r#"{{ "{" }}"#),
            '}' => out.push_str(r#"{{ "}" }}"#),
            c => out.push(c),
        }
    }
    out
}

/// A `PromQL` label matcher `label="value"` that Grafana leaves alone: Grafana replaces `$name`
/// anywhere in a query, so a value holding `$` is matched by a regular expression that spells
/// `$` as `\x24` (every other regex metacharacter escaped).
pub(crate) fn grafana_matcher(label: &str, value: &str) -> String {
    if !value.contains('$') {
        return format!("{label}={}", promql_string(value));
    }
    let mut regex = String::with_capacity(value.len() * 2);
    for c in value.chars() {
        match c {
            '$' => regex.push_str(r"\x24"),
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' => {
                regex.push('\\');
                regex.push(c);
            }
            c => regex.push(c),
        }
    }
    format!("{label}=~{}", promql_string(&regex))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(promql_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(yaml_string("it's: #1"), "'it''s: #1'");
        assert_eq!(template_literal("a{{b}}"), r#"a{{ "{" }}{{ "{" }}b{{ "}" }}{{ "}" }}"#);
        assert_eq!(grafana_matcher("objective_name", "api"), r#"objective_name="api""#);
        assert_eq!(grafana_matcher("objective_name", "a$b.c"), r#"objective_name=~"a\\x24b\\.c""#);
    }
}
