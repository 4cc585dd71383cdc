//! Listing extended attributes by path, without following a symlink there.
//! Reading one attribute is `fs::get_xattr_nofollow`; setting one through an
//! open fd is `fs::set_xattr_fd`.

use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// The names of the extended attributes of `path` itself (`llistxattr`),
/// in the order the filesystem gives them. Empty if it has none or the
/// filesystem has no xattrs.
pub fn list_nofollow(path: &Path) -> io::Result<Vec<OsString>> {
    let cpath = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: the path is NUL-terminated and outlives the call; the kernel
    // writes at most `buf.len()` bytes into `buf`.
    let list = sized(1 << 20, &[libc::ENOTSUP], |buf| unsafe {
        libc::llistxattr(cpath.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    })?;
    Ok(names(list))
}

/// The NUL-separated names of an xattr list.
pub(super) fn names(list: Option<Vec<u8>>) -> Vec<OsString> {
    let list = list.unwrap_or_default();
    list.split(|&b| b == 0).filter(|name| !name.is_empty()).map(|name| OsString::from_vec(name.to_vec())).collect()
}

/// Runs an xattr call that fills a buffer (`call(buf)` returns the length or
/// -1) with a buffer grown until the answer fits (up to `max` bytes);
/// `Ok(None)` when it fails with one of the `absent` errnos.
pub(super) fn sized(
    max: usize,
    absent: &[i32],
    mut call: impl FnMut(&mut [u8]) -> isize,
) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        let n = call(&mut buf);
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(e) if absent.contains(&e) => return Ok(None),
            // The value grew since it was sized, or the buffer is too small.
            Some(libc::ERANGE) if buf.len() < max => buf.resize(buf.len() * 4, 0),
            _ => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_names_of_a_file_and_none_of_a_plain_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        use std::os::fd::AsFd;
        let before = list_nofollow(&path).unwrap();
        crate::sys::fs::set_xattr_fd(file.as_fd(), "user.berth.test", b"1").unwrap();
        let after = list_nofollow(&path).unwrap();
        assert!(!before.iter().any(|n| n == "user.berth.test"), "{before:?}");
        assert!(after.iter().any(|n| n == "user.berth.test"), "{after:?}");
    }
}
