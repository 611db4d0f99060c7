//! zstd layers (`application/vnd.oci.image.layer.v1.tar+zstd`): a reader
//! over ruzstd's frame decoder that, like flate2's MultiGzDecoder for gzip
//! members, decodes a concatenation of frames to its end, skips skippable
//! frames and checks each frame's content checksum.

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
use std::io::{self, Read};

/// The magic number that starts a zstd frame, as it is on disk.
pub const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The decompressed content of the zstd frames of `src`.
pub struct Decoder<R> {
    src: R,
    frame: FrameDecoder,
    /// The input ended after a whole frame.
    done: bool,
}

impl<R: Read> Decoder<R> {
    /// Reads the first frame's header: an error when `src` does not start
    /// with a zstd frame (or a skippable one).
    pub fn new(src: R) -> io::Result<Decoder<R>> {
        let mut d = Decoder { src, frame: FrameDecoder::new(), done: false };
        if !d.next_frame()? {
            return Err(invalid("zstd: no frame in the input".into()));
        }
        Ok(d)
    }

    /// Starts the next frame, skipping skippable ones; false at the end of
    /// the input.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            let mut magic = [0u8; 4];
            let n = super::blobs::read_full(&mut self.src, &mut magic)?;
            if n == 0 {
                return Ok(false);
            }
            if n < magic.len() {
                return Err(invalid(format!("zstd: {n} stray bytes after the last frame")));
            }
            match self.frame.init(magic.chain(&mut self.src)) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame { length, .. })) => {
                    let skipped = io::copy(&mut (&mut self.src).take(length.into()), &mut io::sink())?;
                    if skipped < u64::from(length) {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "zstd: truncated skippable frame"));
                    }
                }
                Err(e) => return Err(zstd_error(e)),
            }
        }
    }

    /// Checks the content checksum of the frame just decoded, when it has one.
    fn check_frame(&self) -> io::Result<()> {
        match (self.frame.get_checksum_from_data(), self.frame.get_calculated_checksum()) {
            (Some(want), Some(got)) if want != got => {
                Err(invalid(format!("zstd: content checksum mismatch (the frame says {want:08x}, the data hashes to {got:08x})")))
            }
            _ => Ok(()),
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while !self.done {
            let n = self.frame.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if !self.frame.is_finished() {
                self.frame.decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBlocks(1)).map_err(zstd_error)?;
                continue;
            }
            self.check_frame()?;
            self.done = !self.next_frame()?;
        }
        Ok(0)
    }
}


fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn zstd_error(e: FrameDecoderError) -> io::Error {
    invalid(format!("zstd: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::layers::{decompress, Compression};

    /// Frames made once with the zstd CLI (Debian's `zstd` 1.5.4), as hex.
    /// `zstd -19`: "skiff zstd frame one\n" x 20, with a content checksum.
    const ONE: &str = "28b52ffd0468e50000a8736b696666207a737464206672616d65206f6e650a010019519d4c70c0ad56";
    /// `zstd --no-check`: "frame two\n".
    const TWO: &str = "28b52ffd00585100006672616d652074776f0a";
    /// `zstd -3`: "0123456789abcdef" x 20000 (320000 bytes: three blocks whose
    /// matches reach back into the window).
    const BIG: &str = "28b52ffd0458c4000080303132333435363738396162636465660100daff279f4b4c000008300100fcff3910024d000008300100fc611d0801047f1c6c";
    /// A skippable frame holding "SKIP".
    const SKIPPABLE: &str = "502a4d1804000000534b4950";

    pub fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn decode(data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Decoder::new(data)?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn one() -> Vec<u8> {
        b"skiff zstd frame one\n".repeat(20)
    }

    #[test]
    fn decodes_a_frame() {
        assert_eq!(decode(&hex(ONE)).unwrap(), one());
        assert_eq!(decode(&hex(TWO)).unwrap(), b"frame two\n");
        assert_eq!(decode(&hex(BIG)).unwrap(), b"0123456789abcdef".repeat(20000));
        // in one-byte reads
        let big = hex(BIG);
        let mut d = Decoder::new(&big[..]).unwrap();
        let (mut out, mut b) = (Vec::new(), [0u8; 1]);
        while d.read(&mut b).unwrap() == 1 {
            out.push(b[0]);
        }
        assert_eq!(out.len(), 320_000);
        assert_eq!(out, b"0123456789abcdef".repeat(20000));
    }

    #[test]
    fn decodes_concatenated_and_skippable_frames() {
        let data = [hex(ONE), hex(SKIPPABLE), hex(TWO), hex(BIG), hex(ONE)].concat();
        let want = [one(), b"frame two\n".to_vec(), b"0123456789abcdef".repeat(20000), one()].concat();
        assert_eq!(decode(&data).unwrap(), want);
        assert_eq!(decode(&[hex(SKIPPABLE), hex(TWO)].concat()).unwrap(), b"frame two\n");
        // through decompress, which recognizes the magic
        let (mut r, c) = decompress(&data[..]).unwrap();
        assert_eq!(c, Compression::Zstd);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, want);
    }

    #[test]
    fn corrupt_input_is_an_error() {
        let good = hex(ONE);
        let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
        let mut bad_sum = good.clone();
        *bad_sum.last_mut().unwrap() ^= 1;
        cases.push(("checksum", bad_sum, "content checksum mismatch"));
        let mut bad_literal = good.clone();
        bad_literal[12] ^= 0x20; // a literal byte: decodes, but hashes differently
        cases.push(("literal", bad_literal, "content checksum mismatch"));
        cases.push(("truncated", good[..20].to_vec(), "zstd: "));
        cases.push(("truncated checksum", good[..good.len() - 2].to_vec(), "zstd: "));
        cases.push(("stray bytes", [good.clone(), vec![0x28, 0xb5]].concat(), "zstd: 2 stray bytes after the last frame"));
        cases.push(("garbage after a frame", [good.clone(), b"garbage!".to_vec()].concat(), "zstd: "));
        cases.push(("truncated skippable", [good.clone(), hex(SKIPPABLE)[..10].to_vec()].concat(), "truncated skippable frame"));
        for (what, data, want) in cases {
            let e = decode(&data).expect_err(what);
            assert!(e.to_string().contains(want), "{what}: `{e}` lacks `{want}`");
        }
        assert!(decode(b"").unwrap_err().to_string().contains("no frame"));
        assert!(decode(b"not zstd").unwrap_err().to_string().contains("zstd: "));
    }
}
