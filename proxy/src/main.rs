//! `proxy`: skiff's userland port forwarder, a docker-proxy drop-in.

use skiff_proxy::args::{self, Command};
use std::io::Write;

fn main() {
    // Write errors (a closed stdout or stderr) are ignored: the proxy never
    // panics over its own output.
    match args::parse(std::env::args_os().skip(1)) {
        Ok(Command::Run(cfg)) => std::process::exit(skiff_proxy::run(&cfg)),
        Ok(Command::Version) => {
            let _ = writeln!(std::io::stdout(), "proxy (skiff) version {}", env!("CARGO_PKG_VERSION"));
        }
        Ok(Command::Help) => {
            let _ = std::io::stdout().write_all(args::USAGE.as_bytes());
        }
        Err(e) => {
            let _ = write!(std::io::stderr(), "proxy: {e}\n{}", args::USAGE);
            std::process::exit(2);
        }
    }
}
