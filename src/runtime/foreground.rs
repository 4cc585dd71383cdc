//! A foreground `berth run`: the CLI process supervises the container
//! itself, with no shim. Its output goes straight to the user's terminal
//! (and to the log unless the container is removed on exit); signals the CLI
//! gets are passed on to the container; with `-t` the user's terminal is
//! relayed to a pty.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::container::Container;
use super::logs::{LogError, LogWriter, Stream};
use super::process::{InitExe, Stdio};
use super::state::{self, State};
use super::supervise::Prepared;
use super::tty;

/// Why a foreground run failed before its command could run.
#[derive(Debug, thiserror::Error)]
pub enum ForegroundError {
    #[error(transparent)]
    Supervise(#[from] super::supervise::SuperviseError),
    #[error("container {name}: {what}: {source}")]
    Io { name: String, what: &'static str, source: std::io::Error },
    #[error("container {name}: {source}")]
    Other { name: String, source: Box<dyn std::error::Error + Send + Sync> },
}

impl ForegroundError {
    /// 127 or 126 when the command itself could not be executed.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            ForegroundError::Supervise(e) => e.exit_code(),
            _ => None,
        }
    }
}

/// Runs `c` to completion in this process and returns its exit code.
pub fn run(c: &Container) -> Result<i32, ForegroundError> {
    let name = c.record.name.clone();
    let io = |what| {
        let name = name.clone();
        move |source| ForegroundError::Io { name, what, source }
    };
    let other = |e: Box<dyn std::error::Error + Send + Sync>| ForegroundError::Other { name: name.clone(), source: e };
    let prepared = Prepared::new(c)?;
    let init = InitExe::current().map_err(|e| other(Box::new(e)))?;
    let me = crate::sys::proc::pid().as_raw();
    let mut st = State::created(c.record.id.as_str(), me, state::process_start_time(me).unwrap_or(0));
    state::write_state(&c.paths.dir, &st).map_err(|e| other(Box::new(e)))?;

    // Keep a log unless the container goes away at exit anyway.
    let log = if c.record.auto_remove {
        None
    } else {
        Some(Arc::new(LogWriter::open(&c.paths.log()).map_err(|e| other(Box::new(e)))?))
    };
    let mut master = None;
    let mut tees: Vec<Pump> = Vec::new();
    let stdio = if c.record.tty {
        let (m, stdio) = tty::open_terminal().map_err(io("open a pseudo-terminal"))?;
        master = Some(m);
        stdio
    } else if let Some(log) = &log {
        let (out_r, out_w) = nix::unistd::pipe().map_err(|e| io("make a pipe")(e.into()))?;
        let (err_r, err_w) = nix::unistd::pipe().map_err(|e| io("make a pipe")(e.into()))?;
        tees.push(tee(out_r, Stream::Stdout, log.clone()).map_err(|e| other(Box::new(e)))?);
        tees.push(tee(err_r, Stream::Stderr, log.clone()).map_err(|e| other(Box::new(e)))?);
        Stdio { stdout: out_w, stderr: err_w, ..Stdio::inherit(c.record.interactive).map_err(io("duplicate stdin"))? }
    } else {
        Stdio::inherit(c.record.interactive).map_err(io("duplicate berth's stdio"))?
    };

    let running = match prepared.start(&init, stdio) {
        Ok(r) => r,
        Err(e) => {
            st.failed(e.exit_code().unwrap_or(125), e.to_string());
            if c.record.auto_remove {
                let _ = super::control::remove_on_exit(c);
            } else {
                let _ = state::write_state(&c.paths.dir, &st);
            }
            return Err(e.into());
        }
    };
    let pid = running.pid;
    st.running(pid.as_raw(), running.pid_start);
    state::write_state(&c.paths.dir, &st).map_err(|e| other(Box::new(e)))?;

    // Signals to berth go to the container's init, which passes them on.
    let companions = tty::Companions::start(pid, master, c.record.interactive).map_err(io("catch signals"))?;

    let exit = prepared.wait(running);
    companions.finish();
    for t in tees {
        let _ = t.join();
    }
    let exit = exit?;
    st.exited(exit.code, exit.oom_killed);
    if c.record.auto_remove {
        let _ = super::control::remove_on_exit(c);
    } else {
        state::write_state(&c.paths.dir, &st).map_err(|e| other(Box::new(e)))?;
    }
    Ok(exit.code)
}

/// Copies the container's `stream` to the user and, line by line, to the log.
fn tee(from: OwnedFd, stream: Stream, log: Arc<LogWriter>) -> Result<Pump, LogError> {
    let echo = move |bytes: &[u8]| {
        let _ = match stream {
            Stream::Stdout => std::io::stdout().write_all(bytes).and_then(|()| std::io::stdout().flush()),
            Stream::Stderr => std::io::stderr().write_all(bytes),
        };
    };
    super::logs::pump(super::logs::Tee { inner: File::from(from), copy: echo }, stream, log)
}

type Pump = JoinHandle<Result<super::logs::PumpStats, LogError>>;
