//! fstab-style mount options (`"ro"`, `"nosuid"`, `"rbind"`, `"rprivate"`,
//! `"mode=755"`) split into `mount(2)` flags, propagation changes, and the
//! filesystem-specific data string.

use crate::sys::mount::MsFlags;

/// The options of one mount, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags to set.
    pub flags: MsFlags,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// `rbind` (or `bind` with `recursive`) was given.
    pub recursive: bool,
    /// Propagation changes to apply after mounting, in order.
    pub propagation: Vec<MsFlags>,
    /// Everything else, for the filesystem (`mode=755,size=65536k`).
    pub data: Vec<String>,
}

impl MountOptions {
    /// The data string for `mount(2)`, or `None` when empty.
    pub fn data_string(&self) -> Option<String> {
        if self.data.is_empty() { None } else { Some(self.data.join(",")) }
    }
}

/// Parses OCI mount options. Unknown words go to the data string, where the
/// filesystem will reject them if it does not know them either.
pub fn parse<S: AsRef<str>>(options: &[S]) -> MountOptions {
    use MsFlags as F;
    let mut out =
        MountOptions { flags: F::empty(), bind: false, recursive: false, propagation: Vec::new(), data: Vec::new() };
    for opt in options {
        let opt = opt.as_ref();
        let (set, clear): (F, F) = match opt {
            "ro" => (F::MS_RDONLY, F::empty()),
            "rw" => (F::empty(), F::MS_RDONLY),
            "nosuid" => (F::MS_NOSUID, F::empty()),
            "suid" => (F::empty(), F::MS_NOSUID),
            "nodev" => (F::MS_NODEV, F::empty()),
            "dev" => (F::empty(), F::MS_NODEV),
            "noexec" => (F::MS_NOEXEC, F::empty()),
            "exec" => (F::empty(), F::MS_NOEXEC),
            "sync" => (F::MS_SYNCHRONOUS, F::empty()),
            "async" => (F::empty(), F::MS_SYNCHRONOUS),
            "dirsync" => (F::MS_DIRSYNC, F::empty()),
            "mand" => (F::MS_MANDLOCK, F::empty()),
            "nomand" => (F::empty(), F::MS_MANDLOCK),
            "atime" => (F::empty(), F::MS_NOATIME),
            "noatime" => (F::MS_NOATIME, F::empty()),
            "diratime" => (F::empty(), F::MS_NODIRATIME),
            "nodiratime" => (F::MS_NODIRATIME, F::empty()),
            "relatime" => (F::MS_RELATIME, F::empty()),
            "norelatime" => (F::empty(), F::MS_RELATIME),
            "strictatime" => (F::MS_STRICTATIME, F::empty()),
            "nostrictatime" => (F::empty(), F::MS_STRICTATIME),
            "lazytime" => (F::MS_LAZYTIME, F::empty()),
            "nolazytime" => (F::empty(), F::MS_LAZYTIME),
            "defaults" => (F::empty(), F::empty()),
            "bind" => {
                out.bind = true;
                continue;
            }
            "rbind" => {
                out.bind = true;
                out.recursive = true;
                continue;
            }
            _ => {
                if let Some(p) = propagation(opt) {
                    out.propagation.push(p);
                } else {
                    out.data.push(opt.to_string());
                }
                continue;
            }
        };
        out.flags.remove(clear);
        out.flags.insert(set);
    }
    out
}

fn propagation(opt: &str) -> Option<MsFlags> {
    use MsFlags as F;
    Some(match opt {
        "private" => F::MS_PRIVATE,
        "rprivate" => F::MS_PRIVATE | F::MS_REC,
        "shared" => F::MS_SHARED,
        "rshared" => F::MS_SHARED | F::MS_REC,
        "slave" => F::MS_SLAVE,
        "rslave" => F::MS_SLAVE | F::MS_REC,
        "unbindable" => F::MS_UNBINDABLE,
        "runbindable" => F::MS_UNBINDABLE | F::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_data_and_propagation_are_split() {
        let o = parse(&["nosuid", "strictatime", "mode=755", "size=65536k", "rprivate"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(o.propagation, [MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert!(!o.bind);
    }

    #[test]
    fn later_options_win_and_binds_are_recognised() {
        let o = parse(&["ro", "rw", "rbind", "nodev"]);
        assert_eq!(o.flags, MsFlags::MS_NODEV);
        assert!(o.bind && o.recursive);
        assert_eq!(o.data_string(), None);
        let b = parse(&["bind", "ro"]);
        assert!(b.bind && !b.recursive);
        assert_eq!(b.flags, MsFlags::MS_RDONLY);
    }
}
