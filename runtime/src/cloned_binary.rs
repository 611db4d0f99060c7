//! CVE-2019-5736: a container that gets the runtime's own binary executed
//! inside it (`#!/proc/self/exe`) could reopen that binary and overwrite it
//! on the host. Like runc, the runtime re-executes itself, before touching
//! a container, from a file nobody can write: as runc 1.2 does, its binary
//! seen through a private read-only overlayfs (fsopen/fsmount, attached to
//! no mount namespace, no copy), or where that is not allowed (no
//! privilege, an old kernel), a sealed memfd copy. /proc/self/exe of
//! anything it becomes is never the writable host binary.

use crate::error::{Context, Result};
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// overlayfs's statfs f_type.
const OVERLAYFS_SUPER_MAGIC: libc::c_long = 0x794c_7630;

/// True when this process already runs from a file it cannot write: the
/// sealed memfd copy, or a binary on a read-only overlayfs mount.
pub fn is_cloned() -> bool {
    if std::fs::read_link("/proc/self/exe").is_ok_and(|p| p.to_string_lossy().starts_with("/memfd:skiff-runtime")) {
        return true;
    }
    // SAFETY: statfs/statvfs into zeroed structs of the right types.
    let (mut fs, mut vfs): (libc::statfs, libc::statvfs) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    let ok = unsafe { libc::statfs(c"/proc/self/exe".as_ptr(), &mut fs) == 0 && libc::statvfs(c"/proc/self/exe".as_ptr(), &mut vfs) == 0 };
    ok && fs.f_type as libc::c_long == OVERLAYFS_SUPER_MAGIC && vfs.f_flag & libc::ST_RDONLY != 0
}

/// Re-executes from a file nobody can write (see the module docs), with
/// the same arguments and environment. `lower`, when privileged: a
/// directory for the overlayfs's second layer (overlayfs wants two lower
/// layers to be read-only; what it holds is hidden under the binary's
/// directory, and created if missing). Returns only on failure.
pub fn reexec(lower: Option<&Path>) -> Result<()> {
    let (args, env) = (args_c(), env_c());
    if let Some(exe) = lower.and_then(|l| sealed_overlay(l).ok()) {
        exec_fd(exe.as_raw_fd(), &args, &env);
        // not executable from there (noexec, a LSM): copy instead
    }
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
    exec_fd(copy.as_raw_fd(), &args, &env);
    Err(std::io::Error::last_os_error()).ctx(|| "re-execute the runtime from its sealed memfd")
}

fn args_c() -> Vec<CString> {
    std::env::args_os().map(|a| CString::new(a.into_encoded_bytes()).unwrap_or_default()).collect()
}

fn env_c() -> Vec<CString> {
    std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect()
}

/// execveat(fd, "", AT_EMPTY_PATH): returns only on failure.
fn exec_fd(fd: RawFd, args: &[CString], env: &[CString]) {
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: NULL-terminated argv/envp built above; an empty path with AT_EMPTY_PATH.
    unsafe { libc::syscall(libc::SYS_execveat, fd, c"".as_ptr(), argv.as_ptr(), envp.as_ptr(), libc::AT_EMPTY_PATH) };
}

/// Our binary through a private overlayfs whose lower layers are its
/// directory and `lower`, mounted read-only (no upper layer:
/// writes are impossible, and unlike a read-only bind mount it cannot be
/// made writable again). An O_PATH fd of it.
fn sealed_overlay(lower: &Path) -> std::io::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const MOUNT_ATTR_RDONLY: libc::c_uint = 1;
    const MOUNT_ATTR_NOSUID: libc::c_uint = 2;
    const MOUNT_ATTR_NODEV: libc::c_uint = 4;
    let fail = || std::io::Error::last_os_error();
    let exe = std::fs::read_link("/proc/self/exe")?;
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else { return Err(std::io::ErrorKind::InvalidInput.into()) };
    std::fs::create_dir_all(lower)?;
    // overlayfs option syntax: `:` separates layers, `\` escapes
    let esc = |p: &Path| p.to_string_lossy().replace('\\', "\\\\").replace(':', "\\:");
    let layers = CString::new(format!("{}:{}", esc(dir), esc(lower))).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: the new mount API's syscalls with valid C strings; each fd is owned at once.
    unsafe {
        let ctx = libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC);
        if ctx < 0 {
            return Err(fail());
        }
        let ctx = OwnedFd::from_raw_fd(ctx as RawFd);
        let set = |k: &std::ffi::CStr, v: &std::ffi::CStr| libc::syscall(libc::SYS_fsconfig, ctx.as_raw_fd(), FSCONFIG_SET_STRING, k.as_ptr(), v.as_ptr(), 0);
        if set(c"lowerdir", &layers) != 0 {
            return Err(fail());
        }
        // inode number mapping is not needed, and logs noise across filesystems
        let _ = set(c"xino", c"off");
        if libc::syscall(libc::SYS_fsconfig, ctx.as_raw_fd(), FSCONFIG_CMD_CREATE, std::ptr::null::<libc::c_char>(), std::ptr::null::<libc::c_void>(), 0) != 0 {
            return Err(fail());
        }
        let mnt = libc::syscall(libc::SYS_fsmount, ctx.as_raw_fd(), FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        if mnt < 0 {
            return Err(fail());
        }
        let mnt = OwnedFd::from_raw_fd(mnt as RawFd);
        let name = CString::new(name.as_encoded_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
        let fd = libc::openat(mnt.as_raw_fd(), name.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(fail());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}
