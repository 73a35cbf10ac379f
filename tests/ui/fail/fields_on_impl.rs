use flext_obs::flext_monitor;

struct Orders;

#[flext_monitor(fields(id = 1))]
impl Orders {
    fn place(&self) {}
}

fn main() {
    Orders.place();
}
