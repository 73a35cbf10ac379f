use flext_obs::flext_monitor;

#[flext_monitor]
fn f(x: u32) -> Result<u32, String> {
    let y: u32 = "not a number";
    Ok(x + y)
}

fn main() {
    let _ = f(1);
}
