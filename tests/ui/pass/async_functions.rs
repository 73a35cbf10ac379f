//! Async functions, async fn in traits (native) and #[async_trait] with #[flext_monitor] above it.
#![deny(warnings)]

use flext_obs::flext_monitor;

#[flext_monitor]
async fn fetch(id: u32) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = id.to_string().parse()?;
    Ok(n)
}

#[flext_monitor]
async fn nothing() {}

#[flext_monitor]
async fn borrow_it(s: &str) -> &str {
    s
}

pub trait Service {
    fn call(&self) -> impl std::future::Future<Output = u32> + Send;
}

pub struct Native;

#[flext_monitor]
impl Service for Native {
    async fn call(&self) -> u32 {
        1
    }
}

#[async_trait::async_trait]
pub trait Legacy {
    async fn run(&self, n: u32) -> Result<u32, String>;
}

pub struct Old;

#[flext_monitor]
#[async_trait::async_trait]
impl Legacy for Old {
    async fn run(&self, n: u32) -> Result<u32, String> {
        if n == 0 { Err("zero".into()) } else { Ok(n) }
    }
}

fn assert_send<T: Send>(_: &T) {}

fn main() {
    let fut = fetch(1);
    assert_send(&fut);
    drop(fut);
    drop(nothing());
    drop(borrow_it("x"));
    drop(Native.call());
    drop(Old.run(1));
}
