//! The checker: `RawManifest` → `Manifest`.
//!
//! It reads every value once, turns it into its typed form and collects every
//! problem it finds (not just the first) as a [`Diagnostic`] pointing at the
//! offending text. Cross-env rules — `from` and `depends_on` targets, cycles,
//! port clashes — run after each env is checked on its own.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use toml::Value;

use super::error::{Diagnostic, ManifestError, SourceMap};
use super::model::{Base, Bootstrap, Copy, DEFAULT_MIRROR, Env, Health, ImageSource, Limits, Manifest};
use super::raw::{RawBootstrap, RawCopy, RawEnv, RawHealth, RawLimits, RawManifest, S};
use super::suggest::did_you_mean;
use super::values::{
    Capability, Duration, Network, PortMapping, RestartPolicy, SecurityOpt, Tmpfs, User, UsernsMode, Volume,
    is_env_name, is_name,
};
use super::xref;
use crate::oci::ImageRef;

/// Parses and checks manifest text. `file` is how errors name the file;
/// `dir` is the project directory that relative paths start from.
pub fn check(text: &str, file: &Path, dir: &Path) -> Result<Manifest, ManifestError> {
    let map = SourceMap::new(file, text);
    let raw: RawManifest = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        ManifestError::Invalid(vec![map.at(&span, toml_message(e.message()))])
    })?;
    let mut checker = Checker { map, dir, diags: Vec::new() };
    let manifest = checker.manifest(raw);
    let mut diags = checker.diags;
    diags.sort_by_key(|d| (d.line, d.col));
    if diags.is_empty() { Ok(manifest) } else { Err(ManifestError::Invalid(diags)) }
}

/// Rewrites serde's wording for unknown and missing keys into berth's.
pub(super) fn toml_message(msg: &str) -> String {
    let quoted: Vec<&str> = msg.split('`').skip(1).step_by(2).collect();
    if msg.starts_with("unknown field") && !quoted.is_empty() {
        let (key, allowed) = (quoted[0], &quoted[1..]);
        let hint = did_you_mean(key, allowed.iter().copied());
        if hint.is_empty() {
            return format!("unknown key \"{key}\"; the keys allowed here are: {}", allowed.join(", "));
        }
        return format!("unknown key \"{key}\"{hint}");
    }
    if msg.starts_with("missing field") && !quoted.is_empty() {
        return format!("missing key \"{}\", which this table requires", quoted[0]);
    }
    msg.lines().next().unwrap_or(msg).to_owned()
}

pub(super) struct Checker<'a> {
    pub(super) map: SourceMap<'a>,
    dir: &'a Path,
    pub(super) diags: Vec<Diagnostic>,
}

impl Checker<'_> {
    pub(super) fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let d = self.map.at(span, message);
        self.diags.push(d);
    }

    /// Parses `value` with `T::from_str`, reporting the error at its span.
    fn parse<T: FromStr>(&mut self, value: &S<String>) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        match value.get_ref().parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(&value.span(), e.to_string());
                None
            }
        }
    }

    fn manifest(&mut self, raw: RawManifest) -> Manifest {
        let project = match &raw.project {
            Some(p) if is_name(p.get_ref()) => p.get_ref().clone(),
            Some(p) => {
                let msg = format!("bad project name {:?}: {NAME_RULE}", p.get_ref());
                self.error(&p.span(), msg);
                String::new()
            }
            None => default_project(self.dir),
        };
        if raw.env.is_empty() {
            self.error(
                &(0..0),
                "no environments declared; add an [env.NAME] table with a base, as in [env.dev] image = \"scratch\"",
            );
        }
        let mut envs = BTreeMap::new();
        let mut spans = BTreeMap::new();
        for (name, env) in raw.env {
            if !is_env_name(name.get_ref()) {
                let msg = format!("bad env name {:?}: {ENV_NAME_RULE}", name.get_ref());
                self.error(&name.span(), msg);
            }
            let checked = self.env(name.get_ref(), env.get_ref(), &env.span());
            spans.insert(name.get_ref().clone(), (name.span(), env.into_inner()));
            envs.insert(name.into_inner(), checked);
        }
        xref::check(self, &envs, &spans);
        Manifest { file: self.map_file(), dir: self.dir.to_path_buf(), project, envs }
    }

    pub(super) fn map_file(&self) -> PathBuf {
        self.map.at(&(0..0), "").file
    }

    /// The project directory.
    pub(super) fn dir(&self) -> &Path {
        self.dir
    }

    fn env(&mut self, name: &str, raw: &RawEnv, span: &Range<usize>) -> Env {
        Env {
            name: name.to_owned(),
            base: self.base(name, raw, span),
            packages: raw.packages.iter().filter_map(|p| self.package(p)).collect(),
            copy: raw.copy.iter().filter_map(|c| self.copy(c.get_ref())).collect(),
            run: raw.run.iter().filter_map(|r| self.non_empty(r, "a run step")).collect(),
            env: self.env_vars(&raw.env),
            workdir: raw.workdir.as_ref().and_then(|w| self.abs_path(w, "workdir")),
            user: raw.user.as_ref().and_then(|u| self.parse::<User>(u)),
            ports: raw.ports.iter().filter_map(|p| self.parse::<PortMapping>(p)).collect(),
            cmd: raw.cmd.as_ref().and_then(|c| self.command(c, "cmd")),
            entrypoint: raw.entrypoint.as_ref().and_then(|c| self.command(c, "entrypoint")),
            limits: raw.limits.as_ref().map(|l| self.limits(l.get_ref())).unwrap_or_default(),
            volumes: raw.volumes.iter().filter_map(|v| self.parse::<Volume>(v)).collect(),
            depends_on: raw.depends_on.iter().map(|d| d.get_ref().clone()).collect(),
            restart: raw.restart.as_ref().and_then(|r| self.parse::<RestartPolicy>(r)).unwrap_or_default(),
            health: raw.health.as_ref().and_then(|h| self.health(h.get_ref())),
            network: raw.network.as_ref().and_then(|n| self.parse::<Network>(n)).unwrap_or_default(),
            security_opt: raw.security_opt.iter().filter_map(|o| self.security_opt(o)).collect(),
            cap_add: raw.cap_add.iter().filter_map(|c| self.parse::<Capability>(c)).collect(),
            cap_drop: raw.cap_drop.iter().filter_map(|c| self.parse::<Capability>(c)).collect(),
            privileged: raw.privileged.as_ref().is_some_and(|p| *p.get_ref()),
            read_only: raw.read_only.as_ref().is_some_and(|r| *r.get_ref()),
            tmpfs: raw.tmpfs.iter().filter_map(|t| self.parse::<Tmpfs>(t)).collect(),
            init: raw.init.as_ref().is_none_or(|i| *i.get_ref()),
            userns: raw.userns.as_ref().and_then(|u| self.parse::<UsernsMode>(u)),
            labels: raw.labels.iter().map(|(k, v)| (k.get_ref().clone(), v.get_ref().clone())).collect(),
        }
    }

    fn base(&mut self, name: &str, raw: &RawEnv, span: &Range<usize>) -> Base {
        let keys = [
            ("image", raw.image.as_ref().map(|s| s.span())),
            ("bootstrap", raw.bootstrap.as_ref().map(|s| s.span())),
            ("from", raw.from.as_ref().map(|s| s.span())),
            ("build", raw.build.as_ref().map(|s| s.span())),
        ];
        let mut set: Vec<(&str, Range<usize>)> = keys.into_iter().filter_map(|(k, s)| Some((k, s?))).collect();
        set.sort_by_key(|(_, s)| s.start); // named in the file's order
        if set.len() > 1 {
            // At the key that comes last in the file: the one that adds a second base.
            let at = set.last().map_or(span.clone(), |(_, s)| s.clone());
            let named: Vec<String> = set.iter().map(|(k, _)| format!("`{k}`")).collect();
            let (last, rest) = named.split_last().expect("more than one base is set");
            let both = if rest.len() == 1 { "both " } else { "" };
            let why = if set.iter().any(|(k, _)| *k == "build") && set.iter().any(|(k, _)| *k == "image") {
                " (`build` makes the base from a Dockerfile; the env's image is tagged PROJECT/ENV:latest, which `berth tag` can name otherwise)"
            } else {
                ""
            };
            let msg = format!(
                "env \"{name}\" sets {both}{} and {last}; keep one of `image`, `bootstrap`, `from` or `build` as its base{why}",
                rest.join(", ")
            );
            self.error(&at, msg);
        } else if set.is_empty() {
            self.error(span, format!("env \"{name}\" has no base; set one of `image` (as in image = \"debian:bookworm\"), `bootstrap`, `from` or `build` (a Dockerfile, as in build = \"svc\")"));
        }
        if let Some(from) = &raw.from {
            return Base::Env(from.get_ref().clone());
        }
        if let Some(b) = &raw.bootstrap {
            return Base::Bootstrap(self.bootstrap(b.get_ref()));
        }
        if let Some(b) = &raw.build
            && raw.image.is_none()
        {
            return match self.build(b) {
                Some(source) => Base::Build(source),
                None => Base::Image(ImageSource::Scratch),
            };
        }
        match &raw.image {
            Some(image) => Base::Image(self.image(image).unwrap_or(ImageSource::Scratch)),
            None => Base::Image(ImageSource::Scratch),
        }
    }

    fn image(&mut self, image: &S<String>) -> Option<ImageSource> {
        let text = image.get_ref().as_str();
        let split_tag = |rest: &str| match rest.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (PathBuf::from(p), Some(t.to_owned())),
            _ => (PathBuf::from(rest), None),
        };
        let source = if text == "scratch" {
            ImageSource::Scratch
        } else if let Some(rest) = text.strip_prefix("oci:") {
            let (path, tag) = split_tag(rest);
            ImageSource::OciDir { path, tag }
        } else if let Some(rest) = text.strip_prefix("oci-archive:") {
            let (path, tag) = split_tag(rest);
            ImageSource::OciArchive { path, tag }
        } else if let Some(rest) = text.strip_prefix("docker-archive:") {
            ImageSource::DockerArchive { path: PathBuf::from(rest) }
        } else if let Some(rest) = text.strip_prefix("rootfs:") {
            ImageSource::Rootfs { path: PathBuf::from(rest) }
        } else {
            match text.parse::<ImageRef>() {
                Ok(_) => ImageSource::Registry { reference: text.to_owned() },
                Err(e) => {
                    let msg = format!(
                        "{e}; local images are written scratch, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE or rootfs:FILE.tar"
                    );
                    self.error(&image.span(), msg);
                    return None;
                }
            }
        };
        if let ImageSource::OciDir { path, .. }
        | ImageSource::OciArchive { path, .. }
        | ImageSource::DockerArchive { path }
        | ImageSource::Rootfs { path } = &source
            && path.as_os_str().is_empty()
        {
            self.error(
                &image.span(),
                format!("image {text:?} names no file; write the path after the colon, as in \"rootfs:base.tar\""),
            );
            return None;
        }
        Some(source)
    }

    fn bootstrap(&mut self, raw: &RawBootstrap) -> Bootstrap {
        let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        for (value, what) in
            std::iter::once((&raw.suite, "suite")).chain(raw.components.iter().map(|c| (c, "component")))
        {
            if !word(value.get_ref()) {
                self.error(
                    &value.span(),
                    format!(
                        "bad bootstrap {what} {:?}: expected a word such as \"bookworm\" or \"main\"",
                        value.get_ref()
                    ),
                );
            }
        }
        let mirror = match &raw.mirror {
            Some(m) if m.get_ref().starts_with("http://") || m.get_ref().starts_with("https://") => m.get_ref().clone(),
            Some(m) => {
                self.error(
                    &m.span(),
                    format!(
                        "bad bootstrap mirror {:?}: expected an http:// or https:// URL, as in \"{DEFAULT_MIRROR}\"",
                        m.get_ref()
                    ),
                );
                String::new()
            }
            None => DEFAULT_MIRROR.to_owned(),
        };
        let variant = match &raw.variant {
            Some(v) if ["minbase", "buildd", "fakechroot", "-"].contains(&v.get_ref().as_str()) => v.get_ref().clone(),
            Some(v) => {
                self.error(
                    &v.span(),
                    format!(
                        "bad bootstrap variant {:?}: expected \"minbase\", \"buildd\", \"fakechroot\" or \"-\"",
                        v.get_ref()
                    ),
                );
                String::new()
            }
            None => "minbase".to_owned(),
        };
        let mut components: Vec<String> = raw.components.iter().map(|c| c.get_ref().clone()).collect();
        if components.is_empty() {
            components.push("main".to_owned());
        }
        Bootstrap { suite: raw.suite.get_ref().clone(), mirror, variant, components }
    }

    fn package(&mut self, p: &S<String>) -> Option<String> {
        let name = p.get_ref();
        let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "+-._:=~@".contains(c));
        if !ok {
            self.error(
                &p.span(),
                format!("bad package name {name:?}: expected a package name such as \"curl\" or \"python3=3.11.2-1\""),
            );
            return None;
        }
        Some(name.clone())
    }

    fn non_empty(&mut self, s: &S<String>, what: &str) -> Option<String> {
        if s.get_ref().trim().is_empty() {
            self.error(&s.span(), format!("{what} is empty; write the command to run"));
            return None;
        }
        Some(s.get_ref().clone())
    }

    fn abs_path(&mut self, s: &S<String>, what: &str) -> Option<String> {
        if !s.get_ref().starts_with('/') {
            self.error(
                &s.span(),
                format!("{what} {:?} must be an absolute path in the container, as in \"/srv/app\"", s.get_ref()),
            );
            return None;
        }
        Some(s.get_ref().clone())
    }

    /// A `security_opt` value. A seccomp profile it names is read and
    /// checked here, so that `plan` reports a missing or malformed one, and
    /// `up` and `build` refuse it, before anything is built or started.
    fn security_opt(&mut self, value: &S<String>) -> Option<SecurityOpt> {
        let opt = self.parse::<SecurityOpt>(value)?;
        if let SecurityOpt::SeccompProfile(path) = &opt
            && let Err(e) = crate::runtime::seccomp::Profile::load(&self.dir.join(path))
        {
            let hint = match e {
                crate::runtime::seccomp::SeccompError::Read { .. } => {
                    format!("; give a JSON profile's path, absolute or from {}", self.dir.display())
                }
                _ => String::new(),
            };
            self.error(&value.span(), format!("security_opt {:?}: {e}{hint}", value.get_ref()));
            return None;
        }
        Some(opt)
    }

    fn copy(&mut self, raw: &RawCopy) -> Option<Copy> {
        let src = self.copy_source(&raw.src);
        let dest = self.abs_path(&raw.dest, "copy destination");
        let mode = raw.mode.as_ref().and_then(|m| self.mode(m));
        let owner = raw.owner.as_ref().and_then(|o| self.parse::<User>(o));
        Some(Copy { src: src?, dest: dest?, mode, owner })
    }

    /// A copy source must stay inside the project directory, lexically and
    /// after following symlinks.
    fn copy_source(&mut self, src: &S<String>) -> Option<PathBuf> {
        let text = src.get_ref();
        let outside = || {
            format!(
                "copy source {text:?} is outside the project directory {}; copy only files under it (move them there, or move berth.toml up)",
                self.dir.display()
            )
        };
        let Some(rel) = normalise_inside(self.dir, Path::new(text)) else {
            let msg = outside();
            self.error(&src.span(), msg);
            return None;
        };
        // Every directory on the way must be a real directory inside the
        // project; the source itself may be a symlink (it is copied as one).
        let mut at = self.dir.to_path_buf();
        let parts: Vec<_> = rel.components().collect();
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            let is_last = i + 1 == parts.len();
            match std::fs::symlink_metadata(&at) {
                Ok(meta) if meta.file_type().is_symlink() && !is_last => {
                    let msg = format!(
                        "copy source {text:?} passes through the symlink {}; name the real path instead",
                        at.strip_prefix(self.dir).unwrap_or(&at).display()
                    );
                    self.error(&src.span(), msg);
                    return None;
                }
                Ok(_) => {}
                Err(_) => {
                    let msg =
                        format!("copy source {text:?} does not exist in the project directory {}", self.dir.display());
                    self.error(&src.span(), msg);
                    return None;
                }
            }
        }
        Some(rel)
    }

    fn mode(&mut self, m: &S<Value>) -> Option<u32> {
        let written = self.map.text(&m.span());
        let parsed = match m.get_ref() {
            // TOML has already turned `0o644` into 420; a decimal literal is refused.
            Value::Integer(i) if written.starts_with("0o") => u32::try_from(*i).ok(),
            Value::String(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
            _ => None,
        };
        match parsed.filter(|m| *m <= 0o7777) {
            Some(mode) => Some(mode),
            None => {
                self.error(
                    &m.span(),
                    format!(
                        "bad mode {written}: expected octal permission bits, as in mode = 0o644 or mode = \"0755\""
                    ),
                );
                None
            }
        }
    }

    fn env_vars(&mut self, raw: &BTreeMap<S<String>, S<Value>>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (key, value) in raw {
            let k = key.get_ref();
            let key_ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !key_ok {
                self.error(
                    &key.span(),
                    format!(
                        "bad environment variable name {k:?}: use letters, digits and '_', not starting with a digit"
                    ),
                );
            }
            let Some(v) = scalar_text(value.get_ref()) else {
                self.error(&value.span(), format!("environment variable {k} must be a string, number or boolean"));
                continue;
            };
            out.insert(k.clone(), v);
        }
        out
    }

    /// A command as a list (exec form) or a string (run by `/bin/sh -c`).
    fn command(&mut self, v: &S<Value>, what: &str) -> Option<Vec<String>> {
        let argv = match v.get_ref() {
            Value::String(s) if !s.trim().is_empty() => vec!["/bin/sh".to_owned(), "-c".to_owned(), s.clone()],
            Value::Array(items) if !items.is_empty() => {
                items.iter().map(|i| i.as_str().map(str::to_owned)).collect::<Option<Vec<String>>>().unwrap_or_default()
            }
            _ => Vec::new(),
        };
        if argv.is_empty() {
            self.error(&v.span(), format!("bad {what}: expected a non-empty list of strings, as in [\"python3\", \"-m\", \"http.server\"], or a shell command string"));
            return None;
        }
        Some(argv)
    }

    fn limits(&mut self, raw: &RawLimits) -> Limits {
        // The least values the runtime can apply, so that `up` runs what
        // `plan` accepts.
        use crate::runtime::cgroup::{MIN_CPUS, MIN_MEMORY, MIN_PIDS};
        let memory = raw.memory.as_ref().and_then(|m| match m.get_ref() {
            Value::String(s) => self.parse(&S::new(m.span(), s.clone())),
            Value::Integer(i) if *i > 0 => Some(super::values::ByteSize(*i as u64)),
            _ => {
                self.error(&m.span(), "bad memory limit: expected a size such as \"256MiB\" or a number of bytes");
                None
            }
        });
        let memory = memory.filter(|m| {
            let enough = m.0 >= MIN_MEMORY;
            if !enough {
                let msg = format!("memory limit {m} is too small: a container needs at least 1MiB, as in \"256MiB\"");
                self.error(&raw.memory.as_ref().map_or(0..0, |m| m.span()), msg);
            }
            enough
        });
        let cpus = raw.cpus.as_ref().and_then(|c| match c.get_ref() {
            Value::Float(f) if *f >= MIN_CPUS && f.is_finite() => Some(*f),
            Value::Integer(i) if *i > 0 => Some(*i as f64),
            _ => {
                self.error(&c.span(), "bad cpus limit: expected a number of CPUs of at least 0.01, as in 0.5 or 2");
                None
            }
        });
        let pids = raw.pids.as_ref().and_then(|p| match u64::try_from(*p.get_ref()) {
            Ok(n) if n >= MIN_PIDS => Some(n),
            _ => {
                let msg = "bad pids limit: expected a number of processes of at least 2 (berth's init and the command), as in 256";
                self.error(&p.span(), msg);
                None
            }
        });
        Limits { memory, cpus, pids }
    }

    fn health(&mut self, raw: &RawHealth) -> Option<Health> {
        let cmd = self.command(&raw.cmd, "health cmd");
        let mut duration = |d: &Option<S<String>>, what: &str, default: u64, zero_ok: bool| match d {
            Some(d) => match self.parse::<Duration>(d) {
                Some(v) if v.0.is_zero() && !zero_ok => {
                    self.error(&d.span(), format!("health {what} must be longer than 0, as in \"1s\""));
                    None
                }
                other => other,
            },
            None => Some(Duration(std::time::Duration::from_secs(default))),
        };
        let (interval, timeout, start_period) = (
            duration(&raw.interval, "interval", 30, false),
            duration(&raw.timeout, "timeout", 30, false),
            duration(&raw.start_period, "start_period", 0, true),
        );
        let retries = match &raw.retries {
            Some(r) => match u32::try_from(*r.get_ref()) {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    self.error(&r.span(), "bad health retries: expected a number of tries above 0, as in 30");
                    None
                }
            },
            None => Some(3),
        };
        Some(Health {
            cmd: cmd?,
            interval: interval?,
            timeout: timeout?,
            retries: retries?,
            start_period: start_period?,
        })
    }
}

const ENV_NAME_RULE: &str =
    "env names become host names: use lower-case letters, digits and '-', starting with a letter or digit (at most 63)";
const NAME_RULE: &str = "use lower-case letters, digits, '_', '.' or '-', starting with a letter or digit (at most 63)";

/// The project name when the manifest gives none: the directory's name,
/// lower-cased, with other characters replaced by '-'.
pub fn default_project(dir: &Path) -> String {
    let raw = dir.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let cleaned: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect();
    let trimmed = cleaned.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let name: String = trimmed.chars().take(63).collect();
    if name.is_empty() { "default".to_owned() } else { name }
}

/// `path` relative to `dir`, cleaned of `.` and `..`, if it stays inside `dir`.
fn normalise_inside(dir: &Path, path: &Path) -> Option<PathBuf> {
    let rel = if path.is_absolute() { path.strip_prefix(dir).ok()? } else { path };
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// A TOML scalar as the text an environment variable or build arg gets
/// (`1`, `true`, `0.5`); `None` for tables and arrays.
pub(super) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_copy_sources() {
        let dir = Path::new("/p");
        assert_eq!(normalise_inside(dir, Path::new("./app/../src")), Some(PathBuf::from("src")));
        assert_eq!(normalise_inside(dir, Path::new("/p/app")), Some(PathBuf::from("app")));
        assert_eq!(normalise_inside(dir, Path::new("../etc")), None);
        assert_eq!(normalise_inside(dir, Path::new("a/../../etc")), None);
        assert_eq!(normalise_inside(dir, Path::new("/etc/passwd")), None);
    }

    #[test]
    fn copy_sources_may_be_symlinks_but_not_pass_through_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir(p.join("real")).unwrap();
        std::fs::write(p.join("real/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", p.join("out")).unwrap();
        std::os::unix::fs::symlink("real", p.join("alias")).unwrap();
        let manifest =
            |src: &str| format!("[env.a]\nimage = \"scratch\"\ncopy = [{{ src = \"{src}\", dest = \"/x\" }}]\n");
        let check = |src: &str| super::check(&manifest(src), Path::new("berth.toml"), p);
        assert!(check("out").is_ok(), "a symlink is copied as a link, wherever it points");
        assert!(check("real/f").is_ok());
        let err = check("alias/f").unwrap_err().to_string();
        assert!(err.contains("passes through the symlink alias"), "{err}");
        let err = check("nope").unwrap_err().to_string();
        assert!(err.contains("does not exist in the project directory"), "{err}");
    }

    #[test]
    fn default_project_names() {
        assert_eq!(default_project(Path::new("/home/u/My Shop")), "my-shop");
        assert_eq!(default_project(Path::new("/")), "default");
        assert_eq!(default_project(Path::new("/x/_tmp")), "tmp");
    }

    #[test]
    fn rewrites_serde_key_errors() {
        assert_eq!(
            toml_message("unknown field `imgae`, expected one of `image`, `from`"),
            "unknown key \"imgae\" (did you mean \"image\"?)"
        );
        assert!(
            toml_message("unknown field `zzz`, expected one of `image`, `from`")
                .contains("allowed here are: image, from")
        );
        assert_eq!(toml_message("missing field `suite`"), "missing key \"suite\", which this table requires");
    }
}
