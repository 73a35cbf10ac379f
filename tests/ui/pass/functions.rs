//! Every kind of function the attribute accepts, under deny(warnings).
#![deny(warnings)]

use flext_obs::flext_monitor;
use std::fmt::Display;

#[derive(Debug)]
pub struct Failure;

impl Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failure")
    }
}

pub type Outcome<T> = Result<T, Failure>;

/// Doc comments and other attributes are kept.
#[flext_monitor]
#[must_use]
pub fn documented(x: u32) -> u32 {
    x + 1
}

#[flext_monitor]
fn unit(x: &mut Vec<u32>) {
    x.push(1);
}

#[flext_monitor]
fn explicit_unit() -> () {}

#[flext_monitor]
fn diverges() -> ! {
    std::process::exit(0)
}

#[flext_monitor]
fn early_return(x: i32) -> i32 {
    if x < 0 {
        return -x;
    }
    let y = match x {
        0 => return 0,
        n => n * 2,
    };
    y
}

#[flext_monitor]
fn question_mark(a: &str) -> Result<u64, std::num::ParseIntError> {
    let n: u64 = a.parse()?;
    let m = a.trim().parse::<u64>()?;
    Ok(n + m)
}

#[flext_monitor]
fn with_alias(ok: bool) -> Outcome<u8> {
    if ok { Ok(1) } else { Err(Failure) }
}

#[flext_monitor]
fn io_style() -> std::io::Result<()> {
    write_it(&mut Vec::new())?;
    Ok(())
}

fn write_it(out: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(out, "x")?;
    Ok(())
}

#[flext_monitor]
fn option_question(v: &[u8]) -> Option<u8> {
    let first = v.first()?;
    Some(*first)
}

#[flext_monitor]
fn recursive(n: u64) -> u64 {
    if n == 0 { 0 } else { n + recursive(n - 1) }
}

#[flext_monitor]
fn generic<'a, T, const N: usize>(items: &'a [T; N]) -> Option<&'a T>
where
    T: Display + 'a,
{
    items.first()
}

#[flext_monitor]
fn impl_trait_arg(x: impl Display) -> String {
    x.to_string()
}

#[flext_monitor]
fn impl_trait_return(n: u32) -> impl Iterator<Item = u32> {
    (0..n).map(|x| x * 2)
}

#[flext_monitor]
fn impl_trait_in_result(n: u32) -> Result<impl Display, Failure> {
    if n == 0 { Err(Failure) } else { Ok(n) }
}

#[flext_monitor]
fn borrowed(s: &str) -> &str {
    s.trim()
}

#[flext_monitor]
fn with_closures(v: Vec<u32>) -> Result<u32, Failure> {
    let total: Option<u32> = v.iter().map(|x| x.checked_mul(2)).sum();
    let checked = || -> Result<u32, Failure> {
        let t = total.ok_or(Failure)?;
        Ok(t)
    };
    fn nested() -> Result<u8, Failure> {
        Err(Failure)
    }
    let _ = nested();
    checked()
}

#[flext_monitor]
unsafe fn raw_read(p: *const u8) -> u8 {
    unsafe { *p }
}

fn is_small(n: &u32) -> bool {
    *n < 10
}

#[flext_monitor(name = "renamed", service = "svc", severity = "critical", alert = false, ok_if = is_small, labels(team = "core", tier = "1"))]
fn all_options(n: u32) -> u32 {
    n
}

#[flext_monitor(none_is_error, error_if = Option::is_none)]
fn predicates(n: u32) -> Option<u32> {
    n.checked_sub(1)
}

fn main() {
    let _ = documented(1);
    unit(&mut Vec::new());
    explicit_unit();
    let _ = early_return(-1);
    let _ = question_mark("1");
    let _ = with_alias(true);
    let _ = io_style();
    let _ = option_question(&[]);
    let _ = recursive(3);
    let _ = generic(&[1, 2]);
    let _ = impl_trait_arg(5);
    let _ = impl_trait_return(2).count();
    let _ = impl_trait_in_result(1).map(|d| d.to_string());
    let _ = borrowed(" x ");
    let _ = with_closures(vec![1]);
    let byte = 7u8;
    let _ = unsafe { raw_read(&byte) };
    let _ = all_options(3);
    let _ = predicates(0);
    if std::env::args().count() > 10 {
        diverges();
    }
}
