//! Zero-copy forwarding: `splice(2)` moves bytes socket -> pipe -> socket
//! inside the kernel. A pipe is only held while a direction has bytes in
//! flight; empty pipes go back to a small pool, so idle connections hold none
//! and new ones rarely pay for `pipe2`.

use crate::sock::cvt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Bytes a pipe is asked to hold (the kernel may round or refuse; the
/// granted size is what counts).
const PIPE_SIZE: libc::c_int = 256 * 1024;
/// Empty pipes kept for reuse.
const POOL_MAX: usize = 64;

/// A pipe used as a splice buffer.
pub struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
    /// Capacity in bytes.
    pub cap: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0; 2];
        // SAFETY: fds has room for two fds.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
        // SAFETY: both fds are fresh and ours.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: plain fcntl on our fd; failure keeps the default size.
        let cap = match unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) } {
            n if n > 0 => n as usize,
            // SAFETY: as above.
            _ => match unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ) } {
                n if n > 0 => n as usize,
                _ => 65536,
            },
        };
        Ok(Pipe { r, w, cap })
    }

    /// Moves up to `len` bytes from socket `src` into the pipe.
    pub fn fill(&self, src: RawFd, len: usize) -> io::Result<usize> {
        splice(src, self.w.as_raw_fd(), len)
    }

    /// Moves up to `len` bytes from the pipe to socket `dst`.
    pub fn drain(&self, dst: RawFd, len: usize) -> io::Result<usize> {
        splice(self.r.as_raw_fd(), dst, len)
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: plain syscall on fds we own, no offsets.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Size of the user-space buffer a direction copies through.
const COPY_BUF: usize = 64 * 1024;
/// Copy buffers kept for reuse.
const BUF_POOL_MAX: usize = 16;

/// Empty pipes ready for reuse, and the copy buffers of directions that do
/// not splice (held only while they have bytes in flight, like pipes).
#[derive(Default)]
pub struct PipePool {
    free: Vec<Pipe>,
    bufs: Vec<Box<[u8]>>,
}

impl PipePool {
    /// An empty pipe, reused or new.
    pub fn get(&mut self) -> io::Result<Pipe> {
        match self.free.pop() {
            Some(p) => Ok(p),
            None => Pipe::new(),
        }
    }

    /// Takes back a pipe that holds no data.
    pub fn put(&mut self, p: Pipe) {
        if self.free.len() < POOL_MAX {
            self.free.push(p);
        }
    }

    /// A copy buffer of `COPY_BUF` bytes, reused or new.
    pub fn get_buf(&mut self) -> Box<[u8]> {
        match self.bufs.pop() {
            Some(b) => b,
            None => vec![0u8; COPY_BUF].into_boxed_slice(),
        }
    }

    /// Takes back a copy buffer.
    pub fn put_buf(&mut self, b: Box<[u8]>) {
        if self.bufs.len() < BUF_POOL_MAX {
            self.bufs.push(b);
        }
    }

    /// Closes the pooled pipes (to free descriptors when they run out).
    pub fn clear(&mut self) {
        self.free.clear();
    }

    pub fn len(&self) -> usize {
        self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.free.is_empty()
    }
}
