use flext_obs::flext_monitor;

#[flext_monitor(none_is_error)]
fn find(id: u32) -> Result<u32, String> {
    Ok(id)
}

fn main() {
    let _ = find(1);
}
