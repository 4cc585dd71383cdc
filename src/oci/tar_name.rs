//! Entry names as the tar reader sees them: cleaning a raw name into plain
//! components, and recognising OCI whiteouts.
//!
//! Cleaning *neutralises* what is harmless to reinterpret — a leading `/`
//! (absolute names are taken as relative to the root), `./`, `//` and a
//! trailing `/` — and *rejects* what has no safe meaning: a `..` component
//! anywhere and a NUL byte. Whiteout names are checked here too: the part
//! after `.wh.` must be one plain component, and no directory on the way may
//! be a whiteout.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The prefix of an OCI whiteout file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The name of the OCI opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Names starting with this are AUFS bookkeeping (`.wh..wh.plnk` …) that
/// OCI tools skip.
const WHITEOUT_META_PREFIX: &str = ".wh..wh.";

/// Why a raw entry name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameProblem {
    /// A `..` component: the name would climb out of the root.
    ParentDir,
    /// A NUL byte, which no Linux file name can hold.
    Nul,
}

impl NameProblem {
    /// A sentence saying what is wrong and what would be right.
    pub fn reason(self) -> &'static str {
        match self {
            NameProblem::ParentDir => "has a `..` component; layer entries must name paths below the root without `..`",
            NameProblem::Nul => "contains a NUL byte; file names cannot hold one",
        }
    }
}

/// A cleaned entry name: zero or more plain components (never empty, `.`,
/// `..`, or containing `/` or NUL). Zero components is the root itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanName<'a> {
    parts: Vec<&'a [u8]>,
}

impl<'a> CleanName<'a> {
    /// Cleans `raw` (see the module page). Trailing NULs (padding some
    /// writers leave after GNU long names) are dropped; any other NUL is an
    /// error.
    pub fn parse(raw: &'a [u8]) -> Result<Self, NameProblem> {
        let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let raw = &raw[..end];
        if raw.contains(&0) {
            return Err(NameProblem::Nul);
        }
        let mut parts = Vec::new();
        for part in raw.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => return Err(NameProblem::ParentDir),
                _ => parts.push(part),
            }
        }
        Ok(CleanName { parts })
    }

    /// The last component, or `None` for the root.
    pub fn file_name(&self) -> Option<&'a OsStr> {
        self.parts.last().map(|p| OsStr::from_bytes(p))
    }

    /// The components before the last one, joined: the parent directory
    /// relative to the root (empty for a top-level name).
    pub fn parent(&self) -> PathBuf {
        let n = self.parts.len().saturating_sub(1);
        self.parts[..n].iter().map(|p| OsStr::from_bytes(p)).collect()
    }

    /// All components joined with `/`, without a leading or trailing slash.
    pub fn to_path(&self) -> PathBuf {
        self.parts.iter().map(|p| OsStr::from_bytes(p)).collect()
    }
}

/// What an entry means, judged by its cleaned name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind<'a> {
    /// An ordinary entry.
    Plain,
    /// `dir/.wh.NAME`: delete `dir/NAME`. Holds `NAME`.
    Whiteout(&'a OsStr),
    /// `dir/.wh..wh..opq`: hide everything lower layers had in `dir`.
    Opaque,
    /// `.wh..wh.*` other than the opaque marker (AUFS bookkeeping): skipped.
    Meta,
}

/// Why a whiteout name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhiteoutProblem {
    /// A directory component on the way starts with `.wh.`.
    InDirectory,
    /// Nothing, `.` or `..` after `.wh.`.
    BadTarget,
}

impl WhiteoutProblem {
    /// A sentence saying what is wrong and what would be right.
    pub fn reason(self) -> &'static str {
        match self {
            WhiteoutProblem::InDirectory => {
                "has a directory named `.wh.*` on its path; whiteouts are files and cannot contain entries"
            }
            WhiteoutProblem::BadTarget => {
                "is a whiteout without a plain name after `.wh.`; expected `.wh.NAME` with NAME not empty, `.` or `..`"
            }
        }
    }
}

/// Classifies a cleaned name as plain, whiteout, opaque marker or AUFS meta.
pub fn classify<'a>(name: &CleanName<'a>) -> Result<NameKind<'a>, WhiteoutProblem> {
    let Some((last, dirs)) = name.parts.split_last() else { return Ok(NameKind::Plain) };
    if dirs.iter().any(|d| d.starts_with(WHITEOUT_PREFIX.as_bytes())) {
        return Err(WhiteoutProblem::InDirectory);
    }
    if *last == OPAQUE_MARKER.as_bytes() {
        return Ok(NameKind::Opaque);
    }
    if last.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
        return Ok(NameKind::Meta);
    }
    match last.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        None => Ok(NameKind::Plain),
        Some(b"" | b"." | b"..") => Err(WhiteoutProblem::BadTarget),
        Some(target) => Ok(NameKind::Whiteout(OsStr::from_bytes(target))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(raw: &str) -> Vec<String> {
        let name = CleanName::parse(raw.as_bytes()).unwrap();
        name.to_path().iter().map(|p| p.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn neutralises_absolute_and_dot_names() {
        assert_eq!(parts("/etc/passwd"), ["etc", "passwd"]);
        assert_eq!(parts("./a//b/./c/"), ["a", "b", "c"]);
        for root in ["/.", "./", "", "/", "//./"] {
            assert_eq!(CleanName::parse(root.as_bytes()).unwrap().file_name(), None, "{root:?}");
        }
    }

    #[test]
    fn rejects_parent_components_and_nul() {
        for bad in ["..", "../x", "a/../../x", "a/..", "/../etc", "a/b/../c"] {
            assert_eq!(CleanName::parse(bad.as_bytes()), Err(NameProblem::ParentDir), "{bad}");
        }
        assert_eq!(CleanName::parse(b"a\0b"), Err(NameProblem::Nul));
        assert_eq!(parts("a/b\0\0"), ["a", "b"]);
        assert_eq!(parts("a/...b/..c"), ["a", "...b", "..c"]);
    }

    #[test]
    fn parent_and_file_name() {
        let n = CleanName::parse(b"/a/b/c").unwrap();
        assert_eq!(n.parent(), PathBuf::from("a/b"));
        assert_eq!(n.file_name(), Some(OsStr::new("c")));
        let top = CleanName::parse(b"c").unwrap();
        assert_eq!(top.parent(), PathBuf::new());
    }

    fn kind(raw: &str) -> Result<NameKind<'_>, WhiteoutProblem> {
        let name = CleanName::parse(raw.as_bytes()).unwrap();
        classify(&name)
    }

    #[test]
    fn classifies_whiteouts() {
        assert_eq!(kind("a/b"), Ok(NameKind::Plain));
        assert_eq!(kind("a/.wh.b"), Ok(NameKind::Whiteout(OsStr::new("b"))));
        assert_eq!(kind("a/.wh..b"), Ok(NameKind::Whiteout(OsStr::new(".b"))));
        assert_eq!(kind("a/.wh..wh..opq"), Ok(NameKind::Opaque));
        assert_eq!(kind(".wh..wh..opq"), Ok(NameKind::Opaque));
        assert_eq!(kind("a/.wh..wh.plnk"), Ok(NameKind::Meta));
    }

    #[test]
    fn rejects_bad_whiteouts() {
        assert_eq!(kind("a/.wh..."), Err(WhiteoutProblem::BadTarget));
        assert_eq!(kind("a/.wh.."), Err(WhiteoutProblem::BadTarget));
        assert_eq!(kind(".wh."), Err(WhiteoutProblem::BadTarget));
        assert_eq!(kind(".wh.../etc"), Err(WhiteoutProblem::InDirectory));
        assert_eq!(kind(".wh.x/y"), Err(WhiteoutProblem::InDirectory));
    }
}
