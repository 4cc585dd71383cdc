//! Releasing mapped pages a long-lived process no longer needs.

use std::io;

/// Drops this process's page-table entries for the read-only, file-backed
/// mappings of its own executable and shared libraries (code and constants). The pages stay in
/// the page cache, shared with every other berth process; the few that the
/// process still runs are mapped again on their next use. A shim touches
/// megabytes of berth's code while it starts a container and then loops
/// over a few functions for the container's whole life, so this turns its
/// resident set from what starting cost into what supervising costs.
pub fn release_executable_pages() -> io::Result<usize> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let exe = exe.to_string_lossy().into_owned();
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut released = 0;
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16))
        {
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            // Read-only private mappings of files: the binary and its
            // shared libraries.
            let file = path == exe || path.starts_with("/usr/lib") || path.starts_with("/lib");
            let candidate = file && perms.as_bytes().get(1) == Some(&b'-') && perms.as_bytes().get(3) == Some(&b'p');
            current = candidate.then_some((start, end));
            continue;
        }
        // A mapping with anonymous (copied-on-write) pages was written to,
        // like the relocated RELRO segment: its contents are not the file's.
        if first == "Anonymous:"
            && let Some((start, end)) = current.take()
            && fields.next() == Some("0")
        {
            // SAFETY: the range is a whole read-only mapping of this process
            // whose every page is the file's own (no anonymous copy): zapping
            // its page-table entries loses nothing, and later accesses fault
            // the same file contents back in.
            let rc = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
            if rc == 0 {
                released += end - start;
            }
        }
    }
    Ok(released)
}
