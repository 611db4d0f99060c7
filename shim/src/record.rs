//! What the shim leaves in the state dir for others to read: `shim.pid`
//! and `exit`, each written atomically (temp file, fsync, rename, fsync of
//! the dir), so a reader never sees half a record.

use crate::protocol::{self, Exit};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `data` to `dir/name` by temp file + fsync + rename.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let ctx = |e: io::Error, what: &str, p: &Path| io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(|e| ctx(e, "create", &tmp))?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(|e| ctx(e, "write", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, &target).map_err(|e| ctx(e, "rename to", &target))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Records the container's exit in `<dir>/exit`.
pub fn write_exit(dir: &Path, exit: &Exit) -> io::Result<()> {
    let mut v = serde_json::to_vec(exit).map_err(io::Error::other)?;
    v.push(b'\n');
    write_atomic(dir, protocol::EXIT_FILE, &v)
}

pub fn write_pid(dir: &Path, pid: i32) -> io::Result<()> {
    write_atomic(dir, protocol::PID_FILE, format!("{pid}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_record_round_trips() {
        let dir = std::env::temp_dir().join(format!("shim-record-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = Exit { code: 143, time: "2024-01-01T00:00:00.5Z".into(), signal: Some(15) };
        write_exit(&dir, &e).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("exit")).unwrap(),
            "{\"code\":143,\"time\":\"2024-01-01T00:00:00.5Z\",\"signal\":15}\n"
        );
        assert_eq!(protocol::read_exit(&dir), Some(e));
        assert!(!dir.join(".exit.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
