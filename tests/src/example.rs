//! The main example (`examples/service`, the README's first command) run by cargo from the
//! workspace, for the tests that check it from outside (a real Prometheus, a real browser).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// A running example; killed when dropped.
#[derive(Debug)]
pub struct Example(pub Child);

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The workspace root.
///
/// # Panics
/// When the tests crate has no parent directory (never, in this workspace).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

/// `cargo run` of the main example with `args` after `--`.
pub fn example_command(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace()).args(["run", "-q", "-p", "flext-obs-examples", "--example", "service", "--"]).args(args);
    command
}
