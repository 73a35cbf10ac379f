//! The expansion neither sees nor shadows the user's names, even ones that look like its own:
//! its locals are hygienic and its paths absolute (a local `mod flext_obs` changes nothing).
#![deny(warnings)]
#![allow(non_camel_case_types, non_upper_case_globals)]

use ::flext_obs::flext_monitor;

pub struct Call;
pub struct Inspect;
pub struct CallSite;
pub struct Result;
pub struct Option;
static __FLEXT_SITE: u8 = 1;

#[flext_monitor]
fn shadowing(x: u32) -> core::result::Result<u32, String> {
    let __flext_call = x;
    let __flext_ret = __flext_call + 1;
    let __flext_try: core::result::Result<u32, String> = Ok(__flext_ret);
    let _ = (Call, Inspect, CallSite, Result, Option, __FLEXT_SITE);
    let v = __flext_try?;
    Ok(v)
}

mod flext_obs {}

fn main() {
    let _ = shadowing(1);
}
