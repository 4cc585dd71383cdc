//! Host programs berth runs (mmdebstrap to bootstrap a Debian base, `nft`
//! for project networks): found on the PATH (or in the sbin directories a
//! user's PATH may lack) and, for root on Debian, installed with apt when
//! missing, so that the README's first command works on a fresh machine.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// How many of apt's last lines an error quotes.
const TAIL_LINES: usize = 30;

/// `program` on PATH or in the sbin directories (debootstrap and nft live
/// in /usr/sbin, which a user's PATH may lack).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// `program`, installing `package` with apt first when it is missing and
/// berth runs as root. Returns why it could not be had.
pub fn find_or_install(program: &str, package: &str) -> Result<PathBuf, String> {
    if let Some(found) = find_program(program) {
        return Ok(found);
    }
    if crate::sys::euid() != 0 {
        return Err(format!("{program} is not installed and only root can install it (apt-get install {package})"));
    }
    apt_install(package)?;
    find_program(program).ok_or_else(|| format!("{package} was installed but {program} is not on PATH"))
}

/// `apt-get install` `package`, updating the package lists and retrying
/// once if the first attempt fails. Returns why it failed.
pub fn apt_install(package: &str) -> Result<(), String> {
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=300", "-q"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
    };
    let install = ["install", "-y", "--no-install-recommends", package];
    let first = apt(&install).map_err(|e| format!("cannot run apt-get: {e}"))?;
    if first.status.success() {
        return Ok(());
    }
    let update = apt(&["update"]).map_err(|e| format!("cannot run apt-get: {e}"))?;
    let second = apt(&install).map_err(|e| format!("cannot run apt-get: {e}"))?;
    if second.status.success() {
        return Ok(());
    }
    let failed = if update.status.success() { &second } else { &update };
    Err(format!("apt-get install {package} failed: {}", tail(failed, TAIL_LINES).replace('\n', "; ")))
}

/// The last `n` non-blank lines of what `output` printed, stderr before
/// stdout.
pub fn tail(output: &Output, n: usize) -> String {
    let text = [&output.stdout, &output.stderr].map(|b| String::from_utf8_lossy(b).into_owned()).join("\n");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
