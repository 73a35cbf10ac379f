//! How much code `#[flext_monitor]` hands the compiler per function: the build-cost figure that
//! does not depend on the machine. The expansion of a typical `Result`-returning function is
//! formatted by `rustfmt` (default settings, 100 columns, as `cargo expand` would show it) and
//! its lines are counted against the same function unexpanded. `scripts/build-cost.sh` reports
//! the same count for `fastrace::trace` and `tracing::instrument` when the compiler can print
//! expansions.

use crate::{error::Errors, expand, parse::Args};
use std::io::Write;
use std::process::{Command, Stdio};

/// The function the build-cost script generates 500 of.
const FUNCTION: &str = r#"pub fn f1(x: u64) -> Result<u64, String> { if x == 1 { return Err(format!("bad {}", x)); } let y = x.checked_add(1).ok_or("overflow")?; Ok(y) }"#;

/// `source` formatted by `rustfmt` with its default settings (run outside the workspace, so
/// its `rustfmt.toml` does not apply).
fn formatted(source: &str) -> String {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout"])
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rustfmt is installed with the toolchain (rustup component add rustfmt)");
    child.stdin.take().expect("piped stdin").write_all(source.as_bytes()).expect("rustfmt reads its input");
    let out = child.wait_with_output().expect("rustfmt runs");
    assert!(out.status.success(), "rustfmt refused the input: {}\n{source}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("rustfmt writes UTF-8")
}

fn code_lines(text: &str) -> usize {
    text.lines().filter(|line| !line.trim().is_empty()).count()
}

fn token_trees(tokens: proc_macro2::TokenStream) -> usize {
    tokens
        .into_iter()
        .map(|tree| match tree {
            proc_macro2::TokenTree::Group(group) => 1 + token_trees(group.stream()),
            _ => 1,
        })
        .sum()
}

#[test]
fn expansion_of_a_result_function_stays_small() {
    let item: syn::ItemFn = syn::parse_str(FUNCTION).expect("the sample function parses");
    let plain = quote::ToTokens::to_token_stream(&item);
    let mut errors = Errors::default();
    let expanded = expand::function(&Args::default(), item, &mut errors);
    assert!(errors.is_empty(), "the sample function is accepted");
    let shown = formatted(&expanded.to_string());
    let lines = code_lines(&shown) - code_lines(&formatted(&plain.to_string()));
    let tokens = token_trees(expanded) - token_trees(plain);
    if std::env::var_os("FLEXT_SHOW_EXPANSION").is_some() {
        println!("{shown}");
    }
    println!("#[flext_monitor] adds {lines} lines and {tokens} tokens to a Result-returning function (rustfmt defaults)");
    // A guard against the expansion growing back; the figure itself is in the README.
    assert!((5..=15).contains(&lines), "the expansion adds {lines} lines per function (the issue caps it at 15)");
}
