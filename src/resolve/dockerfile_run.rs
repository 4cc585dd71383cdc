//! What a Dockerfile RUN runs and what its `--mount`s add to its key.
//!
//! | mount | key line | why |
//! |---|---|---|
//! | `type=cache` | `cache`, target, id, sharing, mode, uid, gid, ro | what the step sees at the target; the cache's *content* is never in a key, as in BuildKit: a cache is a speed-up, not an input |
//! | `type=tmpfs` | `tmpfs`, target, size | writes there never reach the layer |
//! | `type=bind` from the context | `bind`, target, source, rw, and the source's tree hash under `.dockerignore` (as COPY keys it) | a changed bound file must rebuild the step |
//! | `type=bind,from=STAGE` | `bind`, target, source, rw, and the stage's last key | the stage's key covers its content |
//! | `type=bind,from=IMAGE` | `bind`, target, source, rw, and the image's reference and manifest digest | the digest covers its content |
//!
//! A shell-form `RUN <<EOF` whose body starts with `#!` runs the body as
//! a file, as BuildKit does: the body is written to `/dev/pipes/EOF`
//! (mode 0755, read-only) and the shell runs that path.

use std::path::Path;

use super::{DockerGraph, StageNodes, clean_src, unsupported};
use crate::dockerfile::error::{Located, Pos};
use crate::dockerfile::expand::Expanded;
use crate::dockerfile::ignore::Ignore;
use crate::dockerfile::instruction::{CommandLine, Form};
use crate::dockerfile::mount::{Mount, MountKind, Sharing};
use crate::resolve::tree::{self, Rules};

/// Where a `RUN <<EOF` body with a `#!` line is mounted, as BuildKit does.
pub const PIPES_DIR: &str = "/dev/pipes";

/// The index in `expanded.stages` of the stage a mount's `from=` names (a
/// stage name, any case, or a file index), if it is one.
pub fn mount_stage(expanded: &Expanded, name: &str) -> Option<usize> {
    expanded.stages.iter().position(|s| {
        s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)) || name.parse::<usize>() == Ok(s.index)
    })
}

/// The key lines of a RUN's mounts (see the module page), in the order written.
pub(super) fn mount_keys(
    expanded: &Expanded,
    out: &DockerGraph,
    mounts: &[Mount],
    context: &Path,
    ignore: &Ignore,
    mount_image: &dyn Fn(&str) -> Option<String>,
    pos: Pos,
) -> Result<Vec<String>, Located> {
    let done: &[StageNodes] = &out.stages;
    let mut lines = Vec::new();
    for m in mounts {
        let line = match m.kind {
            MountKind::Cache => {
                if m.from.is_some() || m.source.is_some() {
                    return Err(unsupported(
                        pos,
                        "a cache mount with from= or source= (a cache seeded from another stage)",
                        "drop from= and source=; the cache starts empty",
                    ));
                }
                let sharing = match m.sharing {
                    Sharing::Shared => "shared",
                    Sharing::Private => "private",
                    Sharing::Locked => "locked",
                };
                format!(
                    "cache target={} id={} sharing={sharing} mode={:o} uid={} gid={} ro={}",
                    m.target,
                    m.id.as_deref().unwrap_or(&m.target),
                    m.mode.unwrap_or(0o755),
                    m.uid.unwrap_or(0),
                    m.gid.unwrap_or(0),
                    m.readonly
                )
            }
            MountKind::Tmpfs => format!("tmpfs target={} size={}", m.target, m.size.unwrap_or(0)),
            MountKind::Bind => {
                let source = m.source.clone().unwrap_or_default();
                let head = format!("bind target={} source={source} rw={}", m.target, !m.readonly);
                match &m.from {
                    Some(name) => match mount_stage(expanded, name) {
                        Some(i) if i < done.len() => {
                            format!("{head} stage={}", out.graph.node(done[i].tip).key)
                        }
                        Some(_) => {
                            return Err(Located::new(pos, format!("--mount from={name}: the stage is not built yet")));
                        }
                        None => match mount_image(name) {
                            Some(image) => format!("{head} image={image}"),
                            None => {
                                return Err(Located::new(
                                    pos,
                                    format!(
                                        "--mount from={name}: no stage of this Dockerfile and no image of that name"
                                    ),
                                ));
                            }
                        },
                    },
                    None => {
                        let src = clean_src(&source);
                        let input = tree::hash_tree_with(context, Path::new(&src), Rules::Docker(ignore))
                            .map_err(|e| Located::new(pos, format!("--mount source={source}: {e}")))?;
                        let hex: String = input.hash.iter().map(|b| format!("{b:02x}")).collect();
                        format!("{head} context={hex}")
                    }
                }
            }
        };
        lines.push(line);
    }
    Ok(lines)
}

/// The heredoc a shell-form `RUN <<EOF` runs as its whole script, if the
/// RUN is only that.
pub fn script_heredoc(command: &CommandLine) -> Option<&crate::dockerfile::Heredoc> {
    let Form::Shell(text) = &command.form else { return None };
    let only = command.heredocs.len() == 1
        && text.trim().trim_start_matches("<<").trim_start_matches('-').trim_matches(['\'', '"'])
            == command.heredocs[0].name;
    only.then(|| &command.heredocs[0])
}

/// The argv a RUN runs and the command text its key and listings show.
pub fn run_argv(command: &CommandLine, shell: &[String], _pos: Pos) -> Result<(String, Vec<String>), Located> {
    let with_shell = |script: String| shell.iter().cloned().chain([script]).collect::<Vec<_>>();
    match &command.form {
        // `["/bin/sh", "-c", CMD]` is the step a shell-form `RUN CMD` is.
        Form::Exec(argv) if argv.len() == 3 && argv[..2] == ["/bin/sh", "-c"] => Ok((argv[2].clone(), argv.clone())),
        Form::Exec(argv) => Ok((argv.join(" "), argv.clone())),
        Form::Shell(text) if command.heredocs.is_empty() => Ok((text.clone(), with_shell(text.clone()))),
        Form::Shell(text) => {
            // `RUN <<EOF` alone runs the body as the script (or, with a `#!`
            // line, as a file); otherwise the shell reads the heredocs
            // itself, as BuildKit passes them.
            if let Some(doc) = script_heredoc(command) {
                let body = doc.text();
                if body.starts_with("#!") {
                    return Ok((body, with_shell(format!("{PIPES_DIR}/{}", doc.name))));
                }
                return Ok((body.clone(), with_shell(body)));
            }
            let mut s = text.clone();
            for h in &command.heredocs {
                s.push('\n');
                s.push_str(&h.content);
                s.push_str(&h.name);
            }
            Ok((s.clone(), with_shell(s)))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::dockerfile::{Options, expand, parse_str};
    use crate::resolve::dockerfile::{ImageBase, resolve_dockerfile};

    /// The key of the last node of `text`'s target, built in `dir`.
    fn last_key(dir: &Path, text: &str) -> String {
        let file = parse_str(text, Path::new("Dockerfile")).unwrap();
        let expanded = expand(&file, &Options::default()).unwrap();
        let ignore = crate::dockerfile::ignore::Ignore::parse("").unwrap();
        let g =
            resolve_dockerfile(&expanded, dir, &ignore, Path::new("Dockerfile"), &|_| ImageBase::default()).unwrap();
        g.graph.node(g.stages.last().unwrap().tip).key.to_string()
    }

    #[test]
    fn a_bind_mounts_content_is_in_the_key_a_caches_is_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/a"), "1").unwrap();
        let bind = "FROM scratch\nRUN --mount=type=bind,source=src,target=/src make\n";
        let cache = "FROM scratch\nRUN --mount=type=cache,target=/root/.cache make\n";
        let plain = last_key(dir.path(), "FROM scratch\nRUN make\n");
        let (b1, c1) = (last_key(dir.path(), bind), last_key(dir.path(), cache));
        assert!(plain != b1 && plain != c1 && b1 != c1, "a mount changes what the step sees");
        std::fs::write(dir.path().join("src/a"), "2").unwrap();
        assert_ne!(last_key(dir.path(), bind), b1, "a changed bound file rebuilds the step");
        assert_eq!(last_key(dir.path(), cache), c1);
        let other_id = "FROM scratch\nRUN --mount=type=cache,target=/root/.cache,id=x make\n";
        assert_ne!(last_key(dir.path(), other_id), c1, "another cache is another step");
        let host = last_key(dir.path(), "FROM scratch\nRUN --network=host make\n");
        assert_eq!(host, plain, "builds use the host's network anyway");
    }

    #[test]
    fn a_shebang_heredoc_runs_from_dev_pipes() {
        let heredoc = crate::dockerfile::Heredoc {
            name: "EOF".into(),
            fd: 0,
            content: "#!/usr/bin/env python3\nprint(1)\n".into(),
            expand: true,
            chomp: false,
        };
        let cl = crate::dockerfile::instruction::CommandLine {
            form: super::Form::Shell("<<EOF".into()),
            heredocs: vec![heredoc],
        };
        let sh = ["/bin/sh".to_owned(), "-c".to_owned()];
        let (command, argv) = super::run_argv(&cl, &sh, crate::dockerfile::Pos::default()).unwrap();
        assert_eq!(command, "#!/usr/bin/env python3\nprint(1)\n");
        assert_eq!(argv, ["/bin/sh", "-c", "/dev/pipes/EOF"]);
    }
}
