//! `shim`: skiff's per-container supervisor (containerd-shim/conmon role).

use skiff_shim::options::{self, Command};
use std::io::Write;

fn main() {
    match options::parse(std::env::args_os().skip(1)) {
        Ok(Command::Run(o)) => std::process::exit(skiff_shim::main_with(*o)),
        Ok(Command::Version) => {
            let _ = writeln!(std::io::stdout(), "shim (skiff) version {}", env!("CARGO_PKG_VERSION"));
        }
        Ok(Command::Help) => {
            let _ = writeln!(std::io::stdout(), "{}", options::USAGE);
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "shim: {e}\n{}", options::USAGE);
            std::process::exit(2);
        }
    }
}
