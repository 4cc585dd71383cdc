//! Executing programs and arranging file descriptors for it: sealed memfd
//! copies of a binary, `execveat(AT_EMPTY_PATH)`, `execvp`, `close_range`,
//! `dup3` onto fixed numbers, close-on-exec bits, `_exit`.
//!
//! Argument and environment vectors are built as [`CStrArray`]s before a
//! fork, so that the exec itself allocates nothing.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{self, FcntlArg, FdFlag, SealFlag};
use nix::sys::memfd::{MFdFlags, memfd_create};

/// A NUL-terminated array of C strings, as `execve` wants its `argv` and
/// `envp`, built once and usable without allocating.
pub struct CStrArray {
    strings: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl CStrArray {
    /// Builds the array; fails if a string holds a NUL byte.
    pub fn new<I, S>(items: I) -> io::Result<CStrArray>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let strings = items
            .into_iter()
            .map(|s| {
                CString::new(s.as_ref().as_bytes())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "argument contains a NUL byte"))
            })
            .collect::<io::Result<Vec<_>>>()?;
        let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Ok(CStrArray { strings, ptrs })
    }

    /// The strings, without the terminating null pointer.
    pub fn strings(&self) -> &[CString] {
        &self.strings
    }

    /// The first string (a program name), if any.
    pub fn first(&self) -> Option<&CStr> {
        self.strings.first().map(|s| s.as_c_str())
    }

    fn as_ptr(&self) -> *const *const libc::c_char {
        self.ptrs.as_ptr()
    }
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: executes the file `fd`
/// refers to (which may be close-on-exec). Returns only on failure.
pub fn exec_fd(fd: BorrowedFd<'_>, argv: &CStrArray, envp: &CStrArray) -> io::Error {
    // SAFETY: the path is an empty NUL-terminated string; argv and envp are
    // NULL-terminated arrays of pointers to NUL-terminated strings that the
    // CStrArrays keep alive; the fd is borrowed, hence open.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// `execvp(argv[0], argv)`: searches `PATH` of the current environment
/// (glibc's `environ`). Returns only on failure.
pub fn exec_path_search(argv: &CStrArray) -> io::Error {
    let Some(file) = argv.first() else { return io::Error::from_raw_os_error(libc::ENOENT) };
    // SAFETY: `file` and every argv string are NUL-terminated and kept alive
    // by the CStrArray; argv is NULL-terminated.
    unsafe { libc::execvp(file.as_ptr(), argv.as_ptr()) };
    io::Error::last_os_error()
}

/// `_exit(code)`: ends the process now, without running destructors, atexit
/// handlers or flushing stdio (right for a forked child).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// `write(2)` all of `buf` to a raw fd, retrying on `EINTR`; errors are
/// ignored (used for last-gasp error reports).
pub fn write_all_raw(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writes from a valid slice; `fd` may be closed, which only
        // makes write fail with EBADF.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n > 0 {
            buf = &buf[n as usize..];
        } else if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        } else {
            return;
        }
    }
}

/// Marks every fd from `first` up close-on-exec (`close_range(first, ~0,
/// CLOSE_RANGE_CLOEXEC)`, Linux 5.11+).
pub fn cloexec_from(first: RawFd) -> io::Result<()> {
    // SAFETY: close_range only changes fd flags of this process.
    let rc = unsafe { libc::close_range(first as libc::c_uint, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Sets or clears the close-on-exec flag of `fd`.
pub fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flags = if on { FdFlag::FD_CLOEXEC } else { FdFlag::empty() };
    fcntl::fcntl(fd, FcntlArg::F_SETFD(flags))?;
    Ok(())
}

/// Duplicates `fd` to the lowest free number ≥ `min`, close-on-exec.
pub fn dup_above(fd: BorrowedFd<'_>, min: RawFd) -> io::Result<OwnedFd> {
    let new = fcntl::fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(min))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// `dup3(fd, target, 0)`: makes fd number `target` (closing what was there)
/// a copy of `fd`, inheritable across exec. The new fd is left unowned: it
/// is meant for a process that is about to exec.
pub fn dup_onto(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    if fd.as_raw_fd() == target {
        return set_cloexec(fd, false);
    }
    // SAFETY: dup3 only changes this process's fd table; `target` is a plain
    // number whose previous file, if any, is closed by the kernel.
    let rc = unsafe { libc::dup3(fd.as_raw_fd(), target, 0) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Borrows a raw fd number of this process (0, 1, 2 or another that the
/// caller knows is open for the borrow's duration).
pub fn borrow_raw(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: callers only pass fds that stay open for the rest of the
    // process (standard streams, or fds set up before an exec).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Takes ownership of fd number `fd`, which no Rust object owns (one
/// inherited across exec), so that dropping the result closes it.
pub fn take_raw(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass an fd that is open and owned by nothing else in
    // this process.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

const MFD_EXEC: u32 = 0x10;

/// A sealed in-memory copy of the file at `path` (`memfd_create` +
/// `copy_file_range`/`sendfile` + `F_SEAL_SEAL|SHRINK|GROW|WRITE`), which
/// nobody can ever write to again; close-on-exec. Returns it and its size.
pub fn sealed_copy(path: &Path, name: &CStr) -> io::Result<(OwnedFd, u64)> {
    let src = File::open(path)?;
    let len = src.metadata()?.len();
    let base = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    // Ask for an executable memfd explicitly (vm.memfd_noexec may otherwise
    // refuse the exec); kernels before 6.3 do not know the flag.
    let mem = match memfd_create(name, base | MFdFlags::from_bits_retain(MFD_EXEC)) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::EINVAL) => memfd_create(name, base)?,
        Err(e) => return Err(e.into()),
    };
    copy_all(src.as_fd(), mem.as_fd(), len)?;
    let seals = SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE;
    fcntl::fcntl(&mem, FcntlArg::F_ADD_SEALS(seals))?;
    Ok((mem, len))
}

/// A memfd holding `bytes`, read from its start; close-on-exec.
pub fn memfd_with(name: &CStr, bytes: &[u8]) -> io::Result<OwnedFd> {
    use std::io::{Seek, Write};
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC)?;
    let mut file = File::from(fd);
    file.write_all(bytes)?;
    file.rewind()?;
    Ok(file.into())
}

fn copy_all(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    let mut left = len;
    let mut use_sendfile = false;
    while left > 0 {
        let chunk = left.min(1 << 30) as usize;
        let n = if use_sendfile {
            nix::sys::sendfile::sendfile(dst, src, None, chunk)?
        } else {
            match fcntl::copy_file_range(src, None, dst, None, chunk) {
                Ok(n) => n,
                Err(nix::errno::Errno::EXDEV | nix::errno::Errno::EINVAL | nix::errno::Errno::EOPNOTSUPP) => {
                    use_sendfile = true;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        };
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being copied"));
        }
        left -= n as u64;
    }
    Ok(())
}

/// The seals on a memfd (`F_GET_SEALS`).
pub fn seals(fd: BorrowedFd<'_>) -> io::Result<i32> {
    Ok(fcntl::fcntl(fd, FcntlArg::F_GET_SEALS)?)
}

/// Test builds only: lets the unit-test binary act as berth's container init.
///
/// The container's PID 1 is berth's own binary, started with `__init` as its
/// first argument; the `berth` binary dispatches that in `main`. A unit-test
/// binary has the test harness as its `main`, so this constructor (run by
/// glibc from `.init_array` with `argc, argv, envp`, before `main`) does the
/// same dispatch there.
#[cfg(test)]
mod test_init_hook {
    extern "C" fn hook(argc: libc::c_int, argv: *const *const libc::c_char, _envp: *const *const libc::c_char) {
        if argc < 2 || argv.is_null() {
            return;
        }
        // SAFETY: glibc passes the process's argv: `argc` valid pointers to
        // NUL-terminated strings, alive for the whole process.
        let args: Vec<std::ffi::OsString> = (0..argc as usize)
            .map(|i| unsafe { std::ffi::CStr::from_ptr(*argv.add(i)).to_bytes().to_vec() })
            .map(std::os::unix::ffi::OsStringExt::from_vec)
            .collect();
        if args[1] == "__init" {
            crate::runtime::init::run(args);
        }
    }

    // SAFETY: an `.init_array` entry is called once by the C runtime before
    // `main` with exactly this signature; `hook` returns normally unless it
    // is the container's init, which never returns.
    #[used]
    #[unsafe(link_section = ".init_array")]
    static HOOK: extern "C" fn(libc::c_int, *const *const libc::c_char, *const *const libc::c_char) = hook;
}
