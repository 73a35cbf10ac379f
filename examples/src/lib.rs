//! Runnable examples for flext-obs; see `examples/` (`cargo run -p flext-obs-examples --example quickstart`).
