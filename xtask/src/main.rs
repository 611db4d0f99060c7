//! `cargo xtask`: skiff's build, test, cross-test, demo and bench driver.

mod bench;
mod dist;
mod fixtures;
mod prereq;
mod test;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  dist [--target T]    build the five static binaries into dist/<T>/ and check size budgets
                       (T: x86_64-unknown-linux-musl (default) | aarch64-unknown-linux-musl)
  fixtures             build test fixtures (busybox root filesystem) under target/fixtures
  test                 the whole suite: dist, fixtures, unit tests, tests/, test-cross
  test-cross           build aarch64 dist and run it under qemu-aarch64-static
  demo                 engine run -d --init -p 8080:80 busybox httpd, fetch the page, clean up
  bench [sizes|init|proxy|runtime|shim|engine|all] [--quick]
                       measure against the programs skiff replaces (tini, docker-proxy, runc,
                       containerd-shim-runc-v2, conmon, docker), side by side in one run; writes
                       bench/RESULTS.md and a chart per section (bench/<section>.svg). Default all;
                       --quick: fewer rounds, shorter runs (all in ~2 minutes on 2 cores)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("dist") => dist::target_arg(&args[1..]).and_then(|t| dist::dist(&t).map(|_| ())),
        Some("fixtures") => fixtures::build().map(|_| ()),
        Some("test") => test::all(),
        Some("test-cross") => test::cross(),
        Some("demo") => test::demo(),
        Some("bench") => bench::run(&args[1..]),
        Some("http-backend") => bench::proxy::http_backend(args.get(1).and_then(|p| p.parse().ok())),
        Some("zombie-burst") => bench::zombie_burst(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(10000)),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
