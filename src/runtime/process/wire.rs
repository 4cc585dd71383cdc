//! The error pipe between a starting container and its parent.
//!
//! One pipe, close-on-exec everywhere except across the exec of berth's
//! init (where it is fd 3), carries in order:
//! - `P` and the host pid of the container's first process (4 bytes, little
//!   endian), written by the short-lived intermediate process;
//! - at most one failure record, then the writer exits:
//!   `E step \x1f errno \x1f message` from the container's set-up, or
//!   `X errno \x1f command` from init when the user's command cannot be
//!   executed.
//!
//! End of file with no record means the user's command was executed: the
//! last copy of the write end closed with that exec.

use std::io::{self, Read};
use std::os::fd::RawFd;

use crate::sys::exec::write_all_raw;

const SEP: char = '\x1f';

/// The fd number the error pipe has in berth's init.
pub const INIT_ERROR_FD: RawFd = 3;

/// A failure reported by the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The container's set-up failed at `step`.
    Setup { step: String, errno: i32, message: String },
    /// The user's command could not be executed.
    Exec { errno: i32, command: String },
}

/// Writes the pid record.
pub fn send_pid(fd: RawFd, pid: i32) {
    let mut buf = [0u8; 5];
    buf[0] = b'P';
    buf[1..].copy_from_slice(&pid.to_le_bytes());
    write_all_raw(fd, &buf);
}

/// Writes a set-up failure record.
pub fn send_setup_failure(fd: RawFd, step: &str, errno: i32, message: &str) {
    let step = step.replace(SEP, " ");
    write_all_raw(fd, format!("E{step}{SEP}{errno}{SEP}{message}").as_bytes());
}

/// Writes an exec failure record from a fixed buffer (init allocates
/// nothing after it started).
pub fn send_exec_failure(fd: RawFd, errno: i32, command: &[u8]) {
    let mut buf = [0u8; 512];
    let mut n = 0;
    let mut push = |bytes: &[u8]| {
        let take = bytes.len().min(buf.len() - n);
        buf[n..n + take].copy_from_slice(&bytes[..take]);
        n += take;
    };
    push(b"X");
    let mut digits = [0u8; 12];
    push(format_int(errno, &mut digits));
    push(&[SEP as u8]);
    push(command);
    write_all_raw(fd, &buf[..n]);
}

/// Formats `v` in decimal into `buf` without allocating.
pub fn format_int(v: i32, buf: &mut [u8; 12]) -> &[u8] {
    let mut i = buf.len();
    let neg = v < 0;
    let mut u = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Reads the pid record: `Ok(Ok(pid))`, or `Ok(Err(report))` when the
/// intermediate process failed instead, or `Err` on a broken protocol.
pub fn read_pid(r: &mut impl Read) -> io::Result<Result<i32, Report>> {
    let mut tag = [0u8; 1];
    if r.read(&mut tag)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the starting process died before reporting"));
    }
    if tag[0] == b'P' {
        let mut pid = [0u8; 4];
        r.read_exact(&mut pid)?;
        return Ok(Ok(i32::from_le_bytes(pid)));
    }
    let mut rest = Vec::new();
    r.read_to_end(&mut rest)?;
    let mut all = tag.to_vec();
    all.extend(rest);
    parse(&all).map(Err)
}

/// Reads until end of file: `Ok(None)` if nothing came (success).
pub fn read_outcome(r: &mut impl Read) -> io::Result<Option<Report>> {
    let mut all = Vec::new();
    r.read_to_end(&mut all)?;
    if all.is_empty() { Ok(None) } else { parse(&all).map(Some) }
}

fn parse(bytes: &[u8]) -> io::Result<Report> {
    let bad =
        || io::Error::new(io::ErrorKind::InvalidData, format!("garbled report {:?}", String::from_utf8_lossy(bytes)));
    let text = String::from_utf8_lossy(&bytes[1..]).into_owned();
    match bytes.first() {
        Some(b'E') => {
            let mut parts = text.splitn(3, SEP);
            let step = parts.next().ok_or_else(bad)?.to_string();
            let errno = parts.next().and_then(|e| e.parse().ok()).ok_or_else(bad)?;
            let message = parts.next().unwrap_or("").to_string();
            Ok(Report::Setup { step, errno, message })
        }
        Some(b'X') => {
            let (errno, command) = text.split_once(SEP).ok_or_else(bad)?;
            Ok(Report::Exec { errno: errno.parse().map_err(|_| bad())?, command: command.to_string() })
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let (mut r, w) = std::io::pipe().unwrap();
        use std::os::fd::AsRawFd;
        send_pid(w.as_raw_fd(), 4242);
        send_setup_failure(w.as_raw_fd(), "mount /proc", 1, "operation not permitted");
        drop(w);
        assert_eq!(read_pid(&mut r).unwrap(), Ok(4242));
        let got = read_outcome(&mut r).unwrap();
        assert_eq!(
            got,
            Some(Report::Setup { step: "mount /proc".into(), errno: 1, message: "operation not permitted".into() })
        );
    }

    #[test]
    fn exec_failure_without_allocation() {
        let (mut r, w) = std::io::pipe().unwrap();
        use std::os::fd::AsRawFd;
        send_exec_failure(w.as_raw_fd(), 2, b"nope");
        drop(w);
        assert_eq!(read_outcome(&mut r).unwrap(), Some(Report::Exec { errno: 2, command: "nope".into() }));
        let mut b = [0u8; 12];
        assert_eq!(format_int(-13, &mut b), b"-13");
    }
}
