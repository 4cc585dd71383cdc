//! The thread that lives in the container's network namespace and creates
//! sockets there on request (see the module page for why).

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use super::PortError;
use super::proxy::STACK;
use crate::sys::netns;

/// The kind of socket to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Stream,
    Datagram,
}

/// A thread inside one network namespace; ends on [`close`](Self::close).
pub(super) struct Dialer {
    requests: mpsc::Sender<Request>,
    thread: JoinHandle<()>,
}

struct Request {
    addr: SocketAddr,
    kind: Kind,
    reply: mpsc::SyncSender<io::Result<OwnedFd>>,
}

/// Where requests for a [`Dialer`] go; cheap to clone.
#[derive(Clone)]
pub(super) struct Requests(mpsc::Sender<Request>);

impl Dialer {
    /// Starts the thread and waits until it is in `netns`.
    pub(super) fn start(netns: &Path) -> Result<Dialer, PortError> {
        let path = netns.to_owned();
        let ns = File::open(netns).map_err(|source| PortError::OpenNetns { path: path.clone(), source })?;
        let (requests, incoming) = mpsc::channel::<Request>();
        let (ready_tx, ready) = mpsc::sync_channel(1);
        let thread = thread::Builder::new()
            .name("port-dialer".into())
            .stack_size(STACK)
            .spawn(move || {
                // This thread never leaves the namespace; it ends with the proxy.
                let entered = netns::enter_net_ns(&ns);
                drop(ns);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if ok {
                    for request in incoming {
                        let socket = match request.kind {
                            Kind::Stream => netns::stream_socket(&request.addr),
                            Kind::Datagram => netns::datagram_socket(&request.addr),
                        };
                        let _ = request.reply.send(socket);
                    }
                }
            })
            .map_err(|source| PortError::Spawn { what: "dialer", source })?;
        match ready.recv() {
            Ok(Ok(())) => Ok(Dialer { requests, thread }),
            Ok(Err(source)) => {
                let _ = thread.join();
                Err(PortError::EnterNetns { path, source })
            }
            Err(_) => {
                let _ = thread.join();
                Err(PortError::EnterNetns { path, source: io::Error::other("the dialer thread ended early") })
            }
        }
    }

    pub(super) fn requests(&self) -> Requests {
        Requests(self.requests.clone())
    }

    /// Ends the thread once no request is pending.
    pub(super) fn close(self) {
        drop(self.requests);
        let _ = self.thread.join();
    }
}

impl Requests {
    /// A socket of `addr`'s family and `kind`, in the dialer's namespace.
    pub(super) fn socket(&self, addr: SocketAddr, kind: Kind) -> io::Result<OwnedFd> {
        let ended = || io::Error::other("the dialer thread has ended");
        let (reply, answer) = mpsc::sync_channel(1);
        self.0.send(Request { addr, kind, reply }).map_err(|_| ended())?;
        answer.recv().map_err(|_| ended())?
    }
}
