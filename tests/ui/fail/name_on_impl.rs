use flext_obs::flext_monitor;

struct Orders;

#[flext_monitor(name = "orders")]
impl Orders {
    fn place(&self) {}
}

fn main() {
    Orders.place();
}
