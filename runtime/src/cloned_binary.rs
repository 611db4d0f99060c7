//! CVE-2019-5736: a container that gets the runtime's own binary executed
//! inside it (`#!/proc/self/exe`) could reopen that binary and overwrite it
//! on the host. Like runc, the runtime re-executes itself from a sealed
//! memfd copy before touching a container, so /proc/self/exe of anything
//! it becomes is an immutable anonymous file, never the host binary.

use crate::error::{Context, Result};
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};

/// True when this process already runs from the sealed copy.
pub fn is_cloned() -> bool {
    std::fs::read_link("/proc/self/exe").is_ok_and(|p| p.to_string_lossy().starts_with("/memfd:skiff-runtime"))
}

/// Re-executes from a sealed memfd copy of /proc/self/exe, with the same
/// arguments and environment. Returns only on failure.
pub fn reexec() -> Result<()> {
    let name = c"skiff-runtime";
    // SAFETY: memfd_create with a valid name; the fd is owned below.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "memfd_create for the runtime's sealed copy");
    }
    // SAFETY: fd was just created and is ours.
    let mut copy = unsafe { std::fs::File::from_raw_fd(fd) };
    // In-kernel copy: no buffer, no second pass through user space.
    let exe = std::fs::File::open("/proc/self/exe").ctx(|| "open /proc/self/exe")?;
    let len = exe.metadata().ctx(|| "stat /proc/self/exe")?.len() as usize;
    let mut done = 0;
    while done < len {
        // SAFETY: sendfile between two fds we own; the offset is the file's.
        let n = unsafe { libc::sendfile(copy.as_raw_fd(), exe.as_raw_fd(), std::ptr::null_mut(), len - done) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            let bytes = std::fs::read("/proc/self/exe").ctx(|| "read /proc/self/exe")?;
            copy.write_all(&bytes[done..]).ctx(|| "copy the runtime into its memfd")?;
            break;
        }
        done += n as usize;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our fd.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "seal the runtime's memfd");
    }
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()).unwrap_or_default())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: fexecve with NULL-terminated argv/envp built above.
    unsafe { libc::fexecve(copy.as_raw_fd(), argv.as_ptr(), envp.as_ptr()) };
    Err(std::io::Error::last_os_error()).ctx(|| "re-execute the runtime from its sealed memfd")
}
