//! COPY and ADD as graph nodes: which sources they read, the key that
//! covers them, and what is refused.
//!
//! A step is a `copy` node (keyed as a berth.toml copy, so the two share
//! the cache) when it copies one plain context path with at most an octal
//! `--chmod` and no `--chown` (the parents a Dockerfile COPY creates belong
//! to the `--chown` user, as in BuildKit and buildah; berth.toml's copy
//! makes them root's); everything else is a `files` node whose key holds the
//! instruction, every source pattern with each context path it matches and
//! that path's tree hash (or an inline body, or a URL and its content
//! digest), the `--from` stage's last key or image digest, the
//! destination, `--chmod`, `--chown` and the flags. Wildcards are expanded
//! in the context here ([`super::glob`]); in a stage or image they are
//! expanded when the layer is written, under the `--from` key.
//!
//! `--link`: the layer is written as if the image had nothing below it
//! (BuildKit copies into an empty directory and lays the result on top),
//! so its key leaves the parent's key out unless `--chown` names a user
//! (looked up in the image) — the same layer serves any parent. As in
//! BuildKit, `--link` with `--chmod` is an ordinary copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use petgraph::graph::NodeIndex;

use super::DockerGraph;
use super::chmod::Chmod;
use super::glob::{self, Lister};
use crate::dockerfile::error::{Located, Pos};
use crate::dockerfile::expand::{Expanded, join_path};
use crate::dockerfile::ignore::Ignore;
use crate::dockerfile::instruction::{Instruction, Sources};
use crate::resolve::graph::Step;
use crate::resolve::key::KeyHasher;
use crate::resolve::tree::{self, Rules};
use crate::store::LayerRecord;

/// What the builder prepared before resolving: images `COPY --from`
/// names and URLs ADD fetches.
#[derive(Debug, Clone, Default)]
pub struct CopyInputs {
    /// By the `--from` text as written.
    pub images: BTreeMap<String, CopyImage>,
    /// By URL: ADD sources fetched ahead (those without `--checksum`).
    pub urls: BTreeMap<String, Fetched>,
}

/// An image a `COPY --from` reads.
#[derive(Debug, Clone)]
pub struct CopyImage {
    /// As a FROM of it would key its base: `registry`, reference, digest.
    pub key_fields: Vec<Vec<u8>>,
    /// Bottom first.
    pub layers: Vec<LayerRecord>,
}

/// A URL's content, fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub path: PathBuf,
    /// `sha256:HEX` of the content.
    pub digest: String,
    /// `Last-Modified`, seconds since the epoch.
    pub mtime: Option<u64>,
}

/// COPY and ADD seen the same way.
#[derive(Debug, Clone, Copy)]
pub struct CopySpec<'a> {
    pub instruction: &'static str,
    pub sources: &'a Sources,
    pub from: Option<&'a str>,
    pub chown: Option<&'a str>,
    pub chmod: Option<&'a str>,
    pub link: bool,
    pub parents: bool,
    pub exclude: &'a [String],
    pub checksum: Option<&'a str>,
    pub keep_git_dir: bool,
}

impl CopySpec<'_> {
    /// The spec of a COPY or ADD instruction.
    pub fn of(i: &Instruction) -> Option<CopySpec<'_>> {
        match i {
            Instruction::Copy(c) => Some(CopySpec {
                instruction: "COPY",
                sources: &c.sources,
                from: c.from.as_deref(),
                chown: c.chown.as_deref(),
                chmod: c.chmod.as_deref(),
                link: c.link,
                parents: c.parents,
                exclude: &c.exclude,
                checksum: None,
                keep_git_dir: false,
            }),
            Instruction::Add(a) => Some(CopySpec {
                instruction: "ADD",
                sources: &a.sources,
                from: None,
                chown: a.chown.as_deref(),
                chmod: a.chmod.as_deref(),
                link: a.link,
                parents: false,
                exclude: &a.exclude,
                checksum: a.checksum.as_deref(),
                keep_git_dir: a.keep_git_dir,
            }),
            _ => None,
        }
    }

    pub fn add(&self) -> bool {
        self.instruction == "ADD"
    }

    /// Whether `--link` takes effect: BuildKit ignores it with `--chmod`
    /// (the copy is then an ordinary one, over its parent).
    pub fn linked(&self) -> bool {
        self.link && self.chmod.is_none()
    }

    /// `--exclude` compiled as `.dockerignore` patterns.
    pub fn exclude(&self) -> Result<Option<Ignore>, String> {
        if self.exclude.is_empty() {
            return Ok(None);
        }
        Ignore::from_patterns(self.exclude.iter().map(String::as_str)).map(Some).map_err(|e| format!("--exclude: {e}"))
    }
}

/// Where a `--from` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromRef {
    /// The index into `expanded.stages`.
    Stage(usize),
    Image,
}

/// What `--from=NAME` names: a stage (by name, any case, or index) or an image.
pub fn from_ref(expanded: &Expanded, name: &str) -> Result<FromRef, String> {
    if let Some(i) =
        expanded.stages.iter().position(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    {
        return Ok(FromRef::Stage(i));
    }
    if let Ok(index) = name.parse::<usize>() {
        return expanded.stages.iter().position(|s| s.index == index).map(FromRef::Stage).ok_or_else(|| {
            format!("COPY --from={name}: invalid stage index {index}; the Dockerfile's stages count from 0")
        });
    }
    Ok(FromRef::Image)
}

/// Whether `p` is an http(s) URL ADD fetches.
pub fn is_url(p: &str) -> bool {
    (p.starts_with("http://") || p.starts_with("https://")) && !is_git(p)
}

/// Whether `p` is a git repository (BuildKit clones those).
pub fn is_git(p: &str) -> bool {
    let path = p.split(['#', '?']).next().unwrap_or(p);
    p.starts_with("git@") || p.starts_with("git://") || (p.contains("://") && path.ends_with(".git"))
}

/// The file name a URL gives when the destination is a directory.
pub fn url_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split(['?', '#']).next().unwrap_or(rest);
    let path = path.split_once('/').map_or("", |(_, p)| p);
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(base) if !base.is_empty() && !path.ends_with('/') => base.to_owned(),
        _ => "__unnamed__".to_owned(),
    }
}

/// The build context as a [`Lister`]: what `.dockerignore` leaves in.
pub struct ContextTree<'a> {
    pub context: &'a Path,
    pub ignore: &'a Ignore,
}

impl Lister for ContextTree<'_> {
    fn list(&self, dir: &str) -> std::io::Result<Option<Vec<(String, bool)>>> {
        let at = self.context.join(dir);
        if !std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir()) {
            return Ok(None);
        }
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&at)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if dir.is_empty() { name.clone() } else { format!("{dir}/{name}") };
            let is_dir = entry.file_type()?.is_dir();
            if self.ignore.matches(&rel) && !(is_dir && self.ignore.has_exceptions()) {
                continue;
            }
            out.push((name, is_dir));
        }
        out.sort();
        Ok(Some(out))
    }
}

/// One context source after wildcards: the path, and the part of it below
/// the wildcard's fixed prefix (what `--exclude` matches the source by).
#[derive(Debug, Clone)]
pub struct Matched {
    pub path: String,
    pub below_base: String,
}

/// The context paths `pattern` names.
pub fn context_matches(context: &Path, ignore: &Ignore, pattern: &str) -> Result<Vec<Matched>, String> {
    let clean = super::clean_src(pattern);
    if !glob::has_wildcards(&clean) {
        return Ok(vec![Matched { path: clean, below_base: String::new() }]);
    }
    let (base, _) = glob::split(&clean);
    let base = base.join("/");
    let tree = ContextTree { context, ignore };
    let found = glob::expand(&tree, &clean)?;
    Ok(found
        .into_iter()
        .map(|path| {
            let below = path.strip_prefix(&base).unwrap_or(&path).trim_start_matches('/').to_owned();
            Matched { path, below_base: below }
        })
        .collect())
}

/// The context path `rel` with every symlink on it followed inside the
/// context, as BuildKit and buildah follow a source (links *below* a
/// copied directory stay links). An error for a loop.
pub fn follow(context: &Path, rel: &str) -> Result<String, String> {
    let mut todo: Vec<String> = rel.split('/').filter(|c| !c.is_empty()).rev().map(str::to_owned).collect();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(name) = todo.pop() {
        let at = context.join(done.join("/")).join(&name);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err(format!("{rel}: too many levels of symlinks"));
                }
                let target = std::fs::read_link(&at).map_err(|e| format!("{rel}: {e}"))?;
                let target = target.to_string_lossy();
                let base = if target.starts_with('/') { String::new() } else { done.join("/") };
                let rest: Vec<String> = todo.drain(..).rev().collect();
                let joined = super::clean_src(&format!("{base}/{target}/{}", rest.join("/")));
                todo = joined.split('/').filter(|c| !c.is_empty()).rev().map(str::to_owned).collect();
                done.clear();
            }
            _ => done.push(name),
        }
    }
    Ok(done.join("/"))
}

/// `--parents`: the path a source keeps under the destination — after a
/// `/./` pivot when it has one, else all of it.
pub fn parents_path(pattern: &str, matched: &str) -> String {
    let clean = |p: &str| super::clean_src(p);
    match pattern.split_once("/./") {
        Some((pivot, _)) => {
            let pivot = clean(pivot);
            let m = clean(matched);
            m.strip_prefix(&pivot).map(|r| r.trim_start_matches('/').to_owned()).unwrap_or(m)
        }
        None => clean(matched),
    }
}

/// A COPY or ADD destination made absolute against the working directory;
/// a trailing `/` (or `.`) is kept as "into this directory".
pub fn destination(dest: &str, workdir: &str) -> String {
    let dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let abs = join_path(workdir, dest);
    if dir && abs != "/" { format!("{abs}/") } else { abs }
}

fn unsupported(pos: Pos, what: &str, instead: &str) -> Located {
    Located::new(pos, format!("{what} is not supported by berth yet; {instead}"))
}

/// The node of one COPY or ADD.
#[allow(clippy::too_many_arguments)]
pub fn copy_node(
    out: &mut DockerGraph,
    expanded: &Expanded,
    at: NodeIndex,
    label: &str,
    spec: &CopySpec<'_>,
    workdir: &str,
    context: &Path,
    ignore: &Ignore,
    pos: Pos,
) -> Result<NodeIndex, Located> {
    let what = spec.instruction;
    let err = |m: String| Located::new(pos, m);
    if spec.keep_git_dir {
        return Err(unsupported(pos, "ADD --keep-git-dir", "clone the repository in a RUN step"));
    }
    if let Some(p) = spec.sources.paths.iter().find(|p| is_git(p)) {
        return Err(unsupported(
            pos,
            &format!("{what} of a git repository ({p})"),
            "clone it in a RUN step (RUN git clone …), or check it out into the context and COPY it",
        ));
    }
    let urls: Vec<&String> = spec.sources.paths.iter().filter(|p| is_url(p)).collect();
    if !spec.add()
        && let Some(u) = urls.first()
    {
        return Err(err(format!("COPY {u}: source can't be a URL for COPY; use ADD to fetch a URL")));
    }
    if spec.checksum.is_some() && spec.sources.paths.len() != 1 {
        return Err(err("ADD --checksum can't be given for several sources; one ADD per URL".to_owned()));
    }
    let chmod = spec.chmod.map(Chmod::parse).transpose().map_err(|m| err(format!("--chmod: {m}")))?;
    spec.exclude().map_err(err)?;
    let from = match spec.from {
        None => None,
        Some(name) => Some(match from_ref(expanded, name).map_err(err)? {
            FromRef::Stage(i) if i < out.stages.len() => {
                (name.to_owned(), *out.graph.node(out.stages[i].tip).key.as_bytes())
            }
            FromRef::Stage(_) => {
                return Err(err(format!(
                    "COPY --from={name}: the stage is not built before the stage that copies from it"
                )));
            }
            FromRef::Image => {
                let img = out.inputs.images.get(name).ok_or_else(|| {
                    err(format!("COPY --from={name}: the image was not made before resolving; this is a bug in berth"))
                })?;
                let mut h = KeyHasher::new("base");
                for f in &img.key_fields {
                    h.field(f);
                }
                (name.to_owned(), *h.finish().as_bytes())
            }
        }),
    };
    let dest = destination(&spec.sources.dest, workdir);
    let count = spec.sources.paths.len() + spec.sources.inline.len();
    if count > 1 && !dest.ends_with('/') {
        return Err(err(format!(
            "When using {what} with more than one source file, the destination must be a directory and end with a /, not {dest:?}"
        )));
    }
    let mode = match &chmod {
        Some(Chmod::Octal(m)) => Some(*m),
        _ => None,
    };
    let owner = spec.chown.map(str::to_owned);
    let parent_key = *out.graph.node(at).key.as_bytes();
    let archive = |p: &str| spec.add() && from.is_none() && is_archive(&context.join(p));
    let plain = from.is_none()
        && spec.sources.inline.is_empty()
        && spec.sources.paths.len() == 1
        && urls.is_empty()
        && !glob::has_wildcards(&spec.sources.paths[0])
        && spec.chown.is_none()
        && !spec.linked()
        && !spec.parents
        && spec.exclude.is_empty()
        && !matches!(chmod, Some(Chmod::Symbolic(_)));
    // One context path, not an archive, as a berth.toml copy would do it
    // (which copies a symlink as a link: a followed one is a files node).
    let followed = |p: &str| follow(context, &super::clean_src(p)).map_err(|m| err(format!("{what} {m}")));
    if plain
        && followed(&spec.sources.paths[0])? == super::clean_src(&spec.sources.paths[0])
        && !archive(&super::clean_src(&spec.sources.paths[0]))
    {
        let src = super::clean_src(&spec.sources.paths[0]);
        let input = tree::hash_tree_with(context, Path::new(&src), Rules::Docker(ignore))
            .map_err(|e| err(format!("{what} {}: {e}", spec.sources.paths[0])))?;
        let is_dir = context.join(&src).symlink_metadata().is_ok_and(|m| m.is_dir());
        if is_dir || dest.ends_with('/') {
            let mut h = KeyHasher::new("copy");
            h.field(&parent_key)
                .field(dest.as_bytes())
                .field(mode.map(|m| format!("{m:o}")).unwrap_or_default().as_bytes())
                .field(owner.clone().unwrap_or_default().as_bytes())
                .field(&input.hash);
            let shown = if src.is_empty() { ".".to_owned() } else { src };
            let step = Step::Copy { src: shown, dest, mode, owner, files: input.files, bytes: input.bytes };
            return Ok(out.graph.add(Some(at), h.finish(), step, label));
        }
    }
    // --link keeps the parent out of the key unless a user name is looked up in it.
    let by_name = spec.chown.is_some_and(|c| c.split(':').any(|part| part.parse::<u32>().is_err()));
    let mut h = KeyHasher::new(if spec.linked() { "files-link" } else { "files" });
    if !spec.linked() || by_name {
        h.field(&parent_key);
    }
    h.field(what.as_bytes());
    for p in &spec.sources.paths {
        h.field(p.as_bytes());
        if is_url(p) {
            match (spec.checksum, out.inputs.urls.get(p)) {
                (Some(sum), _) => h.field(b"checksum").field(sum.as_bytes()),
                (None, Some(f)) => {
                    h.field(b"fetched").field(f.digest.as_bytes()).field(&f.mtime.unwrap_or(u64::MAX).to_le_bytes())
                }
                (None, None) => {
                    return Err(err(format!(
                        "ADD {p}: the URL was not fetched before resolving; this is a bug in berth"
                    )));
                }
            };
            continue;
        }
        if from.is_some() {
            continue;
        }
        let matches = context_matches(context, ignore, p).map_err(|m| err(format!("{what} {p}: {m}")))?;
        for m in matches {
            let real = followed(&m.path)?;
            let input = tree::hash_tree_with(context, Path::new(&real), Rules::Docker(ignore))
                .map_err(|e| err(format!("{what} {}: {e}", m.path)))?;
            h.field(m.path.as_bytes()).field(real.as_bytes()).field(&input.hash);
            h.field(if archive(&real) { b"extract" } else { b"copy" });
            if spec.parents {
                for dir in Path::new(&m.path).ancestors().skip(1) {
                    let meta =
                        std::fs::metadata(context.join(dir)).map_err(|e| err(format!("{}: {e}", dir.display())))?;
                    h.field(&std::os::unix::fs::PermissionsExt::mode(&meta.permissions()).to_le_bytes());
                }
            }
        }
    }
    for f in &spec.sources.inline {
        h.field(b"inline").field(f.name.as_bytes()).field(f.data.as_bytes());
    }
    if let Some((_, key)) = &from {
        h.field(b"from").field(key);
    }
    h.field(dest.as_bytes())
        .field(spec.chmod.unwrap_or_default().as_bytes())
        .field(owner.clone().unwrap_or_default().as_bytes())
        .field(if spec.parents { b"parents" } else { b"" });
    for e in spec.exclude {
        h.field(b"exclude").field(e.as_bytes());
    }
    let mut shown: Vec<String> = spec.sources.paths.clone();
    shown.extend(spec.sources.inline.iter().map(|f| format!("<<{}", f.name)));
    let step = Step::Files {
        instruction: what.to_owned(),
        sources: shown,
        from: from.map(|(name, _)| name),
        dest,
        mode,
        owner,
    };
    let node = out.graph.add(Some(at), h.finish(), step, label);
    Ok(node)
}

/// Whether the context file `path` is an archive ADD unpacks: a regular
/// file (not a symlink) holding a tar, plain or compressed with gzip or zstd.
pub fn is_archive(path: &Path) -> bool {
    use std::io::Read;
    // A symlink is copied as a link, never followed out of the context.
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    let mut head = [0u8; 262];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let head = &head[..n];
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.get(257..262) == Some(b"ustar")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::{Options, expand, parse_str};
    use crate::resolve::dockerfile::{ImageBase, resolve_dockerfile};

    /// The key of the last node of `text`'s target, in the context `dir`.
    fn last_key(dir: &Path, text: &str) -> Result<String, String> {
        let file = parse_str(text, Path::new("Dockerfile")).unwrap();
        let expanded = expand(&file, &Options::default()).unwrap();
        let ignore = Ignore::parse("*.skip\n").unwrap();
        let g = resolve_dockerfile(&expanded, dir, &ignore, Path::new("Dockerfile"), &|_| ImageBase::default())
            .map_err(|e| e.to_string())?;
        Ok(g.graph.node(g.stages.last().unwrap().tip).key.to_string())
    }

    #[test]
    fn wildcard_keys_follow_the_matches_and_link_keys_skip_the_parent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("a.py"), "a").unwrap();
        std::fs::write(p.join("b.txt"), "b").unwrap();
        let k = |t: &str| last_key(p, t).unwrap();
        let glob = k("FROM scratch\nCOPY *.py /app/\n");
        std::fs::write(p.join("b.txt"), "changed").unwrap();
        assert_eq!(k("FROM scratch\nCOPY *.py /app/\n"), glob, "a file no pattern matches changes nothing");
        std::fs::write(p.join("x.skip.py"), "x").unwrap();
        std::fs::write(p.join("c.skip"), "x").unwrap();
        assert_ne!(k("FROM scratch\nCOPY *.py /app/\n"), glob, "a new match changes the key");
        std::fs::remove_file(p.join("x.skip.py")).unwrap();
        assert_eq!(k("FROM scratch\nCOPY *.py /app/\n"), glob);
        let all = k("FROM scratch\nCOPY * /app/\n");
        std::fs::remove_file(p.join("c.skip")).unwrap();
        assert_eq!(k("FROM scratch\nCOPY * /app/\n"), all, ".dockerignore hides what wildcards see");

        let linked = k("FROM scratch\nCOPY --link a.py /app/\n");
        assert_eq!(k("FROM scratch\nWORKDIR /w\nCOPY --link a.py /app/\n"), linked, "no parent in a --link key");
        assert_ne!(k("FROM scratch\nWORKDIR /w\nCOPY --link --chown=app a.py /app/\n"), linked);
        assert_ne!(
            k("FROM scratch\nWORKDIR /w\nCOPY --link --chmod=644 a.py /app/\n"),
            k("FROM scratch\nCOPY --link --chmod=644 a.py /app/\n"),
            "--link with --chmod is an ordinary copy, as in BuildKit"
        );
        assert_ne!(k("FROM scratch\nWORKDIR /w\nCOPY a.py /app/\n"), k("FROM scratch\nCOPY a.py /app/\n"));

        let err = last_key(p, "FROM scratch\nCOPY --chmod=u+z a.py /app/\n").unwrap_err();
        assert!(err.starts_with("Dockerfile:2:1: --chmod: invalid chmod parameter: 'u+z'"), "{err}");
        let err = last_key(p, "FROM scratch\nCOPY --from=3 /x /y\n").unwrap_err();
        assert!(err.contains("invalid stage index 3"), "{err}");
    }

    #[test]
    fn url_names_and_git_sources() {
        assert_eq!(url_name("http://127.0.0.1:8080/dir/file.tar.gz?x=1"), "file.tar.gz");
        assert_eq!(url_name("http://host/"), "__unnamed__");
        assert_eq!(url_name("http://host"), "__unnamed__");
        assert!(is_git("https://github.com/org/repo.git") && is_git("git@github.com:org/repo"));
        assert!(is_url("https://example.com/a.txt") && !is_url("https://github.com/org/repo.git#main"));
        assert_eq!(parents_path("./a/./b/c", "a/b/c"), "b/c");
        assert_eq!(super::super::clean_src("../a/../../b/*.txt"), "b/*.txt", "never above the context");
        assert_eq!(super::super::clean_src("/"), "");
        assert_eq!(super::super::clean_src("./"), "");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("real/sub")).unwrap();
        std::fs::write(p.join("real/sub/f"), "f").unwrap();
        std::os::unix::fs::symlink("real", p.join("r")).unwrap();
        std::os::unix::fs::symlink("/real/sub/f", p.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../etc/passwd", p.join("out")).unwrap();
        std::os::unix::fs::symlink("loop", p.join("loop")).unwrap();
        assert_eq!(follow(p, "r/sub/f").unwrap(), "real/sub/f");
        assert_eq!(follow(p, "abs").unwrap(), "real/sub/f", "absolute targets are rooted at the context");
        assert_eq!(follow(p, "out").unwrap(), "etc/passwd", "never out of the context");
        assert!(follow(p, "loop").is_err());
        assert_eq!(parents_path("a/*/c", "a/x/c"), "a/x/c");
    }
}
