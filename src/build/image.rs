//! An env's image from its built nodes: the layers of its chain, the base's
//! config with the env's image config laid over it (env, workdir, user,
//! cmd, entrypoint, exposed ports, labels), one history entry per step, and
//! a tag `PROJECT/ENV:latest`.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::image::{Descriptor, History, ImageConfiguration, MediaType};

use crate::oci::Digest;
use crate::oci::image::{ImageConfigInput, canonical_json, descriptor, history_entry, image_config, image_manifest};
use crate::resolve::{ContainerSpec, Step};
use crate::store::{LayerRecord, Store, StoreError};

/// One built node of an env's chain, for its image.
pub struct Part<'a> {
    pub step: &'a Step,
    pub layers: &'a [LayerRecord],
}

/// The image written for an env.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuiltImage {
    pub tag: String,
    pub digest: Digest,
}

/// The tag of an env's image.
pub fn tag_for(project: &str, env: &str) -> String {
    format!("{project}/{env}:latest")
}

/// Whether an image says what to run (a non-empty `Cmd` or `Entrypoint`).
pub fn has_command(config: &ImageConfiguration) -> bool {
    let c = config.config().clone().unwrap_or_default();
    c.cmd().as_ref().is_some_and(|v| !v.is_empty()) || c.entrypoint().as_ref().is_some_and(|v| !v.is_empty())
}

/// How a step reads in `berth history`, like a Dockerfile line.
pub fn created_by(step: &Step) -> String {
    match step {
        Step::Base { source } => format!("FROM {source}"),
        Step::Packages { names, .. } => format!("PACKAGES {}", names.join(" ")),
        Step::Copy { src, dest, .. } => format!("COPY {src} {dest}"),
        Step::Run { command, .. } => format!("RUN {command}"),
        Step::Files { instruction, sources, dest, .. } => format!("{instruction} {} {dest}", sources.join(" ")),
        Step::Mkdir { path, .. } => format!("WORKDIR {path}"),
    }
}

/// The `org.berth.manifest` label: the manifest's path relative to the
/// project directory (which holds it), so that it says which file of the
/// project built the image and not where the checkout is or how the file
/// was named on the command line (`berth.toml`, whether built in the
/// project, with `-f DIR/berth.toml` or from another checkout).
pub fn manifest_label(manifest_file: &Path) -> String {
    manifest_file.file_name().map_or_else(String::new, |name| name.to_string_lossy().into_owned())
}

/// Writes the image of `spec` (built from `parts`, base first, on top of
/// `base_config`) and tags it. `manifest_file` is the manifest as the user
/// named it (see [`manifest_label`]). The caller holds the store's
/// exclusive lock.
pub fn write(
    store: &Store,
    spec: &ContainerSpec,
    manifest_file: &Path,
    base_config: &ImageConfiguration,
    parts: &[Part<'_>],
    created: &str,
) -> Result<BuiltImage, StoreError> {
    let base = base_config.config().clone().unwrap_or_default();
    let mut input = ImageConfigInput::default();
    for kv in base.env().clone().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            input.set_env(k, v);
        }
    }
    for (k, v) in &spec.env_vars {
        input.set_env(k, v);
    }
    input.cmd = spec.cmd.clone().or(base.cmd().clone());
    input.entrypoint = spec.entrypoint.clone().or(base.entrypoint().clone());
    input.working_dir = Some(spec.workdir.clone()).filter(|w| w != "/").or(base.working_dir().clone());
    input.user = spec.user.as_ref().map(ToString::to_string).or(base.user().clone());
    let mut labels: BTreeMap<String, String> = base.labels().clone().unwrap_or_default().into_iter().collect();
    labels.extend(spec.labels.clone());
    labels.insert("org.berth.manifest".to_owned(), manifest_label(manifest_file));
    labels.insert("org.berth.project".to_owned(), spec.project.clone());
    labels.insert("org.berth.env".to_owned(), spec.env.clone());
    input.labels = labels;
    input.exposed_ports = spec.ports.iter().map(|p| format!("{}/{}", p.container_port, p.protocol)).collect();

    let mut history: Vec<History> = base_config.history().clone().unwrap_or_default();
    let mut layers = Vec::new();
    for part in parts {
        if !matches!(part.step, Step::Base { .. }) {
            history.push(history_entry(created, &created_by(part.step), part.layers.is_empty()));
        }
        layers.extend_from_slice(part.layers);
    }
    let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let config = image_config(&input, &diff_ids, created, history);
    let (digest, manifest) = put_image(store, &config, &layers)?;
    let tag = tag_for(&spec.project, &spec.env);
    store.set_tag(&tag, manifest)?;
    Ok(BuiltImage { tag, digest })
}

/// Stores an image: its `config` blob and a manifest over `layers` (in
/// order, bottom first). Returns the manifest's digest and its descriptor,
/// to tag it by.
pub(crate) fn put_image<C: serde::Serialize>(
    store: &Store,
    config: &C,
    layers: &[LayerRecord],
) -> Result<(Digest, Descriptor), StoreError> {
    let config_bytes = canonical_json(config).expect("an image config always serialises");
    let config_digest = store.put_blob(&config_bytes)?;
    let layer_descriptors =
        layers.iter().map(|l| descriptor(MediaType::from(l.media_type.as_str()), l.size, &l.digest)).collect();
    let manifest = image_manifest(
        descriptor(MediaType::ImageConfig, config_bytes.len() as u64, &config_digest),
        layer_descriptors,
    );
    let manifest_bytes = canonical_json(&manifest).expect("a manifest always serialises");
    let digest = store.put_blob(&manifest_bytes)?;
    let described = descriptor(MediaType::ImageManifest, manifest_bytes.len() as u64, &digest);
    Ok((digest, described))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn the_manifest_label_does_not_say_where_the_checkout_is() {
        for typed in ["/srv/checkout-a/berth.toml", "manifests/demo/berth.toml", "berth.toml", "./berth.toml"] {
            assert_eq!(super::manifest_label(Path::new(typed)), "berth.toml", "{typed}");
        }
        assert_eq!(super::manifest_label(Path::new("/srv/a/qa.toml")), "qa.toml");
    }
}
