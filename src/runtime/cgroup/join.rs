//! [`Joiner`]: joining a cgroup from a child process between `fork` and
//! `exec`, where only async-signal-safe work is allowed: the files are
//! opened beforehand, and joining formats the process id on the stack.

use std::fs::File;
use std::io::{self, Write};

/// The cgroup's `cgroup.procs` files, opened ahead of time so that a child
/// process can join between `fork` and `exec`, where allocating is unsafe.
#[derive(Debug)]
pub struct Joiner {
    pub(super) files: Vec<File>,
}

impl Joiner {
    /// Moves process `pid` into the cgroup; 0 means the calling process.
    /// A negative id is refused (`InvalidInput`) rather than read as 0.
    /// Neither allocates nor takes locks.
    pub fn join(&self, pid: i32) -> io::Result<()> {
        let Ok(pid) = u32::try_from(pid) else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        let mut buffer = [0u8; 10];
        let text = format_pid(pid, &mut buffer);
        for mut file in &self.files {
            file.write_all(text)?;
        }
        Ok(())
    }
}

/// Writes the decimal form of `pid` into `buffer` without allocating.
fn format_pid(pid: u32, buffer: &mut [u8; 10]) -> &[u8] {
    let mut value = pid;
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    &buffer[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_format_without_allocating() {
        let mut buffer = [0u8; 10];
        assert_eq!(format_pid(0, &mut buffer), b"0");
        assert_eq!(format_pid(7, &mut buffer), b"7");
        assert_eq!(format_pid(4_194_304, &mut buffer), b"4194304");
        assert_eq!(format_pid(u32::MAX, &mut buffer), b"4294967295");
    }

    #[test]
    fn negative_ids_are_refused_not_taken_as_self() {
        let joiner = Joiner { files: Vec::new() };
        assert_eq!(joiner.join(-1).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        joiner.join(0).unwrap();
    }
}
