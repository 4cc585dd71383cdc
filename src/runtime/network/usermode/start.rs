//! Starting a helper (`super`'s module page says which and why): the
//! command lines berth gives pasta and slirp4netns, and how it knows each
//! has set the namespace up before the envs start.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{ADDRESS, DNS, Files, GATEWAY, MTU, PREFIX, fail};
use crate::runtime::network::{NS_IFNAME, NetworkError};

/// How long a helper may take to set up the namespace.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// Starts pasta on `netns`; returns the pid of its daemon.
pub(super) fn start_pasta(program: &Path, netns: &Path, f: &Files) -> Result<i32, NetworkError> {
    let _ = std::fs::remove_file(&f.pid);
    let (address, gateway, dns) = (ADDRESS.to_string(), GATEWAY.to_string(), DNS.to_string());
    let mut cmd = Command::new(program);
    cmd.args(["--config-net", "--quiet", "-I", NS_IFNAME, "-a", &address, "-n", &PREFIX.to_string()])
        .args(["-g", &gateway, "--dns-forward", &dns, "--no-map-gw", "-m", &MTU.to_string()])
        .args(["-t", "none", "-u", "none", "-T", "none", "-U", "none"])
        .arg("-P")
        .arg(&f.pid)
        .arg("-l")
        .arg(&f.log)
        .arg("--netns")
        .arg(netns);
    // pasta sets the namespace up, forks a daemon and exits.
    let mut child = spawn(&mut cmd, netns, f, Stdio::null())?;
    let deadline = Instant::now() + READY_WITHIN;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = crate::sys::proc::kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                let _ = child.wait();
                return Err(fail(
                    netns,
                    format!("pasta did not finish setting it up within {READY_WITHIN:?}{}", log_tail(f)),
                ));
            }
            Err(e) => return Err(fail(netns, format!("wait for pasta: {e}"))),
        }
    };
    if !status.success() {
        return Err(fail(netns, format!("pasta failed ({status}){}", log_tail(f))));
    }
    let text = std::fs::read_to_string(&f.pid).unwrap_or_default();
    text.trim().parse().map_err(|_| fail(netns, format!("pasta wrote no pid to {}{}", f.pid.display(), log_tail(f))))
}

/// Starts slirp4netns on `netns`; returns its pid.
pub(super) fn start_slirp4netns(program: &Path, netns: &Path, f: &Files) -> Result<i32, NetworkError> {
    let mut cmd = Command::new(program);
    // It writes "1" to its ready fd (here its stdout, which it closes then)
    // once the tap device is configured.
    cmd.args(["--configure", &format!("--mtu={MTU}"), "--disable-host-loopback", "--enable-sandbox"])
        .args(["--netns-type=path", "--ready-fd=1"])
        .arg(netns)
        .arg(NS_IFNAME);
    let mut child = spawn(&mut cmd, netns, f, Stdio::piped())?;
    let pid = child.id() as i32;
    let mut out = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut said = Vec::new();
        let _ = out.read_to_end(&mut said);
        let _ = tx.send(said);
    });
    let ready = rx.recv_timeout(READY_WITHIN).ok().is_some_and(|said| said.ends_with(b"1"));
    if ready && matches!(child.try_wait(), Ok(None)) {
        return Ok(pid);
    }
    let _ = crate::sys::proc::kill(Pid::from_raw(pid), Signal::SIGKILL);
    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
    Err(fail(netns, format!("slirp4netns did not set it up within {READY_WITHIN:?} ({status}){}", log_tail(f))))
}

/// Starts `cmd` in a process group of its own (a terminal's ^C to berth
/// does not reach it), its stderr into the log file.
fn spawn(cmd: &mut Command, netns: &Path, f: &Files, stdout: Stdio) -> Result<std::process::Child, NetworkError> {
    let log = std::fs::File::create(&f.log).map_err(|e| fail(netns, format!("make {}: {e}", f.log.display())))?;
    cmd.stdin(Stdio::null()).stdout(stdout).stderr(log).process_group(0);
    cmd.spawn().map_err(|e| fail(netns, format!("run {:?}: {e}", cmd.get_program())))
}

/// The last lines of the helper's log, to quote in an error.
fn log_tail(f: &Files) -> String {
    let text = std::fs::read_to_string(&f.log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("Failed to send")).collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("; ");
    if tail.is_empty() { String::new() } else { format!(": {tail}") }
}
