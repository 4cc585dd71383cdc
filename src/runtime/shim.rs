//! The shim: one small process per detached container that owns it after
//! the CLI has gone.
//!
//! `berth run -d` starts `berth __shim DIR FD` ([`spawn`]); the shim forks
//! once more into a new session (so it is no child of the CLI and has no
//! terminal), reports on FD whether the container started, then supervises
//! it: its stdout and stderr go to the log with timestamps, `state.json`
//! says what it is doing, published ports are served, and the restart
//! policy is applied after each exit. A `stop-requested` file, written by
//! `berth stop` before it signals the container, tells the shim not to
//! restart. The CLI never talks to a shim except through these files and
//! signals.
//!
//! # One shim per container
//!
//! A shim holds an exclusive `flock` on `shim.lock` in the container's
//! directory from before it records anything until it exits. A second shim
//! for the same container (two `berth start`s at once, or an `up` after a
//! berth killed right after spawning one) finds it held, touches nothing
//! and answers `busy`; [`spawn`] returns [`ShimError::Busy`], and the
//! caller waits for the shim that owns the container (`control::start`).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio as StdStdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::attach::{self, Clients, Input};
use super::container::{self, Container, ContainerError};
use super::logs::{LogWriter, Stream, Tee, pump};
use super::process::{InitExe, Stdio};
use super::restart::{self, Decision, ExitInfo, History, Policy};
use super::state::{self, State, Status};
use super::supervise::Prepared;
use crate::sys;

/// The file `berth stop` writes before signalling, so no restart follows.
pub const STOP_REQUESTED: &str = "stop-requested";

/// The file a live shim holds locked (see the module page).
const SHIM_LOCK: &str = "shim.lock";

/// Why a shim could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("cannot start the shim for {}: {source}", dir.display())]
    Spawn { dir: PathBuf, source: std::io::Error },
    #[error("{message}")]
    Failed { code: Option<i32>, message: String },
    #[error("the shim for {} exited without saying whether the container started; see `berth logs`", dir.display())]
    Silent { dir: PathBuf },
    /// Another shim owns the container (it holds [`SHIM_LOCK`]).
    #[error("another berth shim is supervising the container in {}", dir.display())]
    Busy { dir: PathBuf },
}

/// Takes the container's shim lock if no live shim holds it.
fn claim(dir: &Path) -> std::io::Result<Option<sys::lock::FileLock>> {
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(SHIM_LOCK))?;
    sys::lock::try_lock(file, sys::lock::LockMode::Exclusive)
}

/// Whether a live shim holds the container's lock. A container directory
/// that cannot be opened has none.
pub fn is_supervised(dir: &Path) -> bool {
    matches!(claim(dir), Ok(None))
}

/// Starts a shim for the container in `dir` and waits until it reports that
/// the container runs (or why it does not).
pub fn spawn(dir: &Path) -> Result<(), ShimError> {
    let err = |source| ShimError::Spawn { dir: dir.to_path_buf(), source };
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(|e| err(e.into()))?;
    sys::exec::set_cloexec(ready_w.as_fd(), false).map_err(err)?;
    let exe = std::env::current_exe().map_err(err)?;
    let status = Command::new(exe)
        .arg("__shim")
        .arg(dir)
        .arg(ready_w.as_raw_fd().to_string())
        .stdin(StdStdio::null())
        .stdout(StdStdio::null())
        .stderr(StdStdio::null())
        .status()
        .map_err(err)?;
    drop(ready_w);
    if !status.success() {
        let message = format!("the shim for {} failed to start ({status})", dir.display());
        return Err(ShimError::Failed { code: None, message });
    }
    let mut answer = String::new();
    std::fs::File::from(ready_r).read_to_string(&mut answer).map_err(err)?;
    match answer.trim_end().split_once(' ') {
        None if answer.trim_end() == "ok" => Ok(()),
        None if answer.trim_end() == "busy" => Err(ShimError::Busy { dir: dir.to_path_buf() }),
        Some(("fail", rest)) => {
            let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
            Err(ShimError::Failed { code: code.parse().ok().filter(|c| *c > 0), message: message.to_owned() })
        }
        _ if answer.is_empty() => Err(ShimError::Silent { dir: dir.to_path_buf() }),
        _ => Err(ShimError::Failed { code: None, message: answer.trim_end().to_owned() }),
    }
}

impl ShimError {
    /// 127 or 126 when the command itself could not be executed.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            ShimError::Failed { code, .. } => *code,
            _ => None,
        }
    }
}

/// The shim's entry point (`berth __shim DIR FD`). Never returns.
pub fn main(args: &[String]) -> ! {
    let (Some(dir), Some(fd)) = (args.first(), args.get(1).and_then(|f| f.parse::<i32>().ok())) else {
        eprintln!("berth: __shim is internal: berth __shim DIR FD");
        std::process::exit(2);
    };
    if sys::daemon::detach().is_err() {
        std::process::exit(1);
    }
    let ready = sys::exec::take_raw(fd);
    let code = match supervise(Path::new(dir), ready) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    std::process::exit(code)
}

fn load(dir: &Path) -> Result<Container, ContainerError> {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    container::find(parent, &id)
}

/// Reports to the CLI once, then never again.
struct Ready(Option<OwnedFd>);

impl Ready {
    fn say(&mut self, text: &str) {
        if let Some(fd) = self.0.take() {
            let _ = std::fs::File::from(fd).write_all(format!("{text}\n").as_bytes());
        }
    }

    fn fail(&mut self, code: Option<i32>, why: &str) {
        self.say(&format!("fail {} {}", code.unwrap_or(0), why.replace('\n', " ")));
    }
}

fn supervise(dir: &Path, ready: OwnedFd) -> Result<(), String> {
    let mut ready = Ready(Some(ready));
    let fail = |ready: &mut Ready, why: String| {
        ready.fail(None, &why);
        why
    };
    let _owner = match claim(dir) {
        Ok(Some(held)) => held,
        Ok(None) => {
            ready.say("busy");
            return Err("another shim owns the container".to_owned());
        }
        Err(e) => return Err(fail(&mut ready, format!("cannot lock {}: {e}", dir.join(SHIM_LOCK).display()))),
    };
    let container = load(dir).map_err(|e| fail(&mut ready, e.to_string()))?;
    let me = sys::proc::pid().as_raw();
    let mut st = State::created(container.record.id.as_str(), me, state::process_start_time(me).unwrap_or(0));
    let record = |st: &State| state::write_state(dir, st).map_err(|e| e.to_string());
    record(&st).map_err(|e| fail(&mut ready, e))?;
    let setup = (|| -> Result<_, String> {
        let prepared = Prepared::new(&container).map_err(|e| e.to_string())?;
        let init = InitExe::current().map_err(|e| e.to_string())?;
        let log = Arc::new(LogWriter::open(&container.paths.log()).map_err(|e| e.to_string())?);
        let policy: Policy = container.record.restart.parse().map_err(|e: restart::PolicyError| e.to_string())?;
        Ok((prepared, init, log, policy))
    })();
    let (prepared, init, log, policy) = match setup {
        Ok(s) => s,
        Err(why) => {
            st.status = Status::Exited;
            st.error = Some(why.clone());
            let _ = record(&st);
            return Err(fail(&mut ready, why));
        }
    };
    let attached = Attached { clients: Clients::default(), input: Arc::new(Mutex::new(Input::None)) };
    if let Err(e) = attach::serve(dir, attached.clients.clone(), attached.input.clone()) {
        let _ = log.write_lines(Stream::Stderr, format!("berth: attach is unavailable: {e}\n").as_bytes());
    }
    let mut history = History::default();
    loop {
        let started = Instant::now();
        let outcome = run_once(&prepared, &init, &log, &attached, &mut st, dir, &mut ready);
        let exit = match outcome {
            Ok(exit) => exit,
            Err((code, why)) => {
                st.failed(code.unwrap_or(125), why.clone());
                let _ = record(&st);
                let _ = log.write_lines(Stream::Stderr, format!("berth: {why}\n").as_bytes());
                ready.fail(code, &why);
                break;
            }
        };
        history.stop_requested = dir.join(STOP_REQUESTED).exists();
        history.ran_for = started.elapsed();
        st.stop_requested = history.stop_requested;
        match restart::decide(policy, ExitInfo { code: exit.code, oom_killed: exit.oom_killed }, history) {
            Decision::Restart { after } => {
                st.status = Status::Restarting;
                record(&st)?;
                if wait_unless_stopped(dir, after) {
                    st.status = Status::Exited;
                    st.stop_requested = true;
                    record(&st)?;
                    break;
                }
                history.previous_delay = after;
                history.restart_count += 1;
                st.restart_count = history.restart_count;
            }
            Decision::Stay => break,
        }
    }
    if container.record.auto_remove {
        let _ = super::control::remove_on_exit(&container);
    }
    Ok(())
}

/// One start-to-exit of the container; records running and exited states.
/// The attach server's side of a container: its clients and where their
/// input goes.
struct Attached {
    clients: Clients,
    input: Arc<Mutex<Input>>,
}

fn run_once(
    prepared: &Prepared,
    init: &InitExe,
    log: &Arc<LogWriter>,
    attached: &Attached,
    st: &mut State,
    dir: &Path,
    ready: &mut Ready,
) -> Result<super::supervise::Exit, (Option<i32>, String)> {
    let io = |e: std::io::Error| (None, format!("cannot make the container's stdio: {e}"));
    let record = &prepared.container.record;
    let tee = |r: OwnedFd| {
        let clients = attached.clients.clone();
        Tee { inner: std::fs::File::from(r), copy: move |bytes: &[u8]| clients.broadcast(bytes) }
    };
    let spawn = |r, stream| pump(tee(r), stream, log.clone()).map_err(|e| (None, e.to_string()));
    let (stdio, pumps, input) = if record.tty {
        let (master, slave) = crate::sys::pty::open_pair().map_err(io)?;
        let output = master.try_clone().map_err(io)?;
        let stdio = Stdio::terminal(slave).map_err(io)?;
        (stdio, vec![spawn(output, Stream::Stdout)?], Input::Terminal(Arc::new(master.into())))
    } else {
        let (out_r, out_w) = nix::unistd::pipe().map_err(|e| io(e.into()))?;
        let (err_r, err_w) = nix::unistd::pipe().map_err(|e| io(e.into()))?;
        let (stdin, input) = if record.interactive {
            let (r, w) = nix::unistd::pipe().map_err(|e| io(e.into()))?;
            (r, Input::Pipe(Arc::new(Mutex::new(w.into()))))
        } else {
            (std::fs::File::open("/dev/null").map_err(io)?.into(), Input::None)
        };
        let stdio = Stdio { stdin: Some(stdin), stdout: out_w, stderr: err_w };
        (stdio, vec![spawn(out_r, Stream::Stdout)?, spawn(err_r, Stream::Stderr)?], input)
    };
    *attached.input.lock().unwrap_or_else(|e| e.into_inner()) = input;
    let running = prepared.start(init, stdio).map_err(|e| (e.exit_code(), e.to_string()))?;
    st.running(running.pid.as_raw(), running.pid_start);
    state::write_state(dir, st).map_err(|e| (None, e.to_string()))?;
    ready.say("ok");
    // From here on the shim only waits and copies output (and runs the
    // health check, if any): give back the code pages that starting the
    // container touched.
    let _ = sys::mem::release_executable_pages();
    let checks = record.health.clone().map(|check| {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, flag) = (prepared.container.clone(), stop.clone());
        (stop, std::thread::spawn(move || super::health::run_checks(&c, &check, &flag)))
    });
    let exit = prepared.wait(running).map_err(|e| (None, e.to_string()));
    if let Some((stop, thread)) = checks {
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = thread.join();
    }
    // The pty master (or stdin pipe) goes, so the output ends for the pumps.
    *attached.input.lock().unwrap_or_else(|e| e.into_inner()) = Input::None;
    for p in pumps {
        let _ = p.join();
    }
    let exit = match exit {
        Ok(exit) => exit,
        Err(e) => {
            attached.clients.close_all();
            return Err(e);
        }
    };
    st.exited(exit.code, exit.oom_killed);
    // Recorded before the attached clients are let go: `berth attach` reads
    // the exit status as soon as its output ends.
    let recorded = state::write_state(dir, st).map_err(|e| (None, e.to_string()));
    attached.clients.close_all();
    recorded?;
    Ok(exit)
}

/// Sleeps `delay`, waking early when a stop is requested; true if it was.
fn wait_unless_stopped(dir: &Path, delay: Duration) -> bool {
    let until = Instant::now() + delay;
    while Instant::now() < until {
        if dir.join(STOP_REQUESTED).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    dir.join(STOP_REQUESTED).exists()
}
