use flext_obs::flext_monitor;

trait Repository {
    #[flext_monitor]
    fn load(&self, id: u32) -> Option<String>;
}

fn main() {}
