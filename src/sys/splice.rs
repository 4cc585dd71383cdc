//! Copying between two sockets inside the kernel: `splice(2)` from the
//! source into a pipe and from the pipe into the destination, so the bytes
//! never cross into user space (the published-port proxy's hot path).

use std::io;
use std::os::fd::BorrowedFd;

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};

/// How much one `splice` moves at most, and the pipe's size asked for.
const CHUNK: usize = 256 * 1024;

/// Copies from `from` until it ends (returns `Ok`), or an error. The first
/// error is `Unsupported` when this kernel cannot splice these descriptors
/// before anything moved (`EINVAL`), so that the caller may copy another way.
pub fn copy(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let (pipe_r, pipe_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    // A bigger pipe moves more per call; a refusal (the user's pipe quota)
    // leaves the default, which works too.
    let _ = fcntl(&pipe_w, FcntlArg::F_SETPIPE_SZ(CHUNK as i32));
    // No SPLICE_F_MORE: like MSG_MORE it corks the socket, and a short
    // answer then waits for the 200 ms timer.
    let flags = SpliceFFlags::SPLICE_F_MOVE;
    let mut moved_any = false;
    loop {
        let n = match splice(from, None, &pipe_w, None, CHUNK, flags) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EINVAL) if !moved_any => {
                return Err(io::Error::new(io::ErrorKind::Unsupported, "splice is not supported here"));
            }
            Err(e) => return Err(e.into()),
        };
        moved_any = true;
        let mut left = n;
        while left > 0 {
            match splice(&pipe_r, None, to, None, left, flags) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(m) => left -= m,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn a_stream_is_copied_whole_and_its_end_seen() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sender = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
            s.write_all(&data).unwrap();
        });
        let (from, _) = listener.accept().unwrap();
        let (mut out_r, out_w) = std::os::unix::net::UnixStream::pair().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            out_r.read_to_end(&mut got).unwrap();
            got
        });
        copy(from.as_fd(), out_w.as_fd()).unwrap();
        drop(out_w);
        sender.join().unwrap();
        let got = reader.join().unwrap();
        assert_eq!(got.len(), 3_000_000);
        assert!(got.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    }
}
