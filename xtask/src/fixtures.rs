//! Test fixtures: a busybox root filesystem made from Debian's busybox-static.

use crate::dist::is_static;
use crate::prereq::{require, root};
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::process::Command;

/// Builds target/fixtures/busybox-rootfs (replacing it whole, by rename) and
/// returns target/fixtures.
pub fn build() -> Result<PathBuf, String> {
    let busybox = require("/bin/busybox", "busybox-static")?;
    if !is_static(&busybox)? {
        return Err("/bin/busybox is dynamically linked: install the Debian package `busybox-static`".into());
    }
    let dir = root().join("target/fixtures");
    let final_root = dir.join("busybox-rootfs");
    let tmp = dir.join(format!("busybox-rootfs.tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let mk = |p: PathBuf| std::fs::create_dir_all(&p).map_err(|e| format!("create {}: {e}", p.display()));
    for d in ["bin", "sbin", "usr/bin", "usr/sbin", "dev", "etc", "proc", "sys", "tmp", "root", "var/www", "run"] {
        mk(tmp.join(d))?;
    }
    std::fs::copy(&busybox, tmp.join("bin/busybox")).map_err(|e| format!("copy /bin/busybox: {e}"))?;
    let list = Command::new(&busybox).arg("--list-full").output().map_err(|e| format!("run busybox --list-full: {e}"))?;
    let list = String::from_utf8_lossy(&list.stdout);
    let mut applets = 0;
    for path in list.lines().map(str::trim).filter(|l| !l.is_empty() && *l != "bin/busybox") {
        let link = tmp.join(path);
        if link.exists() {
            continue;
        }
        symlink("/bin/busybox", &link).map_err(|e| format!("symlink {}: {e}", link.display()))?;
        applets += 1;
    }
    let files = [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ("etc/hostname", "skiff\n"),
        ("var/www/index.html", "hello from skiff busybox\n"),
    ];
    for (p, text) in files {
        std::fs::write(tmp.join(p), text).map_err(|e| format!("write {p}: {e}"))?;
    }
    let _ = std::fs::remove_dir_all(&final_root);
    std::fs::rename(&tmp, &final_root).map_err(|e| format!("rename {} to {}: {e}", tmp.display(), final_root.display()))?;
    println!("fixtures: {} ({applets} busybox applets)", final_root.display());
    Ok(dir)
}
