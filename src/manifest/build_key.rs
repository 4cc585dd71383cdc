//! The `build` key: an env whose base is a Dockerfile's target stage.
//!
//! `build = "svc"` (the context alone, Compose's short form) or
//! `build = { context = "svc", dockerfile = "Dockerfile", target = "prod",
//! args = { V = "1" } }`. The context is relative to the project
//! directory, the Dockerfile to the context (`CONTEXT/Dockerfile` when not
//! given), as Compose's `build` has them. The checker reads the Dockerfile
//! and parses it, so a missing context or file, a Dockerfile error (which
//! keeps its own `Dockerfile:LINE:COL`) and a target stage the file does
//! not have are reported by `plan` at the `build` key's place in
//! `berth.toml`, before anything is built.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Value;

use super::check::Checker;
use super::model::BuildSource;
use super::raw::{RawBuild, S};

impl Checker<'_> {
    /// Checks `build`; `None` when something is wrong (reported).
    pub(super) fn build(&mut self, raw: &S<RawBuild>) -> Option<BuildSource> {
        let whole = raw.span();
        let (context, context_span, dockerfile, target, args) = match raw.get_ref() {
            RawBuild::Context(c) => (c.clone(), whole.clone(), None, None, BTreeMap::new()),
            RawBuild::Table(t) => (
                t.context.get_ref().clone(),
                t.context.span(),
                t.dockerfile.as_ref(),
                t.target.as_ref(),
                self.build_args(&t.args),
            ),
        };
        if context.trim().is_empty() {
            self.error(&context_span, "build context is empty; name the directory that holds what the Dockerfile copies, as in build = \"svc\"");
            return None;
        }
        let dir = self.dir().join(&context);
        if !dir.is_dir() {
            let msg = format!(
                "build context {context:?} is not a directory (looked for {}); name the directory that holds the Dockerfile and what it copies, relative to berth.toml",
                dir.display()
            );
            self.error(&context_span, msg);
            return None;
        }
        let (file, file_span) = match dockerfile {
            Some(d) if d.get_ref().trim().is_empty() => {
                self.error(&d.span(), "build dockerfile is empty; name the file, as in dockerfile = \"Dockerfile\"");
                return None;
            }
            Some(d) => (PathBuf::from(d.get_ref()), d.span()),
            None => (PathBuf::from("Dockerfile"), context_span.clone()),
        };
        let path = dir.join(&file);
        if !path.is_file() {
            let given = if dockerfile.is_some() { "" } else { " (the default; set `dockerfile` to name another)" };
            let msg = format!(
                "no Dockerfile at {}{given}; `dockerfile` is relative to the build context {context:?}",
                self.shown(&context, &file).display()
            );
            self.error(&file_span, msg);
            return None;
        }
        let parsed =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display())).and_then(
                |text| crate::dockerfile::parse_str(&text, &self.shown(&context, &file)).map_err(|e| e.to_string()),
            );
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => {
                self.error(&file_span, format!("build: {e}"));
                return None;
            }
        };
        if let Some(t) = target
            && let Err(e) = crate::dockerfile::target::find_target(&parsed, Some(t.get_ref()))
        {
            let msg = format!("{}: {e}; name one, or leave out `target` to build the last", file.display());
            self.error(&t.span(), msg);
            return None;
        }
        Some(BuildSource {
            context: PathBuf::from(context),
            dockerfile: file,
            target: target.map(|t| t.get_ref().clone()),
            args,
        })
    }

    /// `args = { NAME = VALUE }`: names as ARG takes them, values strings,
    /// numbers or booleans (as Compose takes them).
    fn build_args(&mut self, raw: &BTreeMap<S<String>, S<Value>>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (key, value) in raw {
            let k = key.get_ref();
            if k.is_empty() || k.contains(['=', ' ', '\t']) {
                self.error(
                    &key.span(),
                    format!("bad build arg name {k:?}: write the ARG's name, as in args = {{ VERSION = \"1\" }}"),
                );
                continue;
            }
            let Some(v) = super::check::scalar_text(value.get_ref()) else {
                self.error(&value.span(), format!("build arg {k} must be a string, number or boolean"));
                continue;
            };
            out.insert(k.clone(), v);
        }
        out
    }

    /// The Dockerfile as errors name it: beside the manifest as the user
    /// named it (`svc/Dockerfile`, `manifests/demo/svc/Dockerfile`).
    fn shown(&self, context: &str, file: &Path) -> PathBuf {
        let manifest = self.map_file();
        let beside = manifest.parent().unwrap_or(Path::new(""));
        beside.join(context).join(file)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::manifest::{Base, BuildSource};

    /// Checks `text` in a project holding `svc/Dockerfile` (two stages).
    fn check(text: &str) -> Result<crate::manifest::Manifest, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("svc")).unwrap();
        std::fs::write(dir.path().join("svc/Dockerfile"), "FROM scratch AS base\nFROM base AS prod\n").unwrap();
        crate::manifest::parse(text, Path::new("berth.toml"), dir.path()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_string_is_the_context_and_a_table_names_every_field() {
        let m = check("[env.a]\nbuild = \"svc\"\n").unwrap();
        let want = BuildSource {
            context: "svc".into(),
            dockerfile: "Dockerfile".into(),
            target: None,
            args: Default::default(),
        };
        assert_eq!(m.envs["a"].base, Base::Build(want));
        let m = check(
            "[env.a]\nbuild = { context = \"svc\", dockerfile = \"Dockerfile\", target = \"base\", args = { V = 1, W = \"x\" } }\n",
        )
        .unwrap();
        let Base::Build(b) = &m.envs["a"].base else { panic!("{:?}", m.envs["a"].base) };
        assert_eq!(b.target.as_deref(), Some("base"));
        assert_eq!(b.args["V"], "1");
        assert_eq!(b.args["W"], "x");
    }

    #[test]
    fn mistakes_point_into_the_build_value() {
        let err = check("[env.a]\nbuild = { context = \"svc\", targt = \"prod\" }\n").unwrap_err();
        assert!(err.contains("berth.toml:2:28: unknown key \"targt\" (did you mean \"target\"?)"), "{err}");
        let err = check("[env.a]\nbuild = { dockerfile = \"Dockerfile\" }\n").unwrap_err();
        assert!(err.contains("berth.toml:2:9: missing key \"context\""), "{err}");
        let err = check("[env.a]\nbuild = [\"svc\"]\n").unwrap_err();
        assert!(err.contains("berth.toml:2:9:") && err.contains("a context directory"), "{err}");
        let err = check("[env.a]\nbuild = { context = \"svc\", args = { V = [1] } }\n").unwrap_err();
        assert!(err.contains("berth.toml:2:41: build arg V must be a string, number or boolean"), "{err}");
        let err = check("[env.a]\nbuild = \"svc\"\nfrom = \"b\"\n[env.b]\nimage = \"scratch\"\n").unwrap_err();
        assert!(err.contains("berth.toml:3:8: env \"a\" sets both `build` and `from`"), "{err}");
        let err = check("[env.a]\nbuild = { context = \"svc\", target = \"dev\" }\n").unwrap_err();
        assert!(
            err.contains(
                "berth.toml:2:37: Dockerfile: target stage \"dev\" is not in the Dockerfile; its stages are base, prod;"
            ),
            "{err}"
        );
    }
}
