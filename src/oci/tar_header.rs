//! Deterministic tar headers for the layer writer.
//!
//! [`EntryMeta::append`] is the one place a layer or export entry's header
//! is made: every tar berth writes of a filesystem (build layers, commits,
//! imports, exports) goes through it, so one set of rules holds for all.
//!
//! Every entry is a POSIX ustar header. Only when a value does not fit
//! ustar — a name over 255 bytes (or one that cannot be split into
//! prefix/name), a link target over 100 bytes, a size of 8 GiB or more, a
//! uid/gid of 2^21 or more, an mtime of 2^33 seconds (2242-03-16) or later
//! — or when the entry carries an xattr, a PAX extended header (`x`) comes
//! first with just those records, sorted by key. Such a numeric field also
//! holds the value in GNU base-256 form, for readers that know GNU tar's
//! extension but not PAX (GNU tar, Go and the `tar` crate read both; the
//! PAX record wins). A value no reader can take is refused with an error,
//! never written: an mtime past 2^63−1 seconds (out of `time_t`), a device
//! number of 2^21 or more.
//!
//! Nothing in either header depends on the time of writing, the user
//! database or the process: uname/gname are empty, there is no atime or
//! ctime, and the PAX header's own name is derived from the entry's name.

use std::io::{self, Read, Write};

use tar::{EntryType, Header};

const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
const LINK_LEN: usize = 100;
/// The largest value an 11-digit octal field (size, mtime) holds, plus one.
const OCTAL_11_LIMIT: u64 = 1 << 33;
/// The largest value a 7-digit octal field holds, plus one.
const ID_LIMIT: u64 = 1 << 21;
/// The latest mtime any tar reader takes: `time_t`'s largest value.
pub const MTIME_MAX: u64 = i64::MAX as u64;

/// Everything the writer puts into one entry's header(s).
#[derive(Clone, Debug)]
pub struct EntryMeta {
    /// The full name, `/`-separated, with a trailing `/` for directories.
    pub name: Vec<u8>,
    pub kind: EntryType,
    /// Link target for symlinks and hard links, empty otherwise.
    pub link: Vec<u8>,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Seconds since 1970-01-01 UTC, as the writer's
    /// [`MtimePolicy`](super::tar_write::MtimePolicy) decided it; at most
    /// [`MTIME_MAX`].
    pub mtime: u64,
    /// Device numbers for character and block devices.
    pub device: (u32, u32),
    /// Extended attributes as `(key, value)`, sorted by key.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl EntryMeta {
    /// An entry of `kind` named `name` with everything else zero or empty.
    pub fn new(name: Vec<u8>, kind: EntryType, mode: u32, mtime: u64) -> Self {
        EntryMeta {
            name,
            kind,
            link: Vec::new(),
            mode,
            uid: 0,
            gid: 0,
            size: 0,
            mtime,
            device: (0, 0),
            xattrs: Vec::new(),
        }
    }

    /// Writes the entry's header(s) and then `size` bytes of `data` (padded
    /// to the block size) to `builder`. Fails, writing nothing, if a value
    /// fits no tar header (see the module page).
    pub fn append<W: Write, R: Read>(&self, builder: &mut tar::Builder<W>, data: R) -> io::Result<()> {
        self.check()?;
        let mut header = Header::new_ustar();
        let mut records = Vec::new();
        match split_ustar_name(&self.name) {
            Some((prefix, name)) => {
                set_bytes(&mut header.as_ustar_mut().expect("a ustar header").prefix, prefix);
                set_bytes(&mut header.as_old_mut().name, name);
            }
            None => {
                push_record(&mut records, "path", &self.name);
                set_bytes(&mut header.as_old_mut().name, &self.name[..NAME_LEN]);
            }
        }
        if self.link.len() > LINK_LEN {
            push_record(&mut records, "linkpath", &self.link);
            set_bytes(&mut header.as_old_mut().linkname, &self.link[..LINK_LEN]);
        } else {
            set_bytes(&mut header.as_old_mut().linkname, &self.link);
        }
        for (key, value, limit) in [
            ("gid", self.gid.into(), ID_LIMIT),
            ("mtime", self.mtime, OCTAL_11_LIMIT),
            ("size", self.size, OCTAL_11_LIMIT),
            ("uid", self.uid.into(), ID_LIMIT),
        ] {
            if value >= limit {
                push_record(&mut records, key, value.to_string().as_bytes());
            }
        }
        for (key, value) in &self.xattrs {
            push_record(&mut records, &format!("SCHILY.xattr.{key}"), value);
        }
        records.sort_by(|a, b| a.0.cmp(&b.0));

        header.set_entry_type(self.kind);
        header.set_mode(self.mode & 0o7777);
        header.set_uid(self.uid.into());
        header.set_gid(self.gid.into());
        header.set_size(self.size);
        header.set_mtime(self.mtime);
        // Zero for all but devices, written as octal like the other fields.
        header.set_device_major(self.device.0)?;
        header.set_device_minor(self.device.1)?;
        header.set_cksum();

        if !records.is_empty() {
            let body: Vec<u8> = records.into_iter().flat_map(|(_, r)| r).collect();
            let pax = self.pax_header(body.len() as u64);
            builder.append(&pax, body.as_slice())?;
        }
        builder.append(&header, data)
    }

    /// Refuses what no tar header can hold honestly.
    fn check(&self) -> io::Result<()> {
        if self.mtime > MTIME_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "mtime {} is past the latest time a tar header holds ({MTIME_MAX} seconds after 1970, the largest time_t); expected a time tar readers accept",
                    self.mtime
                ),
            ));
        }
        let (major, minor) = (u64::from(self.device.0), u64::from(self.device.1));
        if major >= ID_LIMIT || minor >= ID_LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "device number {major}:{minor} does not fit a tar header; major and minor must each be below {ID_LIMIT}"
                ),
            ));
        }
        Ok(())
    }

    /// The `x` header that precedes this entry: named `PaxHeaders/<last
    /// component>` (truncated to fit), mode 0644, owner 0:0, the entry's
    /// mtime as far as an octal field holds it (the record has the rest).
    fn pax_header(&self, size: u64) -> Header {
        let trimmed = self.name.strip_suffix(b"/").unwrap_or(&self.name);
        let base = trimmed.rsplit(|&b| b == b'/').next().unwrap_or(trimmed);
        let mut name = b"PaxHeaders/".to_vec();
        name.extend_from_slice(&base[..base.len().min(NAME_LEN - name.len())]);
        let mut header = Header::new_ustar();
        set_bytes(&mut header.as_old_mut().name, &name);
        header.set_entry_type(EntryType::XHeader);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(size);
        header.set_mtime(self.mtime.min(OCTAL_11_LIMIT - 1));
        header.set_cksum();
        header
    }
}

/// Copies `bytes` into a NUL-padded header field; `bytes` must fit.
fn set_bytes(field: &mut [u8], bytes: &[u8]) {
    field.fill(0);
    field[..bytes.len()].copy_from_slice(bytes);
}

/// Splits `name` into ustar `(prefix, name)` at a `/`, or `None` if it
/// cannot fit. Short names go whole into `name`; longer ones split at the
/// rightmost `/` that leaves a prefix of at most 155 bytes and a non-empty
/// name of at most 100.
fn split_ustar_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= NAME_LEN {
        return Some((b"", name));
    }
    (0..name.len().min(PREFIX_LEN + 1)).rev().filter(|&i| name[i] == b'/').find_map(|i| {
        let rest = &name[i + 1..];
        (!rest.is_empty() && rest.len() <= NAME_LEN).then(|| (&name[..i], rest))
    })
}

/// Appends one PAX record `"<len> <key>=<value>\n"`, where `<len>` counts
/// the whole record including its own digits, keeping the key for sorting.
fn push_record(records: &mut Vec<(String, Vec<u8>)>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=' and '\n'
    let mut len = rest + rest.to_string().len();
    if len.to_string().len() + rest != len {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    debug_assert_eq!(record.len(), len);
    records.push((key.to_owned(), record));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2300-01-01T00:00:00Z, past what an 11-digit octal field holds.
    const Y2300: u64 = 10_413_792_000;

    /// `meta` appended to an empty archive: the bytes, or the error.
    fn written(meta: &EntryMeta) -> io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        meta.append(&mut builder, io::empty())?;
        Ok(builder.into_inner().unwrap())
    }

    fn whiteout(mtime: u64) -> EntryMeta {
        EntryMeta::new(b"bin/.wh.vi".to_vec(), EntryType::Regular, 0o644, mtime)
    }

    #[test]
    fn a_whiteout_is_one_ustar_header_with_octal_fields() {
        let tar = written(&whiteout(0)).unwrap();
        assert_eq!(tar.len(), 512 * 3, "one header and the end of the archive");
        let header = Header::from_byte_slice(&tar[..512]);
        let ustar = header.as_ustar().expect("a ustar header");
        assert_eq!((&ustar.magic, &ustar.version), (b"ustar\0", b"00"));
        let old = header.as_old();
        assert_eq!(&old.name[..11], b"bin/.wh.vi\0");
        assert_eq!(old.linkflag, [b'0']);
        assert_eq!(&old.mode, b"0000644\0");
        assert_eq!((&old.uid, &old.gid), (b"0000000\0", b"0000000\0"));
        assert_eq!((&old.size, &old.mtime), (b"00000000000\0", b"00000000000\0"));
        assert_eq!(
            header.cksum().unwrap(),
            header
                .as_bytes()
                .iter()
                .enumerate()
                .map(|(i, &b)| { if (148..156).contains(&i) { u32::from(b' ') } else { u32::from(b) } })
                .sum::<u32>()
        );
    }

    #[test]
    fn an_mtime_past_2242_goes_into_a_pax_record() {
        let last_octal = written(&whiteout(OCTAL_11_LIMIT - 1)).unwrap();
        assert_eq!(&Header::from_byte_slice(&last_octal[..512]).as_old().mtime, b"77777777777\0");

        let tar = written(&whiteout(Y2300)).unwrap();
        let pax = Header::from_byte_slice(&tar[..512]);
        assert_eq!(pax.entry_type(), EntryType::XHeader);
        assert_eq!(&pax.as_old().mtime, b"77777777777\0", "the x header's own mtime stays octal");
        assert_eq!(&tar[512..533], b"21 mtime=10413792000\n");
        let mut archive = tar::Archive::new(tar.as_slice());
        let entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path_bytes().as_ref(), b"bin/.wh.vi");
        // The field holds the same time (GNU base-256) for readers without PAX.
        assert_eq!(entry.header().mtime().unwrap(), Y2300);
        written(&whiteout(MTIME_MAX)).unwrap();
    }

    #[test]
    fn values_no_reader_takes_are_refused_before_anything_is_written() {
        for mtime in [MTIME_MAX + 1, u64::MAX] {
            let mut builder = tar::Builder::new(Vec::new());
            let err = whiteout(mtime).append(&mut builder, io::empty()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(&mtime.to_string()) && err.to_string().contains("time_t"), "{err}");
            assert!(builder.get_ref().is_empty(), "nothing written for mtime {mtime}");
        }
        let mut device = EntryMeta::new(b"dev/odd".to_vec(), EntryType::Char, 0o600, 0);
        device.device = (1 << 21, 0);
        assert_eq!(written(&device).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        device.device = (4095, (1 << 21) - 1);
        written(&device).unwrap();
    }

    #[test]
    fn pax_record_length_counts_itself() {
        let mut records = Vec::new();
        push_record(&mut records, "path", b"abc");
        assert_eq!(records[0].1, b"12 path=abc\n");
        // 4 + 91 + 3 = 98 bytes before the length; "100" makes it 101, not 100.
        push_record(&mut records, "path", &[b'x'; 91]);
        assert_eq!(records[1].1.len(), 101);
        assert!(records[1].1.starts_with(b"101 path="));
    }

    #[test]
    fn splits_long_names_into_prefix_and_name() {
        assert_eq!(split_ustar_name(b"short"), Some((&b""[..], &b"short"[..])));
        let dir = vec![b'd'; 120];
        let mut long = dir.clone();
        long.extend_from_slice(b"/file");
        assert_eq!(split_ustar_name(&long), Some((&dir[..], &b"file"[..])));
        let mut dir_entry = long.clone();
        dir_entry.push(b'/');
        assert_eq!(split_ustar_name(&dir_entry), Some((&dir[..], &b"file/"[..])));
        assert_eq!(split_ustar_name(&[b'x'; 101]), None);
        assert_eq!(split_ustar_name(&[b'x'; 300]), None);
    }
}
