//! One error type: a message that names what failed and on what
//! (`mount proc on /rootfs/proc: EPERM`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Builds an error from a message.
pub fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}

/// Adds what was being done to a lower-level error: `.ctx(|| format!("mount proc on {p}"))`.
pub trait Context<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| {
            let detail = match e.raw_os_error() {
                Some(n) => nix::errno::Errno::from_raw(n).to_string(),
                None => e.to_string(),
            };
            Error(format!("{}: {detail}", what().into()))
        })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::errno::Errno> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {e}", what().into())))
    }
}

impl<T> Context<T> for std::result::Result<T, serde_json::Error> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {e}", what().into())))
    }
}

impl<T> Context<T> for Result<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {}", what().into(), e.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_is_named() {
        let r: std::result::Result<(), nix::errno::Errno> = Err(nix::errno::Errno::EPERM);
        assert_eq!(r.ctx(|| "mount proc on /r/proc").unwrap_err().0, "mount proc on /r/proc: EPERM: Operation not permitted");
        let io: std::io::Result<()> = Err(std::io::Error::from_raw_os_error(libc::ENOENT));
        assert!(io.ctx(|| "open x").unwrap_err().0.starts_with("open x: ENOENT"));
    }
}
