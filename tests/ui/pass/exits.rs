//! Shapes whose every exit the expansion must see without changing what compiles: exits written
//! by macros, Result aliases of any name, borrows of arguments and `self`, lifetimes in the
//! return type, `impl Trait`, `unsafe fn`, generics, futures returned by plain functions, trait
//! default methods, and the `fields`/`ret`/`err` options. Under deny(warnings).
#![deny(warnings)]

use flext_obs::flext_monitor;
use std::future::Future;
use std::pin::Pin;

#[derive(Debug)]
pub struct MyErr(String);

impl std::fmt::Display for MyErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::num::ParseIntError> for MyErr {
    fn from(e: std::num::ParseIntError) -> Self {
        MyErr(e.to_string())
    }
}

pub type Fallible<T> = Result<T, MyErr>;

macro_rules! fail {
    ($msg:expr) => {
        return Err(MyErr($msg.to_owned()))
    };
}

#[flext_monitor]
fn bails(x: u32) -> Fallible<u32> {
    if x == 0 {
        fail!("zero");
    }
    Ok(x)
}

#[flext_monitor]
fn anyhow_bails(x: u32) -> anyhow::Result<u32> {
    anyhow::ensure!(x < 10, "too big: {x}");
    if x == 0 {
        anyhow::bail!("zero");
    }
    Ok(x)
}

#[flext_monitor]
fn try_in_macro(text: &str) -> Fallible<String> {
    Ok(format!("{}", text.parse::<u32>()?))
}

#[flext_monitor]
fn try_in_vec(a: &str, b: &str) -> Fallible<Vec<u32>> {
    Ok(vec![a.parse()?, b.parse()?])
}

pub struct Store {
    items: Vec<u32>,
    name: String,
}

impl Store {
    #[flext_monitor]
    fn items_mut(&mut self) -> &mut Vec<u32> {
        &mut self.items
    }

    #[flext_monitor]
    fn name(&self) -> Result<&str, MyErr> {
        if self.name.is_empty() {
            return Err(MyErr("no name".into()));
        }
        Ok(&self.name)
    }

    #[flext_monitor]
    fn first<'a>(&'a self, fallback: &'a u32) -> Result<&'a u32, MyErr> {
        Ok(self.items.first().unwrap_or(fallback))
    }

    #[flext_monitor]
    fn chain(&mut self) -> &mut Self {
        self.items.push(0);
        self
    }

    #[flext_monitor]
    fn into_name(self) -> String {
        self.name
    }
}

#[flext_monitor]
fn evens(v: &[u32]) -> impl Iterator<Item = &u32> + '_ {
    v.iter().filter(|x| *x % 2 == 0)
}

#[flext_monitor]
fn parsed_iter(v: &[u8]) -> Result<impl Iterator<Item = &u8>, MyErr> {
    let _check: u32 = "1".parse()?;
    Ok(v.iter())
}

#[flext_monitor]
unsafe fn read(p: *const u8) -> u8 {
    // SAFETY: the caller passes a valid pointer.
    unsafe { *p }
}

#[flext_monitor]
fn generic<T: Default + Clone, E>(ok: bool, err: E) -> Result<T, E> {
    if ok { Ok(T::default()) } else { Err(err) }
}

#[flext_monitor]
fn boxed() -> Box<dyn std::fmt::Debug> {
    if true {
        return Box::new(1);
    }
    Box::new("two")
}

#[flext_monitor]
fn later(x: u32) -> impl Future<Output = Fallible<u32>> {
    let doubled = x * 2;
    async move {
        if doubled == 0 {
            fail!("zero");
        }
        Ok(doubled)
    }
}

#[flext_monitor]
fn pinned(x: u32) -> Pin<Box<dyn Future<Output = Result<u32, MyErr>> + Send>> {
    Box::pin(async move { Ok(x) })
}

pub trait Service {
    fn call(&self, x: u32) -> Fallible<u32>;

    #[flext_monitor]
    fn default_call(&self, x: u32) -> Fallible<u32> {
        self.call(x)
    }
}

#[derive(Debug)]
pub struct User {
    id: u32,
}

#[flext_monitor(fields(user = user.id, name = %name, debug = ?user), ret, err)]
fn with_fields(user: &User, name: &str) -> Result<u32, MyErr> {
    Ok(user.id + u32::try_from(name.len()).unwrap_or(0))
}

#[flext_monitor(fields(n = n), ret)]
async fn async_fields(n: u32) -> u32 {
    n
}

fn main() {
    let _ = bails(1);
    let _ = anyhow_bails(1);
    let _ = try_in_macro("1");
    let _ = try_in_vec("1", "2");
    let mut store = Store { items: vec![1], name: "s".into() };
    store.items_mut().push(2);
    let _ = store.name();
    let fallback = 0;
    let _ = store.first(&fallback).map(|x| *x);
    store.chain().chain();
    let _ = store.into_name();
    let _ = evens(&[1, 2]).count();
    let _ = parsed_iter(&[1]).map(Iterator::count);
    let value = 3u8;
    // SAFETY: a pointer to a live local.
    let _ = unsafe { read(&raw const value) };
    let _: Result<u8, ()> = generic(true, ());
    let _ = boxed();
    let _ = later(1);
    let _ = pinned(1);
    let _ = with_fields(&User { id: 1 }, "n");
    let _ = async_fields(1);
}
