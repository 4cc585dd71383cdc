//! A service's `build:` → the env's `build` key: the context (rebased to
//! where berth.toml goes), `dockerfile` (relative to the context in both
//! files), `target` and `args`; what berth.toml's `build` has no key for
//! becomes a note. The Dockerfile must exist, as Compose needs it to build.

use yaml_serde::Value as Y;

use super::service::{Context, Shape, key_values, rebase, shape};
use super::toml_out::{Item, Value};
use super::values::scalar;

/// Keys of Compose's `build` that berth.toml's has no counterpart for.
const NOT_CARRIED: &[(&str, &str)] = &[
    ("dockerfile_inline", "write the Dockerfile into the context and name it in dockerfile"),
    ("additional_contexts", "a Dockerfile reads one context"),
    ("cache_from", "berth's cache is its store"),
    ("cache_to", "berth's cache is its store"),
    ("labels", "use LABEL in the Dockerfile or labels in the env"),
    ("network", "RUN steps use the host's network"),
    ("shm_size", "not supported"),
    ("ssh", "RUN --mount=type=ssh is not supported"),
    ("secrets", "RUN --mount=type=secret is not supported"),
    ("platforms", "berth builds for the host's platform"),
    ("tags", "the env's image is tagged PROJECT/ENV:latest; `berth tag` adds names"),
    ("extra_hosts", "not supported"),
    ("isolation", "not supported"),
    ("privileged", "not supported"),
    ("no_cache", "use berth build --no-cache"),
    ("pull", "berth pulls an image its store lacks"),
];

/// The items for `build` (and `image`, which Compose uses as the built
/// image's name) of service `name`.
pub(super) fn convert(
    name: &str,
    build: &Y,
    image: Option<&Y>,
    cx: &Context<'_>,
    notes: &mut Vec<String>,
) -> Result<Item, Shape> {
    let at = |k: &str| format!("services.{name}.build{k}");
    let (context, mut fields) = match build {
        Y::String(s) => (s.clone(), Vec::new()),
        Y::Mapping(m) => {
            let context = match m.get("context") {
                Some(c) => scalar(c).ok_or_else(|| shape(at(".context"), "must be a path"))?,
                None => ".".to_owned(),
            };
            let mut fields = Vec::new();
            if let Some(d) = m.get("dockerfile") {
                fields.push((
                    "dockerfile".to_owned(),
                    Value::Str(scalar(d).ok_or_else(|| shape(at(".dockerfile"), "must be a path"))?),
                ));
            }
            if let Some(t) = m.get("target") {
                fields.push((
                    "target".to_owned(),
                    Value::Str(scalar(t).ok_or_else(|| shape(at(".target"), "must be a stage name"))?),
                ));
            }
            if let Some(a) = m.get("args") {
                let mut args = Vec::new();
                for (k, v) in key_values(a, &at(".args"))? {
                    match v {
                        Some(v) => args.push((k, Value::Str(v))),
                        None => notes.push(format!(
                            "build.args: {k} has no value (Compose takes it from the shell at build time); give it one in args"
                        )),
                    }
                }
                if !args.is_empty() {
                    fields.push(("args".to_owned(), Value::Table(args)));
                }
            }
            for (key, why) in NOT_CARRIED {
                if m.get(*key).is_some() {
                    notes.push(format!("build.{key}: not carried over: {why}"));
                }
            }
            (context, fields)
        }
        _ => return Err(shape(at(""), "must be a path or a mapping with context and dockerfile")),
    };
    let dockerfile = fields.iter().find(|(k, _)| k == "dockerfile").map(|(_, v)| match v {
        Value::Str(s) => s.clone(),
        _ => unreachable!("dockerfile is a string"),
    });
    let in_compose = cx.compose_dir.join(&context);
    let file = in_compose.join(dockerfile.as_deref().unwrap_or("Dockerfile"));
    if !file.is_file() {
        return Err(shape(
            at(""),
            format!(
                "no Dockerfile at {}; Compose could not build it either: add the file or fix the path",
                file.display()
            ),
        ));
    }
    if let Some(i) = image {
        let tag = scalar(i).ok_or_else(|| shape(format!("services.{name}.image"), "must be a string"))?;
        notes.push(format!(
            "image: {tag} names the built image in Compose; berth tags it {}/{}:latest, and `berth tag` can add {tag}",
            cx.project, cx.env_names[name]
        ));
    }
    let context = rebase(cx, &context);
    if fields.is_empty() {
        return Ok(Item::Key("build", Value::Str(context)));
    }
    fields.insert(0, ("context".to_owned(), Value::Str(context)));
    Ok(Item::Key("build", Value::Table(fields)))
}
