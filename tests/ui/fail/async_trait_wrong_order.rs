use flext_obs::flext_monitor;

#[async_trait::async_trait]
pub trait Legacy {
    async fn run(&self) -> u32;
}

pub struct Old;

#[async_trait::async_trait]
#[flext_monitor]
impl Legacy for Old {
    async fn run(&self) -> u32 {
        1
    }
}

fn main() {
    drop(Old.run());
}
