//! The kernel's view of this mount namespace (/proc/self/mountinfo, see
//! proc(5)): which mount holds a path, its propagation, the host's proc,
//! sysfs and cgroup mounts.

use crate::error::{Context, Result};
use std::path::{Path, PathBuf};

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub id: u32,
    pub parent: u32,
    /// `major:minor` of the filesystem.
    pub dev: String,
    /// The directory of the filesystem mounted here (`/` unless a bind).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,nosuid,relatime`).
    pub options: String,
    /// Optional fields: `shared:N`, `master:N`, `propagate_from:N`, `unbindable`.
    pub optional: Vec<String>,
    pub fs_type: String,
    pub source: String,
    pub super_options: String,
}

impl MountInfo {
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("shared:"))
    }

    /// Whether the per-mount options hold `opt` (`ro`, `nosuid` ...).
    #[cfg(test)]
    pub fn has_option(&self, opt: &str) -> bool {
        self.options.split(',').any(|o| o == opt)
    }
}

/// Reads /proc/self/mountinfo.
pub fn read() -> Result<Vec<MountInfo>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo")?;
    Ok(parse(&text))
}

/// Parses mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountInfo> {
    let mut f = line.split(' ');
    let id = f.next()?.parse().ok()?;
    let parent = f.next()?.parse().ok()?;
    let dev = f.next()?.to_string();
    let root = PathBuf::from(unescape(f.next()?));
    let mount_point = PathBuf::from(unescape(f.next()?));
    let options = f.next()?.to_string();
    let mut optional = Vec::new();
    loop {
        match f.next()? {
            "-" => break,
            o => optional.push(o.to_string()),
        }
    }
    let fs_type = f.next()?.to_string();
    let source = unescape(f.next()?);
    let super_options = f.next().unwrap_or("").to_string();
    Some(MountInfo { id, parent, dev, root, mount_point, options, optional, fs_type, source, super_options })
}

/// Undoes the kernel's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount `path` lies on: the longest mount point that is a prefix of
/// it, the topmost (last listed) when several share it.
pub fn containing<'a>(infos: &'a [MountInfo], path: &Path) -> Option<&'a MountInfo> {
    let mut best: Option<&MountInfo> = None;
    for i in infos {
        if path.starts_with(&i.mount_point) {
            let better = match best {
                None => true,
                Some(b) => i.mount_point.as_os_str().len() >= b.mount_point.as_os_str().len(),
            };
            if better {
                best = Some(i);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 /docker /sys/fs/cgroup/systemd rw,nosuid master:3 - cgroup cgroup rw,xattr,name=systemd
50 27 0:40 / /run/a\\040b ro,nosuid - tmpfs tmpfs rw
51 27 0:41 / /run/a\\040b ro,nosuid shared:7 master:2 - tmpfs tmpfs rw
garbage line
";

    #[test]
    fn parses_fields_and_escapes() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 7);
        assert_eq!(m[0].fs_type, "proc");
        assert_eq!(m[1].optional, vec!["shared:1"]);
        assert!(m[1].is_shared() && !m[0].is_shared());
        assert_eq!(m[4].root, PathBuf::from("/docker"));
        assert_eq!(m[4].super_options, "rw,xattr,name=systemd");
        assert_eq!(m[4].optional, vec!["master:3"]);
        assert_eq!(m[5].mount_point, PathBuf::from("/run/a b"));
        assert!(m[5].has_option("ro") && m[5].has_option("nosuid") && !m[5].has_option("rw"));
        assert_eq!(m[6].optional, vec!["shared:7", "master:2"]);
    }

    #[test]
    fn finds_the_containing_mount() {
        let m = parse(SAMPLE);
        assert_eq!(containing(&m, Path::new("/sys/fs/cgroup/cpu/x")).unwrap().id, 32);
        assert_eq!(containing(&m, Path::new("/sys/fs/cgroupx")).unwrap().id, 27);
        assert_eq!(containing(&m, Path::new("/run/a b/c")).unwrap().id, 51);
        assert_eq!(containing(&m, Path::new("/")).unwrap().id, 27);
    }
}
