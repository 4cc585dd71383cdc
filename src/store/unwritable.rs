//! Telling a store that cannot take a write from bad input.
//!
//! Import, load, pull and build all read an input while they write into the
//! store, and an I/O error from either side used to read the same: a full
//! disk was reported as "the input is not a readable tar". Every write into
//! the store goes through one of three seams, and each names the store's
//! filesystem when it is full, over quota, read-only or failing
//! ([`WriteProblem`]):
//!
//! - [`StoreError::io`]: temp files, renames, fsyncs, staging directories.
//! - [`BlobWriter`](super::BlobWriter)'s `write`: its error carries a
//!   [`StoreError::Unwritable`] inside the `io::Error` (same kind), so
//!   callers that only see an `io::Error` (a tar writer, an archive reader's
//!   sink, a download) still say what happened; [`lift`] takes it out again.
//! - [`from_unpack`]: an unpack into a staging directory that failed
//!   writing there (not reading its tar).
//!
//! ENOSPC, EDQUOT and EROFS never come from reading, so any store operation
//! failing with them is the store's; EIO counts only where the store was
//! being written.

use std::error::Error;
use std::io;
use std::path::Path;

use super::StoreError;
use crate::oci::UnpackError;

/// Why the store's filesystem did not take a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteProblem {
    /// ENOSPC: no space (or no inodes) left.
    Full,
    /// EDQUOT: the user's disk quota is used up.
    Quota,
    /// EROFS: mounted read-only.
    ReadOnly,
    /// EIO while writing: the disk or filesystem is failing.
    Failing,
}

impl WriteProblem {
    /// The problem `e` reports, if it is one that only a write can meet
    /// (full, over quota, read-only).
    pub fn of(e: &io::Error) -> Option<WriteProblem> {
        match e.raw_os_error() {
            Some(libc::ENOSPC) => Some(WriteProblem::Full),
            Some(libc::EDQUOT) => Some(WriteProblem::Quota),
            Some(libc::EROFS) => Some(WriteProblem::ReadOnly),
            Some(_) => None,
            None => match e.kind() {
                io::ErrorKind::StorageFull => Some(WriteProblem::Full),
                io::ErrorKind::QuotaExceeded => Some(WriteProblem::Quota),
                io::ErrorKind::ReadOnlyFilesystem => Some(WriteProblem::ReadOnly),
                _ => None,
            },
        }
    }

    /// The problem `e` reports, `e` being an error of writing into the
    /// store: [`of`](Self::of), and EIO too.
    pub fn of_write(e: &io::Error) -> Option<WriteProblem> {
        WriteProblem::of(e).or_else(|| (e.raw_os_error() == Some(libc::EIO)).then_some(WriteProblem::Failing))
    }

    /// What would be right, for the end of a message.
    pub fn advice(self) -> &'static str {
        match self {
            WriteProblem::Full | WriteProblem::Quota => {
                "free space there (`berth gc` removes what no tag, container or cache entry needs; `berth system df` shows what uses it) or put the store on a larger filesystem with --root or BERTH_ROOT; the store keeps nothing half-written"
            }
            WriteProblem::ReadOnly => {
                "remount it read-write, or use a store on a writable filesystem with --root or BERTH_ROOT"
            }
            WriteProblem::Failing => "check the disk (`dmesg` shows the kernel's errors) before using this store again",
        }
    }
}

impl std::fmt::Display for WriteProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WriteProblem::Full => "the store's filesystem is full",
            WriteProblem::Quota => "the disk quota on the store's filesystem is used up",
            WriteProblem::ReadOnly => "the store's filesystem is read-only",
            WriteProblem::Failing => "the store's filesystem reported an I/O error",
        })
    }
}

/// `e` as an error of writing `path` in the store while doing `doing`:
/// an `io::Error` of the same kind carrying a [`StoreError::Unwritable`]
/// when the filesystem did not take the write, `e` itself otherwise.
pub(crate) fn mark_write_error(doing: &str, path: &Path, e: io::Error) -> io::Error {
    if lifted(&e).is_some() {
        return e;
    }
    match WriteProblem::of_write(&e) {
        Some(problem) => {
            let kind = e.kind();
            let store =
                StoreError::Unwritable { doing: doing.to_owned(), path: path.to_owned(), problem, source: Box::new(e) };
            io::Error::new(kind, store)
        }
        None => e,
    }
}

/// The store's own error carried inside `e` (see [`mark_write_error`]), if any.
fn lifted(e: &io::Error) -> Option<&StoreError> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<StoreError>())
}

/// Takes the [`StoreError`] that a store writer put inside `e` back out;
/// `Err(e)` when there is none.
pub fn lift(e: io::Error) -> Result<StoreError, io::Error> {
    if lifted(&e).is_none() {
        return Err(e);
    }
    let inner = e.into_inner().expect("checked above");
    Ok(*inner.downcast::<StoreError>().expect("checked above"))
}

/// The store's error for an unpack into `root` (a staging directory in the
/// store) that stopped because the store's filesystem did not take a write;
/// `Err` with the unpack error unchanged otherwise (bad input, for one).
pub(crate) fn from_unpack(root: &Path, e: UnpackError) -> Result<StoreError, UnpackError> {
    let problem = match e.write_error() {
        Some(io) => match lifted(io) {
            Some(_) => None,
            None => WriteProblem::of_write(io),
        },
        None => None,
    };
    match problem {
        Some(problem) => Ok(StoreError::Unwritable {
            doing: "unpack into".to_owned(),
            path: root.to_owned(),
            problem,
            source: Box::new(e) as Box<dyn Error + Send + Sync>,
        }),
        None => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_a_write_can_meet_are_the_stores() {
        let os = io::Error::from_raw_os_error;
        assert_eq!(WriteProblem::of(&os(libc::ENOSPC)), Some(WriteProblem::Full));
        assert_eq!(WriteProblem::of(&os(libc::EDQUOT)), Some(WriteProblem::Quota));
        assert_eq!(WriteProblem::of(&os(libc::EROFS)), Some(WriteProblem::ReadOnly));
        assert_eq!(WriteProblem::of(&os(libc::EIO)), None, "EIO may come from reading the input");
        assert_eq!(WriteProblem::of_write(&os(libc::EIO)), Some(WriteProblem::Failing));
        assert_eq!(WriteProblem::of(&os(libc::ENOENT)), None);
        assert_eq!(WriteProblem::of(&io::Error::from(io::ErrorKind::UnexpectedEof)), None);
    }

    #[test]
    fn a_marked_error_keeps_its_kind_names_the_path_and_lifts_out_once() {
        let path = Path::new("/store/tmp/blob-1");
        let marked = mark_write_error("write blob", path, io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(marked.kind(), io::ErrorKind::StorageFull);
        let text = marked.to_string();
        assert!(text.contains("/store/tmp/blob-1") && text.contains("the store's filesystem is full"), "{text}");
        // Marking again (a caller's own mapping) does not wrap it twice.
        let again = mark_write_error("write", path, marked);
        let store = lift(again).expect("a store error inside");
        assert!(matches!(store, StoreError::Unwritable { problem: WriteProblem::Full, .. }), "{store:?}");
        assert!(lift(io::Error::other("plain")).is_err());
    }

    #[test]
    fn other_errors_pass_unmarked() {
        let e = mark_write_error("write blob", Path::new("/x"), io::Error::from(io::ErrorKind::UnexpectedEof));
        assert!(lift(e).is_err());
    }
}
