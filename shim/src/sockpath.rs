//! Unix socket paths longer than sun_path (108 bytes) happen with deep state
//! roots (`<root>/containers/<64-hex id>/shim.sock`). They are reached
//! through `/proc/self/fd/N/NAME`, N an O_PATH fd of the socket's dir.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Longest path that fits sun_path with its NUL.
const MAX: usize = 107;

/// A socket path usable with bind/connect; keep it alive while using `path`.
pub struct SockPath {
    _dir: Option<File>,
    pub path: PathBuf,
}

pub fn usable(p: &Path) -> io::Result<SockPath> {
    if p.as_os_str().len() <= MAX {
        return Ok(SockPath { _dir: None, path: p.to_path_buf() });
    }
    let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
        return Ok(SockPath { _dir: None, path: p.to_path_buf() });
    };
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(parent)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", parent.display())))?;
    let path = Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
    Ok(SockPath { _dir: Some(dir), path })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn long_paths_bind_and_connect() {
        let base = std::env::temp_dir().join(format!("skiff-sockpath-{}", std::process::id()));
        let deep = base.join("x".repeat(60)).join("y".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let sock = deep.join("s.sock");
        assert!(sock.as_os_str().len() > 108);
        let b = usable(&sock).unwrap();
        let l = UnixListener::bind(&b.path).unwrap();
        assert!(sock.exists());
        let c = usable(&sock).unwrap();
        let _s = UnixStream::connect(&c.path).unwrap();
        let _ = l.accept().unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }
}
