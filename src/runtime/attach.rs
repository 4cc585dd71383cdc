//! `berth attach`: a detached container's live input and output.
//!
//! Each shim serves a unix socket, `attach.sock` in the container's
//! directory (reached through `/proc/self/fd/N/` so its path stays short
//! however deep the store is). A client receives everything the container
//! writes from the moment it attaches, raw, and sends frames: `0` + u32
//! length + bytes for the container's input, `1` + u16 rows + u16 cols for
//! a terminal's new size. A container started with `-i` keeps its input
//! open in the shim until it exits; one with `-t` has a pty held by the
//! shim. The shim closes every client when the container exits.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::sys::tty::{Winsize, set_window_size};

/// The socket's file name in the container's directory.
pub const SOCKET: &str = "attach.sock";

const FRAME_INPUT: u8 = 0;
const FRAME_RESIZE: u8 = 1;

/// A short path to `name` in `dir` through a directory fd, and that fd
/// (which must outlive every use of the path).
fn short_path(dir: &Path, name: &str) -> io::Result<(OwnedFd, String)> {
    let fd: OwnedFd = std::fs::File::open(dir)?.into();
    let path = format!("/proc/self/fd/{}/{name}", fd.as_raw_fd());
    Ok((fd, path))
}

/// The clients attached to one container; output is copied to each.
#[derive(Clone, Default)]
pub struct Clients(Arc<Mutex<Vec<UnixStream>>>);

impl Clients {
    /// Sends `bytes` to every client, dropping those that went away.
    pub fn broadcast(&self, bytes: &[u8]) {
        let mut clients = self.0.lock().unwrap_or_else(|e| e.into_inner());
        clients.retain_mut(|c| c.write_all(bytes).is_ok());
    }

    /// Disconnects every client (the container exited).
    pub fn close_all(&self) {
        let mut clients = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for c in clients.drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Where attached clients' input goes: the container's stdin pipe, or the
/// pty master (which also takes window sizes).
pub enum Input {
    None,
    Pipe(Arc<Mutex<std::fs::File>>),
    Terminal(Arc<std::fs::File>),
}

/// Serves the attach socket of the container in `dir` on a background
/// thread until the shim exits.
pub fn serve(dir: &Path, clients: Clients, input: Arc<Mutex<Input>>) -> io::Result<()> {
    let (dir_fd, path) = short_path(dir, SOCKET)?;
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::thread::Builder::new().name("attach".into()).stack_size(64 * 1024).spawn(move || {
        let _keep = dir_fd;
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let Ok(reader) = conn.try_clone() else { continue };
            clients.0.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
            let input = input.clone();
            let _ = std::thread::Builder::new()
                .name("attach-input".into())
                .stack_size(64 * 1024)
                .spawn(move || read_frames(reader, &input));
        }
    })?;
    Ok(())
}

fn read_frames(mut from: UnixStream, input: &Mutex<Input>) {
    let mut kind = [0u8; 1];
    while from.read_exact(&mut kind).is_ok() {
        match kind[0] {
            FRAME_INPUT => {
                let mut len = [0u8; 4];
                if from.read_exact(&mut len).is_err() {
                    return;
                }
                let mut data = vec![0u8; u32::from_be_bytes(len).min(1 << 20) as usize];
                if from.read_exact(&mut data).is_err() {
                    return;
                }
                let guard = input.lock().unwrap_or_else(|e| e.into_inner());
                let _ = match &*guard {
                    Input::Pipe(p) => p.lock().unwrap_or_else(|e| e.into_inner()).write_all(&data),
                    Input::Terminal(t) => (&**t).write_all(&data),
                    Input::None => Ok(()),
                };
            }
            FRAME_RESIZE => {
                let mut size = [0u8; 4];
                if from.read_exact(&mut size).is_err() {
                    return;
                }
                let ws = Winsize {
                    ws_row: u16::from_be_bytes([size[0], size[1]]),
                    ws_col: u16::from_be_bytes([size[2], size[3]]),
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                if let Input::Terminal(t) = &*input.lock().unwrap_or_else(|e| e.into_inner()) {
                    let _ = set_window_size(t.as_fd(), &ws);
                }
            }
            _ => return,
        }
    }
}

/// A client's connection to a container's shim.
pub struct Connection {
    stream: UnixStream,
    _dir: OwnedFd,
}

impl Connection {
    /// Connects to the shim of the container in `dir`.
    pub fn open(dir: &Path) -> io::Result<Connection> {
        let (dir_fd, path) = short_path(dir, SOCKET)?;
        let stream = UnixStream::connect(&path)?;
        Ok(Connection { stream, _dir: dir_fd })
    }

    /// A handle to send input and sizes with, from another thread.
    pub fn sender(&self) -> io::Result<Sender> {
        Ok(Sender(self.stream.try_clone()?))
    }

    /// Copies the container's output to `out` until the container exits.
    pub fn copy_output(&mut self, out: &mut impl Write) -> io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    out.write_all(&buf[..n])?;
                    out.flush()?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Sends frames to a shim.
pub struct Sender(UnixStream);

impl Sender {
    pub fn input(&mut self, data: &[u8]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(data.len() + 5);
        frame.push(FRAME_INPUT);
        frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
        frame.extend_from_slice(data);
        self.0.write_all(&frame)
    }

    pub fn resize(&mut self, ws: &Winsize) -> io::Result<()> {
        let mut frame = vec![FRAME_RESIZE];
        frame.extend_from_slice(&ws.ws_row.to_be_bytes());
        frame.extend_from_slice(&ws.ws_col.to_be_bytes());
        self.0.write_all(&frame)
    }

    /// Ends the attachment from the client's side.
    pub fn detach(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}
