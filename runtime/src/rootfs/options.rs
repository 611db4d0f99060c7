//! Mount options as they appear in `config.json` (fstab style, as runc reads
//! them): flags for mount(2), propagation changes applied afterwards,
//! recursive attributes for mount_setattr(2), and everything else passed to
//! the filesystem as data (`mode=755`, `size=64k`, `newinstance` ...).

use nix::mount::MsFlags;

/// `MS_NOSYMFOLLOW` (Linux 5.10); nix does not name it.
pub const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

/// mount_setattr(2) attributes (linux/mount.h).
pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    pub const ATIME_MASK: u64 = 0x70;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const NOSYMFOLLOW: u64 = 0x20_0000;
}

/// The parsed `options` of one mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount(2) call (MS_BIND, MS_REC, MS_RDONLY, ...).
    pub flags: MsFlags,
    /// Propagation changes, in the order given (MS_PRIVATE|MS_REC, ...).
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes to set and to clear (`rro`, `rnosuid`, ...).
    pub rec_set: u64,
    pub rec_clear: u64,
    /// Filesystem data, comma separated, in the order given.
    pub data: String,
    /// `tmpcopyup`: copy the directory's contents into the new tmpfs.
    pub copy_up: bool,
    /// `idmap`/`ridmap`: idmapped mounts (not supported).
    pub idmap: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            rec_set: 0,
            rec_clear: 0,
            data: String::new(),
            copy_up: false,
            idmap: false,
        }
    }
}

/// Flag options: (name, clears instead of sets, flag), runc's table.
const FLAGS: &[(&str, bool, MsFlags)] = &[
    ("acl", false, MsFlags::MS_POSIXACL),
    ("async", true, MsFlags::MS_SYNCHRONOUS),
    ("atime", true, MsFlags::MS_NOATIME),
    ("bind", false, MsFlags::MS_BIND),
    ("defaults", false, MsFlags::empty()),
    ("dev", true, MsFlags::MS_NODEV),
    ("diratime", true, MsFlags::MS_NODIRATIME),
    ("dirsync", false, MsFlags::MS_DIRSYNC),
    ("exec", true, MsFlags::MS_NOEXEC),
    ("iversion", false, MsFlags::MS_I_VERSION),
    ("lazytime", false, MsFlags::MS_LAZYTIME),
    ("loud", true, MsFlags::MS_SILENT),
    ("mand", false, MsFlags::MS_MANDLOCK),
    ("noacl", true, MsFlags::MS_POSIXACL),
    ("noatime", false, MsFlags::MS_NOATIME),
    ("nodev", false, MsFlags::MS_NODEV),
    ("nodiratime", false, MsFlags::MS_NODIRATIME),
    ("noexec", false, MsFlags::MS_NOEXEC),
    ("noiversion", true, MsFlags::MS_I_VERSION),
    ("nolazytime", true, MsFlags::MS_LAZYTIME),
    ("nomand", true, MsFlags::MS_MANDLOCK),
    ("norelatime", true, MsFlags::MS_RELATIME),
    ("nostrictatime", true, MsFlags::MS_STRICTATIME),
    ("nosuid", false, MsFlags::MS_NOSUID),
    ("nosymfollow", false, MS_NOSYMFOLLOW),
    ("rbind", false, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ("relatime", false, MsFlags::MS_RELATIME),
    ("remount", false, MsFlags::MS_REMOUNT),
    ("ro", false, MsFlags::MS_RDONLY),
    ("rw", true, MsFlags::MS_RDONLY),
    ("silent", false, MsFlags::MS_SILENT),
    ("strictatime", false, MsFlags::MS_STRICTATIME),
    ("suid", true, MsFlags::MS_NOSUID),
    ("sync", false, MsFlags::MS_SYNCHRONOUS),
    ("symfollow", true, MS_NOSYMFOLLOW),
];

const PROPAGATION: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// Recursive attributes: (name, clears instead of sets, attribute).
const RECURSIVE: &[(&str, bool, u64)] = &[
    ("rro", false, attr::RDONLY),
    ("rrw", true, attr::RDONLY),
    ("rnosuid", false, attr::NOSUID),
    ("rsuid", true, attr::NOSUID),
    ("rnodev", false, attr::NODEV),
    ("rdev", true, attr::NODEV),
    ("rnoexec", false, attr::NOEXEC),
    ("rexec", true, attr::NOEXEC),
    ("rnodiratime", false, attr::NODIRATIME),
    ("rdiratime", true, attr::NODIRATIME),
    ("rnosymfollow", false, attr::NOSYMFOLLOW),
    ("rsymfollow", true, attr::NOSYMFOLLOW),
];

/// Recursive access-time settings; the kernel takes one of them as a whole
/// (attr_clr must hold all of MOUNT_ATTR__ATIME), so the "no" forms mean
/// the kernel default, relatime.
const RECURSIVE_ATIME: &[(&str, u64)] = &[
    ("rrelatime", attr::RELATIME),
    ("rnorelatime", attr::RELATIME),
    ("rnoatime", attr::NOATIME),
    ("ratime", attr::RELATIME),
    ("rstrictatime", attr::STRICTATIME),
    ("rnostrictatime", attr::RELATIME),
];

/// Parses one mount's options (later options win over earlier ones, as in
/// runc: `ro,rw` is read-write).
pub fn parse<S: AsRef<str>>(options: &[S]) -> MountOptions {
    let mut o = MountOptions::default();
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        let opt = opt.as_ref();
        if let Some(&(_, clear, flag)) = FLAGS.iter().find(|(n, _, _)| *n == opt) {
            if clear {
                o.flags.remove(flag);
            } else {
                o.flags.insert(flag);
            }
        } else if let Some(&(_, flag)) = PROPAGATION.iter().find(|(n, _)| *n == opt) {
            o.propagation.push(flag);
        } else if let Some(&(_, clear, a)) = RECURSIVE.iter().find(|(n, _, _)| *n == opt) {
            if clear {
                o.rec_clear |= a;
                o.rec_set &= !a;
            } else {
                o.rec_set |= a;
                o.rec_clear &= !a;
            }
        } else if let Some(&(_, a)) = RECURSIVE_ATIME.iter().find(|(n, _)| *n == opt) {
            o.rec_set = (o.rec_set & !attr::ATIME_MASK) | a;
            o.rec_clear |= attr::ATIME_MASK;
        } else if opt == "tmpcopyup" {
            o.copy_up = true;
        } else if opt == "idmap" || opt == "ridmap" {
            o.idmap = true;
        } else if !opt.is_empty() {
            data.push(opt);
        }
    }
    o.data = data.join(",");
    o
}

/// A propagation name (`rprivate`, `shared` ...) as mount flags.
pub fn propagation(name: &str) -> Option<MsFlags> {
    PROPAGATION.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

impl MountOptions {
    /// Whether this is a bind mount (`bind`/`rbind`).
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// Flags a bind mount must be remounted with to take effect (the bind
    /// itself ignores everything but MS_BIND|MS_REC).
    pub fn bind_remount_flags(&self) -> Option<MsFlags> {
        let extra = self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        (!extra.is_empty()).then_some(extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT)
    }

    /// The data argument for mount(2), if any.
    pub fn data(&self) -> Option<&str> {
        (!self.data.is_empty()).then_some(self.data.as_str())
    }

    /// Whether recursive attributes were asked for.
    pub fn has_recursive(&self) -> bool {
        self.rec_set != 0 || self.rec_clear != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_data_and_propagation() {
        let o = parse(&["nosuid", "strictatime", "mode=755", "size=65536k", "rprivate", "noexec", "shared"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME | MsFlags::MS_NOEXEC);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC, MsFlags::MS_SHARED]);
        assert!(!o.is_bind());
        assert_eq!(o.data(), Some("mode=755,size=65536k"));
    }

    #[test]
    fn devpts_data_passes_through() {
        let o = parse(&["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(o.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
    }

    #[test]
    fn later_options_win() {
        assert_eq!(parse(&["ro", "rw"]).flags, MsFlags::empty());
        assert_eq!(parse(&["rw", "ro"]).flags, MsFlags::MS_RDONLY);
        assert_eq!(parse(&["nosuid", "suid", "nodev", "dev", "noexec", "exec"]).flags, MsFlags::empty());
        assert_eq!(parse(&["noatime", "atime"]).flags, MsFlags::empty());
        assert_eq!(parse(&["defaults"]).flags, MsFlags::empty());
        assert!(parse::<&str>(&[]).data().is_none());
    }

    #[test]
    fn bind_ro_needs_a_remount() {
        let o = parse(&["rbind", "ro", "nosuid", "rslave"]);
        assert!(o.is_bind());
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(
            o.bind_remount_flags(),
            Some(MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID)
        );
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(parse(&["bind"]).bind_remount_flags(), None);
        assert_eq!(parse(&["rbind", "rw"]).bind_remount_flags(), None);
    }

    #[test]
    fn every_flag_option() {
        for (name, flag) in [
            ("sync", MsFlags::MS_SYNCHRONOUS),
            ("dirsync", MsFlags::MS_DIRSYNC),
            ("relatime", MsFlags::MS_RELATIME),
            ("noatime", MsFlags::MS_NOATIME),
            ("nodiratime", MsFlags::MS_NODIRATIME),
            ("strictatime", MsFlags::MS_STRICTATIME),
            ("nodev", MsFlags::MS_NODEV),
            ("remount", MsFlags::MS_REMOUNT),
            ("mand", MsFlags::MS_MANDLOCK),
            ("nosymfollow", MS_NOSYMFOLLOW),
            ("bind", MsFlags::MS_BIND),
        ] {
            assert_eq!(parse(&[name]).flags, flag, "{name}");
        }
        for (name, flag) in [
            ("private", MsFlags::MS_PRIVATE),
            ("slave", MsFlags::MS_SLAVE),
            ("unbindable", MsFlags::MS_UNBINDABLE),
            ("runbindable", MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
            ("rshared", MsFlags::MS_SHARED | MsFlags::MS_REC),
        ] {
            let o = parse(&[name]);
            assert_eq!((o.flags, o.propagation), (MsFlags::empty(), vec![flag]), "{name}");
        }
    }

    #[test]
    fn recursive_attributes() {
        let o = parse(&["rbind", "rro", "rnosuid", "rnoexec", "rnoatime"]);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(o.rec_set, attr::RDONLY | attr::NOSUID | attr::NOEXEC | attr::NOATIME);
        assert_eq!(o.rec_clear, attr::ATIME_MASK);
        assert!(o.has_recursive());
        assert_eq!(o.data, "");
        let o = parse(&["rro", "rrw", "rdev"]);
        assert_eq!((o.rec_set, o.rec_clear), (0, attr::RDONLY | attr::NODEV));
    }

    #[test]
    fn extensions() {
        let o = parse(&["tmpcopyup", "mode=1777"]);
        assert!(o.copy_up);
        assert_eq!(o.data, "mode=1777");
        assert!(parse(&["idmap"]).idmap);
    }
}
