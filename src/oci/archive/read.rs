//! One pass over an archive's tar stream: every file is hashed and counted
//! as it goes by, and either kept in memory (JSON and small files) or
//! handed to a [`BlobSink`] (layers), which decides where the bytes go —
//! staged in the store's `tmp/` for `berth load`, nowhere for `berth
//! inspect`.
//!
//! Nothing here trusts the archive: names are cleaned by the tar reader's
//! rules (a `..` component or a NUL is refused), only files, directories and
//! links are accepted, a name may appear once, every file must be as long as
//! its header says and the stream must end with the tar end-of-archive
//! marker (so a cut archive is refused, not read as a shorter one). Memory
//! held is bounded: only files up to [`SMALL_FILE`] bytes, or JSON up to
//! [`JSON_FILE`] bytes, are kept, at most [`MEMORY_LIMIT`] in all.
//!
//! Tar entries come in any order, so what the files mean (which are
//! manifests, which layers) is decided afterwards, in `contents`, which also
//! checks that a file named `blobs/sha256/<hex>` has that digest (knowing
//! the role the blob plays, it can say which one is wrong).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::rc::Rc;

use sha2::Digest as _;

use super::FormatError;
use crate::oci::Digest;
use crate::oci::tar_name::CleanName;

/// Files up to this size are kept in memory whatever they hold.
pub const SMALL_FILE: u64 = 64 << 10;
/// Files up to this size that start like JSON are kept in memory.
pub const JSON_FILE: u64 = 4 << 20;
/// At most this much is kept in memory for one archive.
pub const MEMORY_LIMIT: u64 = 64 << 20;

/// Where the bytes of an archive's larger files go while it is read.
pub trait BlobSink {
    /// What the sink keeps of one file, such as a staged temp file.
    type Blob;
    /// Takes the whole content of one file. The reader hashes and counts
    /// it; the sink only stores (or drops) it. An error of the sink's own
    /// (not of reading `content`) becomes [`FormatError::Keep`].
    fn receive(&mut self, content: &mut dyn Read) -> io::Result<Self::Blob>;
}

/// A sink that keeps nothing: reading an archive only to look at it.
#[derive(Debug, Default)]
pub struct Discard;

impl BlobSink for Discard {
    type Blob = ();
    fn receive(&mut self, content: &mut dyn Read) -> io::Result<()> {
        io::copy(content, &mut io::sink()).map(drop)
    }
}

/// Where a file's bytes are.
#[derive(Debug)]
pub enum Content<B> {
    /// Held in memory.
    Memory(Vec<u8>),
    /// Given to the sink, which returned this.
    Sink(B),
}

/// One regular file of the archive.
#[derive(Debug)]
pub struct ArchiveFile<B> {
    /// The sha256 of its content.
    pub digest: Digest,
    /// Its length in bytes (as read, and equal to its tar header's).
    pub size: u64,
    /// Its first bytes (up to 4), to tell compressed from plain tars.
    pub magic: Vec<u8>,
    pub content: Content<B>,
}

/// Where a link entry of the archive points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// A hard link: a name relative to the archive's root.
    Hard(String),
    /// A symlink: its target as written, relative to the link's directory
    /// (an absolute target leads out of the archive).
    Symbolic(String),
}

impl Link {
    /// The target as the tar entry gives it.
    pub fn target(&self) -> &str {
        match self {
            Link::Hard(target) | Link::Symbolic(target) => target,
        }
    }
}

/// Every file and link of an archive, by cleaned name (`blobs/sha256/…`).
#[derive(Debug)]
pub struct RawArchive<B> {
    pub files: BTreeMap<String, ArchiveFile<B>>,
    /// Link name → where it points.
    pub links: BTreeMap<String, Link>,
}

impl<B> Default for RawArchive<B> {
    fn default() -> Self {
        RawArchive { files: BTreeMap::new(), links: BTreeMap::new() }
    }
}

/// Reads the whole archive `input` (a tar, plain or gzip- or
/// zstd-compressed) into a [`RawArchive`]; see the module page.
pub fn read_stream<S: BlobSink>(input: impl Read, sink: &mut S) -> Result<RawArchive<S::Blob>, FormatError> {
    // The input ran out (a compressed stream cut short errors out of the
    // decompressor before its output ends), and the tar stream ran out.
    let (input_ended, tar_ended) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
    let input = EndTracker { inner: input, ended: input_ended.clone() };
    let input = decompressed(input).map_err(|e| FormatError::Read { entry: None, source: tidy(e) })?;
    let mut tracker = EndTracker { inner: input, ended: tar_ended.clone() };
    let mut raw = RawArchive::default();
    let mut last: Option<String> = None;
    match walk(&mut tracker, sink, &mut raw, &mut last) {
        Ok(()) => {}
        Err(FormatError::Read { source, entry })
            if input_ended.get() || tar_ended.get() || source.kind() == io::ErrorKind::UnexpectedEof =>
        {
            return Err(match entry.filter(|e| Some(e) != last.as_ref()) {
                Some(entry) => FormatError::TruncatedIn { entry },
                None => FormatError::TruncatedEnd { last },
            });
        }
        Err(FormatError::Read { source, entry: None }) => return Err(FormatError::NotATar { source }),
        Err(e) => return Err(e),
    }
    if last.is_none() {
        return Err(FormatError::Empty);
    }
    if tar_ended.get() {
        return Err(FormatError::TruncatedEnd { last });
    }
    Ok(raw)
}

/// Reads every entry of the tar `input` into `raw`, noting the name of the
/// last one read in `last`.
fn walk<S: BlobSink>(
    input: &mut dyn Read,
    sink: &mut S,
    raw: &mut RawArchive<S::Blob>,
    last: &mut Option<String>,
) -> Result<(), FormatError> {
    let read_err = |entry: &Option<String>| {
        let entry = entry.clone();
        move |e| FormatError::Read { entry, source: tidy(e) }
    };
    let mut memory = 0u64;
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(read_err(&None))? {
        let mut entry = entry.map_err(read_err(last))?;
        let name = clean_name(&entry.path_bytes())?;
        let kind = entry.header().entry_type();
        if kind.is_file() || kind.is_contiguous() {
            let declared = entry.size();
            let file = receive(&mut entry, &name, declared, sink, &mut memory)?;
            if raw.files.contains_key(&name) || raw.links.contains_key(&name) {
                return Err(FormatError::DuplicateEntry { entry: name });
            }
            raw.files.insert(name.clone(), file);
        } else if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name_bytes().map(|t| String::from_utf8_lossy(&t).into_owned());
            let target = target.unwrap_or_default();
            let target = if kind.is_hard_link() { Link::Hard(target) } else { Link::Symbolic(target) };
            if raw.files.contains_key(&name) || raw.links.insert(name.clone(), target).is_some() {
                return Err(FormatError::DuplicateEntry { entry: name });
            }
        } else if !(kind.is_dir() || kind.is_pax_global_extensions()) {
            return Err(FormatError::UnsupportedEntry { entry: name, kind: format!("{kind:?}") });
        }
        *last = Some(name);
    }
    Ok(())
}

/// `e` with its message on one short line: the tar reader quotes raw
/// header bytes, which may be anything.
fn tidy(e: io::Error) -> io::Error {
    let text = e.to_string();
    let line: String = text.chars().take_while(|c| !c.is_control()).take(160).collect();
    if line.len() == text.len() { e } else { io::Error::new(e.kind(), format!("{line}…")) }
}

/// The archive's name for an entry: its cleaned components joined by `/`.
fn clean_name(raw: &[u8]) -> Result<String, FormatError> {
    let shown = String::from_utf8_lossy(raw).into_owned();
    let clean =
        CleanName::parse(raw).map_err(|p| FormatError::BadEntryName { entry: shown.clone(), reason: p.reason() })?;
    let joined = clean.parent().join(clean.file_name().unwrap_or_default());
    joined.to_str().map(str::to_owned).ok_or(FormatError::BadEntryName {
        entry: shown,
        reason: "is not UTF-8; image archives name their files in ASCII",
    })
}

/// Reads one file, hashing it, into memory or the sink.
fn receive<S: BlobSink>(
    entry: &mut dyn Read,
    name: &str,
    declared: u64,
    sink: &mut S,
    memory: &mut u64,
) -> Result<ArchiveFile<S::Blob>, FormatError> {
    let read_err = |e| FormatError::Read { entry: Some(name.to_owned()), source: tidy(e) };
    let mut hashing = Hashing { inner: entry, hasher: sha2::Sha256::new(), count: 0, failed: false };
    let mut magic = [0u8; 4];
    let seen = read_up_to(&mut hashing, &mut magic).map_err(read_err)?;
    let magic = magic[..seen].to_vec();
    let json_like = matches!(magic.first(), Some(b'{' | b'['));
    let keep = (declared <= SMALL_FILE || (json_like && declared <= JSON_FILE)) && *memory + declared <= MEMORY_LIMIT;
    let content = if keep {
        let mut bytes = magic.clone();
        (&mut hashing).take(declared).read_to_end(&mut bytes).map_err(read_err)?;
        *memory += bytes.len() as u64;
        Content::Memory(bytes)
    } else if declared > SMALL_FILE && json_like && declared <= JSON_FILE {
        return Err(FormatError::TooMuchMetadata { limit: MEMORY_LIMIT });
    } else {
        let mut rest = io::Cursor::new(magic.clone()).chain(&mut hashing);
        let received = sink.receive(&mut rest);
        match received {
            Ok(blob) => Content::Sink(blob),
            Err(e) if hashing.failed => return Err(read_err(e)),
            Err(source) => return Err(FormatError::Keep { entry: name.to_owned(), source }),
        }
    };
    if hashing.count != declared {
        return Err(FormatError::TruncatedEntry { entry: name.to_owned(), expected: declared, actual: hashing.count });
    }
    let digest = Digest::from_sha256(hashing.hasher.finalize().into());
    Ok(ArchiveFile { digest, size: hashing.count, magic, content })
}

/// `input`, decompressed if it starts with a gzip or zstd magic number.
fn decompressed<'a>(mut input: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut magic = [0u8; 4];
    let seen = read_up_to(&mut input, &mut magic)?;
    let stream = io::Cursor::new(magic[..seen].to_vec()).chain(input);
    super::media::sniff_compression(&magic[..seen]).decompress(stream)
}

pub(super) fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut seen = 0;
    while seen < buf.len() {
        match reader.read(&mut buf[seen..]) {
            Ok(0) => break,
            Ok(n) => seen += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(seen)
}

/// A reader that hashes and counts what is read through it, and notes
/// whether reading failed (so that a sink's own failure is told apart).
struct Hashing<'a> {
    inner: &'a mut dyn Read,
    hasher: sha2::Sha256,
    count: u64,
    failed: bool,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|e| self.failed |= e.kind() != io::ErrorKind::Interrupted)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Notes whether the stream ran out. The tar reader stops quietly both at
/// the end-of-archive marker and at the end of the stream; only the first is
/// a complete archive.
struct EndTracker<R> {
    inner: R,
    ended: Rc<Cell<bool>>,
}

impl<R: Read> Read for EndTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended.set(true);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar holding `files`, finished with the end-of-archive marker.
    pub(crate) fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, body) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, *body).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn small_files_are_kept_and_hashed() {
        let blob = b"{\"a\":1}";
        let name = format!("blobs/sha256/{}", Digest::sha256(blob).hex());
        let tar = tar_of(&[("./index.json", b"{}"), (&name, blob)]);
        let raw = read_stream(&tar[..], &mut Discard).unwrap();
        assert_eq!(raw.files.len(), 2);
        assert!(matches!(&raw.files["index.json"].content, Content::Memory(b) if b == b"{}"));
        assert_eq!(raw.files[&name].digest, Digest::sha256(blob));
    }

    #[test]
    fn big_files_go_to_the_sink() {
        struct Keep;
        impl BlobSink for Keep {
            type Blob = Vec<u8>;
            fn receive(&mut self, content: &mut dyn Read) -> io::Result<Vec<u8>> {
                let mut v = Vec::new();
                content.read_to_end(&mut v).map(|_| v)
            }
        }
        let big = vec![7u8; (SMALL_FILE + 1) as usize];
        let raw = read_stream(&tar_of(&[("layer.tar", &big)])[..], &mut Keep).unwrap();
        let file = &raw.files["layer.tar"];
        assert!(matches!(&file.content, Content::Sink(b) if *b == big));
        assert_eq!((file.size, file.magic.as_slice()), (big.len() as u64, &[7u8, 7, 7, 7][..]));
        assert_eq!(file.digest, Digest::sha256(&big));
    }

    #[test]
    fn truncation_is_refused_at_an_entry_and_at_a_block_boundary() {
        let big = vec![1u8; 100_000];
        let tar = tar_of(&[("a", b"x"), ("b", &big)]);
        let err = read_stream(&tar[..tar.len() - 1024 - 50_000], &mut Discard).unwrap_err();
        assert!(matches!(err, FormatError::TruncatedEntry { .. }), "{err}");
        // Cut right after the first entry (header + one padded block).
        let err = read_stream(&tar[..1024], &mut Discard).unwrap_err();
        assert!(matches!(err, FormatError::TruncatedEnd { .. }), "{err}");
        assert!(matches!(read_stream(&[][..], &mut Discard).unwrap_err(), FormatError::Empty));
    }

    #[test]
    fn escaping_names_and_duplicates_are_refused() {
        let mut tar = tar_of(&[("blobs/x", b"1")]);
        tar[..7].copy_from_slice(b"../x\0\0\0");
        let header = tar::Header::from_byte_slice(&tar[..512]);
        let mut fixed = header.clone();
        fixed.set_cksum();
        tar[..512].copy_from_slice(fixed.as_bytes());
        let err = read_stream(&tar[..], &mut Discard).unwrap_err();
        assert!(matches!(err, FormatError::BadEntryName { .. }), "{err}");

        let err = read_stream(&tar_of(&[("a", b"1"), ("./a", b"2")])[..], &mut Discard).unwrap_err();
        assert!(matches!(err, FormatError::DuplicateEntry { .. }), "{err}");
    }

    #[test]
    fn gzip_archives_are_read() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar_of(&[("index.json", b"{}")])).unwrap();
        let raw = read_stream(&gz.finish().unwrap()[..], &mut Discard).unwrap();
        assert!(raw.files.contains_key("index.json"));
    }
}
