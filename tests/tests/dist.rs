//! The dist binaries are what users copy to a device: static, and each
//! answers --version with its name.

use skiff_tests::{bin, require, run, text};
use std::process::Command;
use std::time::Duration;

const BINARIES: [&str; 5] = ["init", "proxy", "shim", "runtime", "engine"];

#[test]
fn file_says_statically_linked() {
    let file = require("/usr/bin/file", "file");
    for b in BINARIES {
        let out = run(Command::new(&file).arg("-b").arg(bin(b)), Duration::from_secs(30));
        let what = text(&out.stdout);
        assert!(what.contains("statically linked"), "{b}: {what}");
        assert!(!what.contains("dynamically"), "{b}: {what}");
    }
}

#[test]
fn every_binary_names_itself_in_version() {
    for b in BINARIES {
        let out = run(Command::new(bin(b)).arg("--version"), Duration::from_secs(30));
        assert!(out.status.success(), "{b} --version: {}", text(&out.stderr));
        assert!(text(&out.stdout).starts_with(&format!("{b} (skiff) version ")), "{b}: {}", text(&out.stdout));
    }
}
