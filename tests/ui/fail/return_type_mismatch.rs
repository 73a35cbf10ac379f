use flext_obs::flext_monitor;

#[flext_monitor]
fn f(x: u32) -> Result<u32, String> {
    Ok(x.to_string())
}

fn main() {
    let _ = f(1);
}
