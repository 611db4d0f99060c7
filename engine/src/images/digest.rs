//! sha256 digests (`sha256:<64 hex>`), computed on the stream by readers
//! that hash what passes through them.

use crate::error::{err, Result};
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// `sha256:<hex>` of `bytes`.
pub fn of_bytes(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// True for 64 lowercase hex digits.
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The hex part of a `sha256:<hex>` digest; fails on anything else (other
/// algorithms, bad length, uppercase), so a digest can name a file safely.
pub fn hex_of(digest: &str) -> Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(h) if is_hex64(h) => Ok(h),
        _ => err(format!("bad digest `{digest}`: want sha256:<64 lowercase hex digits>")),
    }
}

/// The chain id of a layer on top of `parent` (OCI image-spec: chain ids).
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(p) => of_bytes(format!("{p} {diff_id}").as_bytes()),
    }
}

/// A reader that hashes and counts what is read through it.
pub struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> Self {
        HashReader { inner, hasher: Sha256::new(), count: 0 }
    }

    /// Reads what is left to EOF (so the digest covers all of it).
    pub fn drain(&mut self) -> io::Result<u64> {
        io::copy(self, &mut io::sink())
    }

    /// `sha256:<hex>` of everything read so far.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex(&self.hasher.clone().finalize()))
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A sink that hashes what is written to it (a build step's inputs).
#[derive(Default)]
pub struct HashWriter(Sha256);

impl HashWriter {
    /// `sha256:<hex>` of everything written so far.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex(&self.0.clone().finalize()))
    }
}

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that copies what is read through it into `sink` (a blob being
/// written) while hashing it.
pub struct Tee<R, W> {
    inner: HashReader<R>,
    sink: W,
}

impl<R: Read, W: Write> Tee<R, W> {
    pub fn new(inner: R, sink: W) -> Self {
        Tee { inner: HashReader::new(inner), sink }
    }

    pub fn drain(&mut self) -> io::Result<u64> {
        io::copy(self, &mut io::sink())
    }

    pub fn digest(&self) -> String {
        self.inner.digest()
    }

    pub fn count(&self) -> u64 {
        self.inner.count()
    }

    pub fn into_sink(self) -> W {
        self.sink
    }
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_chain_ids() {
        assert_eq!(of_bytes(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let mut r = HashReader::new(&b"abc"[..]);
        r.drain().unwrap();
        assert_eq!(r.digest(), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(r.count(), 3);
        let d = of_bytes(b"x");
        assert_eq!(chain_id(None, &d), d);
        assert_eq!(chain_id(Some(&d), &d), of_bytes(format!("{d} {d}").as_bytes()));
        assert!(hex_of("sha256:../../etc").is_err());
        assert!(hex_of(&d).is_ok());
    }
}
