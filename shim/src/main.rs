//! `shim`: skiff shim: per-container supervisor (containerd-shim/conmon role).
//! Only `--version` works so far; every other use says so and fails.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-v" || a == "version") {
        println!("shim (skiff) version {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    eprintln!("shim: not implemented yet (skiff shim is a stub in this build)");
    std::process::exit(125);
}
