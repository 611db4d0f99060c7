//! `cargo xtask dist`: the five binaries, static musl, into dist/<target>/,
//! with a size table checked against the budgets in the root Cargo.toml.
//!
//! The budgets assume nightly with `-Z build-std` and immediate-abort panics
//! (std rebuilt for size); stable's prebuilt std is the fallback where the
//! nightly pieces for a target cannot be installed, and it says so.

use crate::prereq::{clean, root, status};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const BINARIES: [&str; 5] = ["init", "proxy", "shim", "runtime", "engine"];
pub const HOST: &str = "x86_64-unknown-linux-musl";
pub const AARCH64: &str = "aarch64-unknown-linux-musl";
const TARGETS: [&str; 2] = [HOST, AARCH64];

pub fn target_arg(args: &[String]) -> Result<String, String> {
    let t = match args {
        [] => HOST.to_string(),
        [flag, t] if flag == "--target" => t.clone(),
        [t] if t.starts_with("--target=") => t["--target=".len()..].to_string(),
        _ => return Err(format!("dist: expected [--target T], got {args:?}")),
    };
    if !TARGETS.contains(&t.as_str()) {
        return Err(format!("dist: unsupported target `{t}` (supported: {})", TARGETS.join(", ")));
    }
    Ok(t)
}

/// Which toolchain builds the dist, and why.
struct Toolchain {
    name: &'static str,
    build_std: bool,
    note: String,
    /// Extra RUSTFLAGS (linking musl's crt objects from another toolchain).
    flags: Vec<String>,
}

fn rustup(args: &[&str]) -> Result<(), String> {
    let out = clean(Command::new("rustup"))
        .args(args)
        .output()
        .map_err(|e| format!("run rustup {}: {e} (rustup is required)", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().find(|l| l.contains("error")).unwrap_or("").trim();
        Err(format!("`rustup {}` failed: {first}", args.join(" ")))
    }
}

fn sysroot(toolchain: &str) -> Option<PathBuf> {
    let out = clean(Command::new("rustc")).arg(format!("+{toolchain}")).args(["--print", "sysroot"]).output().ok()?;
    out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn choose_toolchain(target: &str) -> Result<Toolchain, String> {
    let src = rustup(&["component", "add", "rust-src", "--toolchain", "nightly"]);
    let nightly = src.clone().and_then(|_| rustup(&["target", "add", "--toolchain", "nightly", target]));
    let built_std = |note: String, flags| Toolchain { name: "nightly", build_std: true, note, flags };
    match nightly {
        Ok(()) => Ok(built_std("nightly, -Z build-std, immediate-abort".into(), Vec::new())),
        Err(why) => {
            rustup(&["target", "add", "--toolchain", "stable", target])
                .map_err(|e| format!("cannot install the rustup target {target}: {e}"))?;
            // build-std needs only rust-src; what nightly lacks for this target
            // is musl's crt objects and libc.a, which are the same in stable's
            // rust-std: link those explicitly.
            let sc = sysroot("stable").map(|s| s.join("lib/rustlib").join(target).join("lib/self-contained"));
            match (src, sc) {
                (Ok(()), Some(sc)) if sc.join("crt1.o").exists() => {
                    let d = sc.display();
                    let flags = vec![
                        "-Clink-self-contained=no".to_string(),
                        format!("-Lnative={d}"),
                        format!("-Zpre-link-args={d}/crt1.o"),
                        format!("-Zpre-link-args={d}/crti.o"),
                        format!("-Zpre-link-args={d}/crtbegin.o"),
                        format!("-Clink-arg={d}/crtend.o"),
                        format!("-Clink-arg={d}/crtn.o"),
                    ];
                    Ok(built_std(format!("nightly -Z build-std with stable's musl crt objects ({why})"), flags))
                }
                _ => Ok(Toolchain {
                    name: "stable",
                    build_std: false,
                    note: format!("stable std (nightly unusable: {why})"),
                    flags: Vec::new(),
                }),
            }
        }
    }
}

pub struct Built {
    pub name: &'static str,
    pub path: PathBuf,
}

/// Builds into dist/<target>/ and prints the size table; Err when a binary
/// is not static or (x86_64) passes its budget.
pub fn dist(target: &str) -> Result<Vec<Built>, String> {
    let root = root();
    let tc = choose_toolchain(target)?;
    println!("dist: {target} with {}", tc.note);
    let mut rustflags = vec!["-Crelocation-model=static".to_string()];
    if tc.build_std {
        rustflags.insert(0, "-Zunstable-options".into());
        rustflags.insert(1, "-Cpanic=immediate-abort".into());
    }
    if target == AARCH64 {
        // RUSTFLAGS replaces .cargo/config's per-target flags: repeat them.
        rustflags.push("-Clinker-flavor=ld.lld".into());
    }
    rustflags.extend(tc.flags.iter().cloned());
    let target_dir = root.join("target/dist").join(tc.name);
    let mut cmd = clean(Command::new("cargo"));
    cmd.current_dir(&root)
        .arg(format!("+{}", tc.name))
        .args(["build", "--release", "--target", target])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", rustflags.join(" "));
    if tc.build_std {
        cmd.args(["-Z", "build-std=std,panic_abort"]);
    }
    for b in BINARIES {
        cmd.args(["-p", b]);
    }
    status(&mut cmd)?;

    let out_dir = root.join("dist").join(target);
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("create {}: {e}", out_dir.display()))?;
    let budgets = budgets(&root.join("Cargo.toml"))?;
    let enforce = target == HOST;
    let mut built = Vec::new();
    let mut failures = Vec::new();
    println!("\n{:<8} {:>9} {:>9} {:>11}  {:<7} status", "binary", "bytes", "KiB", "budget KiB", "linked");
    for name in BINARIES {
        let from = target_dir.join(target).join("release").join(name);
        let to = out_dir.join(name);
        install(&from, &to)?;
        let size = std::fs::metadata(&to).map_err(|e| format!("stat {}: {e}", to.display()))?.len();
        let linked = if is_static(&to)? { "static" } else { "DYNAMIC" };
        let budget = budgets.iter().find(|(n, _)| n == name).map(|&(_, b)| b);
        let kib = size as f64 / 1024.0;
        let verdict = verdict(size, budget, linked == "static", enforce);
        if verdict.starts_with("FAIL") {
            failures.push(format!("{name}: {verdict}"));
        }
        let b = budget.map(|b| b.to_string()).unwrap_or_else(|| "-".into());
        println!("{name:<8} {size:>9} {kib:>9.1} {b:>11}  {linked:<7} {verdict}");
        built.push(Built { name, path: to });
    }
    println!("\ndist: binaries in {}", out_dir.display());
    if failures.is_empty() {
        Ok(built)
    } else {
        Err(format!("dist failed: {}", failures.join("; ")))
    }
}

/// The status column: a FAIL fails `dist`.
fn verdict(size: u64, budget_kib: Option<u64>, is_static: bool, enforce: bool) -> &'static str {
    match budget_kib {
        _ if !is_static => "FAIL: not statically linked",
        Some(b) if enforce && size > b * 1024 => "FAIL: over budget",
        Some(_) if enforce => "ok",
        Some(_) => "ok (budgets are for x86_64)",
        None => "FAIL: no budget in Cargo.toml",
    }
}

/// Copies by temp file + rename so a running test never sees half a binary.
fn install(from: &Path, to: &Path) -> Result<(), String> {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).map_err(|e| format!("copy {} to {}: {e}", from.display(), tmp.display()))?;
    std::fs::rename(&tmp, to).map_err(|e| format!("rename {} to {}: {e}", tmp.display(), to.display()))
}

/// Reads `[workspace.metadata.size-budget-kib]` from the root manifest.
pub fn budgets(manifest: &Path) -> Result<Vec<(String, u64)>, String> {
    let text = std::fs::read_to_string(manifest).map_err(|e| format!("read {}: {e}", manifest.display()))?;
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[workspace.metadata.size-budget-kib]";
            continue;
        }
        if !inside || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| format!("{}: bad budget line `{line}`", manifest.display()))?;
        let v: u64 = v.trim().parse().map_err(|_| format!("{}: budget `{line}` is not a number of KiB", manifest.display()))?;
        out.push((k.trim().to_string(), v));
    }
    if out.is_empty() {
        return Err(format!("{}: no [workspace.metadata.size-budget-kib] section", manifest.display()));
    }
    Ok(out)
}

/// True when the ELF file has no program interpreter (PT_INTERP), i.e. it
/// is statically linked and runs without a dynamic loader on the device.
pub fn is_static(path: &Path) -> Result<bool, String> {
    let b = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let bad = || format!("{}: not a 64-bit little-endian ELF file", path.display());
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return Err(bad());
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[32..40].try_into().map_err(|_| bad())?) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > b.len() {
            return Err(bad());
        }
        if u32::from_le_bytes(b[o..o + 4].try_into().map_err(|_| bad())?) == 3 {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_from_the_root_manifest() {
        let b = budgets(&root().join("Cargo.toml")).unwrap();
        for name in BINARIES {
            assert!(b.iter().any(|(n, _)| n == name), "no budget for {name}");
        }
        assert_eq!(b.iter().find(|(n, _)| n == "init").unwrap().1, 32);
    }

    #[test]
    fn budget_errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("xtask-budget-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = dir.join("Cargo.toml");
        std::fs::write(&m, "[workspace.metadata.size-budget-kib]\ninit = lots\n").unwrap();
        let e = budgets(&m).unwrap_err();
        assert!(e.contains("init = lots"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn over_budget_or_dynamic_fails() {
        assert_eq!(verdict(32 * 1024, Some(32), true, true), "ok");
        assert_eq!(verdict(32 * 1024 + 1, Some(32), true, true), "FAIL: over budget");
        assert_eq!(verdict(33 * 1024, Some(32), true, false), "ok (budgets are for x86_64)");
        assert_eq!(verdict(1, Some(32), false, true), "FAIL: not statically linked");
        assert_eq!(verdict(1, None, true, true), "FAIL: no budget in Cargo.toml");
    }

    #[test]
    fn static_check_tells_dynamic_from_static() {
        // The host's dynamic `ls` has an interpreter; this test binary too.
        assert!(!is_static(Path::new("/bin/ls")).unwrap());
        assert!(is_static(Path::new("/etc/passwd")).is_err());
    }
}
