//! `runtime`: skiff runtime: OCI runtime with runc's command line.
//! Only `--version` works so far; every other use says so and fails.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-v" || a == "version") {
        println!("runtime (skiff) version {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    eprintln!("runtime: not implemented yet (skiff runtime is a stub in this build)");
    std::process::exit(125);
}
