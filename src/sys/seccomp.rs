//! Installing a seccomp filter on the calling thread, and the running
//! kernel's version (which profiles' rules may depend on).

use std::io;

use seccompiler::sock_filter;

/// `struct sock_fprog` (linux/filter.h).
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const sock_filter,
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, program)`. Without
/// `no_new_privs` the caller needs CAP_SYS_ADMIN in its user namespace.
/// The filter holds for this thread and everything it executes or forks
/// from now on; it can never be removed.
pub fn install_filter(program: &[sock_filter], flags: u32) -> io::Result<()> {
    let len = libc::c_ushort::try_from(program.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a seccomp filter has at most 4096 instructions"))?;
    let fprog = SockFprog { len, filter: program.as_ptr() };
    // SAFETY: `fprog` points at `program`, which outlives the call; the
    // kernel copies the instructions and keeps no pointer to them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &fprog as *const SockFprog,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The running kernel's release, as `uname -r` prints it.
pub fn kernel_release() -> io::Result<String> {
    let uts = nix::sys::utsname::uname()?;
    Ok(uts.release().to_string_lossy().into_owned())
}
