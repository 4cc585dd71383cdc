//! Running one build step — a `run` command or a package install — in a
//! throwaway build container: the parent node's layers as overlay lowers, a
//! fresh upper dir that becomes the step's layer, the host's network (so
//! package managers can fetch), and the output kept for the error message
//! when the command fails.
//!
//! A step runs under Docker's default seccomp profile, as a `RUN` step
//! does under BuildKit: a step cannot make namespaces, load kernel modules
//! or use the keyring any more than the container it builds for could.
//! (Bootstrapping a Debian base runs mmdebstrap on the host, unfiltered:
//! that is the host's tool making a root, not a step in one.)
//!
//! The build container sees copies of the host's `/etc/hosts` and
//! `/etc/resolv.conf` (a step that writes them changes its copy, never the
//! host's file, and the change is not kept, as in BuildKit); the mount
//! points of its mounts are returned so that the layer leaves them out.
//! A Dockerfile RUN's `--mount`s ([`StepMount`]: binds, overlays of
//! another stage's layers, tmpfs) are added after the standard mounts.

use std::collections::HashSet;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::runtime::process::{self, InitExe, Launch, ProcessError, Stdio};
use crate::runtime::rootfs::Rootfs;
use crate::runtime::seccomp;
use crate::runtime::spec::{self, EtcFiles, NetworkMode, SpecError, SpecRequest};

/// How many lines of a failed step's output its error shows.
pub const TAIL_LINES: usize = 20;

/// Why a step could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("step `{command}` exited with {code}; its last lines:\n{tail}")]
    Failed { command: String, code: i32, tail: String },
    #[error("step `{command}`: {source}")]
    Start { command: String, source: ProcessError },
    #[error("step `{command}`: {source}")]
    User { command: String, source: SpecError },
    #[error("step `{command}`: cannot {what}: {source}")]
    Io { command: String, what: &'static str, source: std::io::Error },
}

/// A command to run in a build container.
pub struct StepCommand<'a> {
    /// The argv, e.g. `["/bin/sh", "-c", "make"]`.
    pub argv: Vec<String>,
    /// How to show it in messages.
    pub shown: &'a str,
    pub env: Vec<String>,
    pub workdir: Option<&'a str>,
    pub user: Option<&'a str>,
    /// No network but loopback (a Dockerfile's `RUN --network=none`);
    /// otherwise the host's.
    pub offline: bool,
    /// A Dockerfile RUN's `--mount`s, made ready by the caller.
    pub mounts: Vec<StepMount>,
}

/// A mount of a build step (a Dockerfile `RUN --mount`). Nothing under a
/// mount's target reaches the step's layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepMount {
    /// A host directory or file bound at `target` (a cache directory, a
    /// copy of context files, a file of another stage).
    Bind { source: PathBuf, target: String, readonly: bool },
    /// An overlay of `lowers` (host directories, top first) at `target`:
    /// a directory of another stage. Writes go to a scratch upper directory
    /// and are thrown away with the step.
    Overlay { lowers: Vec<PathBuf>, target: String, readonly: bool },
    /// An empty tmpfs at `target`, `size` bytes at most when given.
    Tmpfs { target: String, size: Option<u64> },
}

/// What a step that succeeded left.
#[derive(Debug)]
pub struct Ran {
    /// Its standard output and error, interleaved.
    pub output: Vec<u8>,
    /// The build container's mount points, relative to its root: what the
    /// runtime made in the upper dir there is no change of the step's (see
    /// [`crate::build::layer::mount_points`]).
    pub mount_points: HashSet<PathBuf>,
}

/// Runs `cmd` on `lowers` (top first) with `work` as its scratch space
/// (`work/upper`, `work/work`, `work/rootfs`, `work/etc`). On success the
/// step's changes are in `work/upper`.
pub fn run(lowers: &[PathBuf], work: &Path, cmd: &StepCommand<'_>, init: &InitExe) -> Result<Ran, StepError> {
    let shown = cmd.shown.to_owned();
    let io = |what: &'static str| {
        let command = shown.clone();
        move |source| StepError::Io { command, what, source }
    };
    let rootfs = Rootfs {
        lowers: lowers.to_vec(),
        upper: work.join("upper"),
        work: work.join("work"),
        target: work.join("rootfs"),
    };
    let etc = work.join("etc");
    for d in [&rootfs.upper, &rootfs.work, &rootfs.target, &etc] {
        std::fs::create_dir_all(d).map_err(io("make the build container's directories"))?;
    }
    let host_copy = |name: &str| -> Result<Option<PathBuf>, StepError> {
        let host = Path::new("/etc").join(name);
        if !host.exists() {
            return Ok(None);
        }
        let copy = etc.join(name);
        std::fs::copy(&host, &copy).map_err(io("copy the host's /etc/hosts or /etc/resolv.conf"))?;
        Ok(Some(copy))
    };
    let user =
        spec::process_user(lowers, cmd.user).map_err(|source| StepError::User { command: shown.clone(), source })?;
    let request = SpecRequest {
        args: cmd.argv.clone(),
        env: cmd.env.clone(),
        cwd: cmd.workdir.map(PathBuf::from),
        user,
        hostname: Some("berth-build".to_owned()),
        network: if cmd.offline { NetworkMode::None } else { NetworkMode::Host },
        etc: EtcFiles { hosts: host_copy("hosts")?, hostname: None, resolv_conf: host_copy("resolv.conf")? },
        ..SpecRequest::default()
    };
    let mut oci = spec::default_spec(&request);
    let extra = step_mounts(&cmd.mounts, &work.join("mounts")).map_err(io("make the step's mount directories"))?;
    if !extra.is_empty() {
        let mut all = oci.mounts().clone().unwrap_or_default();
        all.extend(extra);
        oci.set_mounts(Some(all));
    }
    let mut root = oci.root().clone().unwrap_or_default();
    root.set_path(rootfs.target.clone());
    oci.set_root(Some(root));
    seccomp::set_in_spec(&mut oci, Some(&seccomp::default_profile()));

    let (out_r, out_w) = std::io::pipe().map_err(io("make the output pipe"))?;
    let out_w: OwnedFd = out_w.into();
    let err_w = out_w.try_clone().map_err(io("make the output pipe"))?;
    let stdio = Stdio { stdin: None, stdout: out_w, stderr: err_w };
    let no_cgroup = |_| Ok(());
    let pid = process::launch(Launch { spec: &oci, rootfs: &rootfs, stdio, init, before_start: &no_cgroup })
        .map_err(|source| StepError::Start { command: shown.clone(), source })?;
    let mut output = Vec::new();
    let mut reader = out_r;
    let _ = reader.read_to_end(&mut output);
    let code = crate::sys::proc::wait_exit(pid).map_err(io("wait for the step"))?.code();
    if code != 0 {
        return Err(StepError::Failed { command: shown, code, tail: tail(&output, TAIL_LINES) });
    }
    Ok(Ran { output, mount_points: crate::build::layer::mount_points(&oci) })
}

/// The spec mounts of a step's `mounts`, parents before what is under
/// them (in the order given at one depth); overlays get their upper and
/// work directories under `scratch`.
fn step_mounts(mounts: &[StepMount], scratch: &Path) -> std::io::Result<Vec<oci_spec::runtime::Mount>> {
    let mut out = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let mut spec = oci_spec::runtime::Mount::default();
        let (target, mut options) = match m {
            StepMount::Bind { source, target, readonly } => {
                spec.set_typ(Some("bind".to_owned()));
                spec.set_source(Some(source.clone()));
                let mut o = vec!["rbind".to_owned(), "rprivate".to_owned()];
                if *readonly {
                    o.push("ro".to_owned());
                }
                (target, o)
            }
            StepMount::Overlay { lowers, target, readonly } => {
                let (upper, workdir) = (scratch.join(format!("{i}/upper")), scratch.join(format!("{i}/work")));
                std::fs::create_dir_all(&upper)?;
                std::fs::create_dir_all(&workdir)?;
                let lower: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
                spec.set_typ(Some("overlay".to_owned()));
                spec.set_source(Some(PathBuf::from("overlay")));
                let mut o = vec![
                    format!("lowerdir={}", lower.join(":")),
                    format!("upperdir={}", upper.display()),
                    format!("workdir={}", workdir.display()),
                    "index=off".to_owned(),
                ];
                // As the root overlay is mounted (`runtime::rootfs`).
                if crate::sys::userns::in_user_namespace() {
                    o.push("userxattr".to_owned());
                }
                if *readonly {
                    o.push("ro".to_owned());
                }
                (target, o)
            }
            StepMount::Tmpfs { target, size } => {
                spec.set_typ(Some("tmpfs".to_owned()));
                spec.set_source(Some(PathBuf::from("tmpfs")));
                (
                    target,
                    [Some("nosuid".to_owned()), Some("nodev".to_owned()), size.map(|s| format!("size={s}"))]
                        .into_iter()
                        .flatten()
                        .collect(),
                )
            }
        };
        options.retain(|o| !o.is_empty());
        spec.set_destination(PathBuf::from(target));
        spec.set_options(Some(options));
        out.push(spec);
    }
    out.sort_by_key(|m| m.destination().components().count());
    Ok(out)
}

/// The last `n` lines of `output`, indented.
pub fn tail(output: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(super::tail(b"a\nb\nc\n", 2), "  | b\n  | c");
        assert_eq!(super::tail(b"", 2), "");
    }
}

#[cfg(test)]
mod kernel_tests {
    use super::*;
    use crate::runtime::tests::fixture;

    fn command<'a>(script: &str, shown: &'a str) -> StepCommand<'a> {
        StepCommand {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            shown,
            env: vec![],
            workdir: None,
            user: None,
            offline: false,
            mounts: Vec::new(),
        }
    }

    #[test]
    fn a_step_writes_its_changes_to_the_upper_dir() {
        if fixture::skip() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("image");
        fixture::write_busybox_image(&image);
        let work = dir.path().join("step");
        let out = run(
            std::slice::from_ref(&image),
            &work,
            &command("echo built > /built; rm /bin/vi; echo done", "make"),
            fixture::init(),
        )
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.output), "done\n");
        assert!(out.mount_points.contains(Path::new("proc")), "{:?}", out.mount_points);
        assert_eq!(std::fs::read_to_string(work.join("upper/built")).unwrap(), "built\n");
        let vi = std::fs::symlink_metadata(work.join("upper/bin/vi")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(&vi.file_type()), "a whiteout for the deletion");
        assert!(image.join("bin/vi").exists() || image.join("bin/busybox").exists(), "the lower is untouched");
    }

    #[test]
    fn a_failing_step_shows_its_command_code_and_last_lines() {
        if fixture::skip() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("image");
        fixture::write_busybox_image(&image);
        let err = run(
            &[image],
            &dir.path().join("step"),
            &command("echo one; echo two >&2; exit 3", "false-ish"),
            fixture::init(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("step `false-ish` exited with 3"), "{err}");
        assert!(err.contains("  | one") && err.contains("  | two"), "{err}");
    }
}
