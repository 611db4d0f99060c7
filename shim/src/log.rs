//! The container log in docker's json-file format: one JSON object per
//! message, `{"log":"...\n","stream":"stdout","time":"<RFC3339Nano>"}`,
//! byte for byte what dockerd writes (same escaping, same 16 KiB split of
//! long lines, same rotation), so docker's tools read it.

use crate::clock;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Docker's copier buffer: a line longer than this is logged in pieces.
pub const MAX_MESSAGE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Splits one output stream into log messages the way docker's copier does:
/// complete lines (logged with their newline), pieces of [`MAX_MESSAGE`]
/// bytes of a longer line and a last unterminated piece at end of stream
/// (logged without a newline). The pieces of one line share the time of the
/// first piece.
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
    partial_time: Option<String>,
}

impl Lines {
    /// Adds output and emits every message it completes as
    /// `(bytes without newline, complete, time)`.
    pub fn push(&mut self, data: &[u8], emit: &mut dyn FnMut(&[u8], bool, &str)) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        loop {
            let end = self.buf.len().min(start + MAX_MESSAGE);
            let window = &self.buf[start..end];
            if let Some(q) = window.iter().position(|&b| b == b'\n') {
                let time = self.partial_time.take().unwrap_or_else(clock::now);
                emit(&window[..q], true, &time);
                start += q + 1;
            } else if window.len() == MAX_MESSAGE {
                let time = self.partial_time.get_or_insert_with(clock::now).clone();
                emit(window, false, &time);
                start = end;
            } else {
                break;
            }
        }
        self.buf.drain(..start);
    }

    /// End of stream: emits what is left as a partial message.
    pub fn flush(&mut self, emit: &mut dyn FnMut(&[u8], bool, &str)) {
        if !self.buf.is_empty() {
            let time = self.partial_time.take().unwrap_or_else(clock::now);
            emit(&self.buf, false, &time);
            self.buf.clear();
        }
        self.partial_time = None;
    }
}

/// Appends `s` as a JSON string the way docker's jsonlog does: `<`, `>`
/// and `&` as \u00XX, control bytes as \n, \r or \u00XX, each invalid
/// UTF-8 byte as \ufffd, U+2028/U+2029 escaped.
pub fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' | '"' => out.extend_from_slice(&[b'\\', c as u8]),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '<' | '>' | '&' | '\0'..='\x1f' => {
                    let b = c as u8;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 15)]);
                }
                '\u{2028}' => out.extend_from_slice(b"\\u2028"),
                '\u{2029}' => out.extend_from_slice(b"\\u2029"),
                c => {
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// Encodes one json-file line (with its trailing newline).
pub fn encode(out: &mut Vec<u8>, stream: Stream, line: &[u8], complete: bool, time: &str) {
    out.push(b'{');
    if !line.is_empty() || complete {
        out.extend_from_slice(b"\"log\":");
        let mut text = Vec::with_capacity(line.len() + 1);
        text.extend_from_slice(line);
        if complete {
            text.push(b'\n');
        }
        escape_into(out, &text);
        out.push(b',');
    }
    out.extend_from_slice(b"\"stream\":\"");
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// The log file with docker's `max-size` / `max-file` rotation: before a
/// write, a file at or over max-size moves to `.1` (older ones shift up,
/// the oldest beyond max-file is removed; with max-file 1 it is truncated).
/// Write errors (a full disk) drop the message and count it; they never
/// block the container.
pub struct JsonLog {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
    dropped: u64,
    buf: Vec<u8>,
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("open log {}: {e}", path.display())))
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl JsonLog {
    pub fn open(path: &Path, max_size: Option<u64>, max_file: u32) -> io::Result<JsonLog> {
        let file = open(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(JsonLog {
            path: path.to_path_buf(),
            file: Some(file),
            size,
            max_size,
            max_file: max_file.max(1),
            dropped: 0,
            buf: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Messages lost to write errors so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_file <= 1 {
            if let Some(f) = &self.file {
                f.set_len(0)?;
            }
            self.size = 0;
            return Ok(());
        }
        self.file = None;
        let _ = std::fs::remove_file(numbered(&self.path, self.max_file - 1));
        for i in (1..self.max_file - 1).rev() {
            let _ = std::fs::rename(numbered(&self.path, i), numbered(&self.path, i + 1));
        }
        std::fs::rename(&self.path, numbered(&self.path, 1))?;
        self.file = Some(open(&self.path)?);
        self.size = 0;
        Ok(())
    }

    /// Logs one message (see [`Lines`]).
    pub fn write(&mut self, stream: Stream, line: &[u8], complete: bool, time: &str) {
        self.buf.clear();
        encode(&mut self.buf, stream, line, complete, time);
        if self.max_size.is_some_and(|max| self.size >= max) && self.rotate().is_err() {
            self.dropped += 1;
            return;
        }
        if self.file.is_none() {
            match open(&self.path) {
                Ok(f) => {
                    self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    self.file = Some(f);
                }
                Err(_) => {
                    self.dropped += 1;
                    return;
                }
            }
        }
        let Some(f) = self.file.as_mut() else { return };
        match f.write_all(&self.buf) {
            Ok(()) => self.size += self.buf.len() as u64,
            Err(_) => {
                // Part of the line may be there: note the new size and go on.
                self.dropped += 1;
                self.size = f.metadata().map(|m| m.len()).unwrap_or(self.size);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunks: &[&[u8]], flush: bool) -> Vec<(Vec<u8>, bool)> {
        let mut l = Lines::default();
        let mut out = Vec::new();
        for c in chunks {
            l.push(c, &mut |b, complete, _| out.push((b.to_vec(), complete)));
        }
        if flush {
            l.flush(&mut |b, complete, _| out.push((b.to_vec(), complete)));
        }
        out
    }

    #[test]
    fn splits_lines_like_dockers_copier() {
        let out = lines_of(&[b"a\nb", b"c\n\nd"], true);
        assert_eq!(
            out,
            vec![(b"a".to_vec(), true), (b"bc".to_vec(), true), (Vec::new(), true), (b"d".to_vec(), false)]
        );
        // A 40000-byte line: two 16 KiB pieces, then the rest with its newline.
        let mut long = vec![b'x'; 40_000];
        long.push(b'\n');
        let out = lines_of(&[&long[..1000], &long[1000..]], true);
        let sizes: Vec<(usize, bool)> = out.iter().map(|(b, c)| (b.len(), *c)).collect();
        assert_eq!(sizes, vec![(16384, false), (16384, false), (40_000 - 32768, true)]);
        // A newline right after 16 KiB: the piece, then an empty last line.
        let mut exact = vec![b'y'; 16384];
        exact.push(b'\n');
        let sizes: Vec<(usize, bool)> = lines_of(&[&exact], false).iter().map(|(b, c)| (b.len(), *c)).collect();
        assert_eq!(sizes, vec![(16384, false), (0, true)]);
        // 16383 bytes + newline fit in one message.
        let mut fits = vec![b'z'; 16383];
        fits.push(b'\n');
        assert_eq!(lines_of(&[&fits], false).len(), 1);
        // A newline far beyond 16 KiB in one read still splits at 16 KiB.
        let mut big = vec![b'q'; 20_000];
        big.extend_from_slice(b"\nnext\n");
        let sizes: Vec<(usize, bool)> = lines_of(&[&big], false).iter().map(|(b, c)| (b.len(), *c)).collect();
        assert_eq!(sizes, vec![(16384, false), (20_000 - 16384, true), (4, true)]);
    }

    #[test]
    fn pieces_of_a_line_share_the_first_time() {
        let mut l = Lines::default();
        let mut times = Vec::new();
        let mut long = vec![b'x'; 40_000];
        long.push(b'\n');
        l.push(&long[..20_000], &mut |_, _, t| times.push(t.to_string()));
        std::thread::sleep(std::time::Duration::from_millis(2));
        l.push(&long[20_000..], &mut |_, _, t| times.push(t.to_string()));
        assert_eq!(times.len(), 3);
        assert!(times.iter().all(|t| *t == times[0]), "{times:?}");
    }

    #[test]
    fn escapes_like_docker() {
        let mut v = Vec::new();
        encode(&mut v, Stream::Stdout, b"a\"b\\c<d>&\te\r\x01\xff\xe2\x82 \xe2\x80\xa8 \xc3\xa9", true, "T");
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "{\"log\":\"a\\\"b\\\\c\\u003cd\\u003e\\u0026\\u0009e\\r\\u0001\\ufffd\\ufffd\\ufffd \\u2028 \u{e9}\\n\",\"stream\":\"stdout\",\"time\":\"T\"}\n"
        );
        let mut v = Vec::new();
        encode(&mut v, Stream::Stderr, b"part", false, "T");
        assert_eq!(v, b"{\"log\":\"part\",\"stream\":\"stderr\",\"time\":\"T\"}\n");
    }

    #[test]
    fn a_full_disk_drops_and_counts() {
        let mut log = JsonLog::open(Path::new("/dev/full"), None, 1).unwrap();
        log.write(Stream::Stdout, b"lost", true, "T");
        log.write(Stream::Stderr, b"lost too", true, "T");
        assert_eq!(log.dropped(), 2);
    }

    #[test]
    fn rotates_at_max_size() {
        let dir = std::env::temp_dir().join(format!("shim-log-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("ctr.log");
        let mut log = JsonLog::open(&p, Some(100), 3).unwrap();
        for i in 0..10 {
            log.write(Stream::Stdout, format!("line {i:02} padding padding").as_bytes(), true, "2024-01-01T00:00:00Z");
        }
        let cur = std::fs::read_to_string(&p).unwrap();
        let one = std::fs::read_to_string(numbered(&p, 1)).unwrap();
        let two = std::fs::read_to_string(numbered(&p, 2)).unwrap();
        assert!(!numbered(&p, 3).exists());
        // Each line is 84 bytes: every file holds two lines (rotation happens
        // before a write once a file is at or over 100 bytes).
        assert_eq!(cur.lines().count(), 2, "{cur}");
        assert!(cur.contains("line 09") && one.contains("line 07") && two.contains("line 05"));
        assert_eq!(log.dropped(), 0);
        // max-file 1 truncates.
        let q = dir.join("one.log");
        let mut log = JsonLog::open(&q, Some(100), 1).unwrap();
        for i in 0..5 {
            log.write(Stream::Stderr, format!("msg {i}").as_bytes(), true, "T");
        }
        let text = std::fs::read_to_string(&q).unwrap();
        assert!(text.contains("msg 4") && !text.contains("msg 0"), "{text}");
        assert!(!numbered(&q, 1).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
