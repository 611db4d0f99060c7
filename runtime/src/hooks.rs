//! Hooks (config.md "POSIX-platform Hooks"): each runs with the container
//! state JSON on stdin, its own env, and its timeout; a failure is an error
//! naming the hook.

use crate::error::{err, Context, Result};
use oci_spec::runtime::Hook;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn run_all(kind: &str, hooks: &Option<Vec<Hook>>, state_json: &[u8]) -> Result<()> {
    for h in hooks.iter().flatten() {
        run(kind, h, state_json)?;
    }
    Ok(())
}

pub fn run(kind: &str, hook: &Hook, state_json: &[u8]) -> Result<()> {
    let path = hook.path();
    let what = || format!("{kind} hook {}", path.display());
    let mut cmd = Command::new(path);
    if let Some(args) = hook.args() {
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().ctx(what)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state_json);
    }
    let deadline = hook.timeout().map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    loop {
        if let Some(st) = child.try_wait().ctx(what)? {
            if st.success() {
                return Ok(());
            }
            let mut msg = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut msg);
            }
            return err(format!("{} failed: {st}{}{}", what(), if msg.is_empty() { "" } else { ": " }, msg.trim()));
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return err(format!("{} timed out after {}s", what(), hook.timeout().unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
