//! Image configs and manifests: what an image says about itself, built with
//! `oci-spec` and encoded canonically.
//!
//! [`ImageConfigInput`] is the part of an image config a user chooses (env,
//! command, entrypoint, working directory, user, labels, ports, volumes,
//! stop signal), filled in directly or from Dockerfile instructions with
//! [`ImageConfigInput::apply_change`] (the parser is in `image/change.rs`).
//! [`image_config`] adds what berth knows (platform, layers, history, time);
//! [`image_manifest`] lists the config and layer blobs. [`canonical_json`]
//! encodes either with sorted keys, so equal values give equal digests.

mod change;
mod from_config;

use std::collections::{BTreeMap, BTreeSet};

use oci_spec::image::{
    Arch, Config, Descriptor, History, ImageConfiguration, ImageConfigurationBuilder, ImageManifest,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use serde::Serialize;

pub use change::ChangeError;

use super::Digest;

/// The runtime defaults of an image that its author chooses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfigInput {
    /// Environment variables, in the order first set; each name once.
    pub env: Vec<(String, String)>,
    /// Default arguments (or the command, without an entrypoint).
    pub cmd: Option<Vec<String>>,
    /// The program that runs, with `cmd` appended.
    pub entrypoint: Option<Vec<String>>,
    /// An absolute path inside the image.
    pub working_dir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`.
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Such as `80/tcp` or `53/udp`.
    pub exposed_ports: BTreeSet<String>,
    /// Absolute paths meant for volumes.
    pub volumes: BTreeSet<String>,
    /// Such as `SIGTERM`.
    pub stop_signal: Option<String>,
}

impl ImageConfigInput {
    /// Sets `name` to `value`, replacing an earlier value of the same name
    /// in place.
    pub fn set_env(&mut self, name: &str, value: &str) {
        match self.env.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.env.push((name.to_owned(), value.to_owned())),
        }
    }

    /// The value of the environment variable `name`, if set.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The `config` section of an image config; `None` when nothing is set.
    pub fn to_config(&self) -> Option<Config> {
        if *self == ImageConfigInput::default() {
            return None;
        }
        let mut config = Config::default();
        if !self.env.is_empty() {
            config.set_env(Some(self.env.iter().map(|(n, v)| format!("{n}={v}")).collect()));
        }
        config.set_cmd(self.cmd.clone());
        config.set_entrypoint(self.entrypoint.clone());
        config.set_working_dir(self.working_dir.clone());
        config.set_user(self.user.clone());
        if !self.labels.is_empty() {
            config.set_labels(Some(self.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()));
        }
        if !self.exposed_ports.is_empty() {
            config.set_exposed_ports(Some(self.exposed_ports.iter().cloned().collect()));
        }
        if !self.volumes.is_empty() {
            config.set_volumes(Some(self.volumes.iter().cloned().collect()));
        }
        config.set_stop_signal(self.stop_signal.clone());
        Some(config)
    }
}

/// One history entry: the step that made a layer (or changed only the
/// config, when `empty_layer`).
pub fn history_entry(created: &str, created_by: &str, empty_layer: bool) -> History {
    let mut history = History::default();
    history.set_created(Some(created.to_owned()));
    history.set_created_by(Some(created_by.to_owned()));
    if empty_layer {
        history.set_empty_layer(Some(true));
    }
    history
}

/// An image config for this machine's platform (GOARCH/GOOS names), with
/// `input` as its runtime defaults, `diff_ids` (bottom layer first) as its
/// rootfs, `created` (RFC 3339) as its time and `history` as its steps.
pub fn image_config(
    input: &ImageConfigInput,
    diff_ids: &[Digest],
    created: &str,
    history: Vec<History>,
) -> ImageConfiguration {
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(diff_ids.iter().map(Digest::to_string).collect::<Vec<_>>())
        .build()
        .expect("a rootfs builder with every field set cannot fail");
    let mut config = ImageConfigurationBuilder::default()
        .created(created.to_owned())
        .architecture(Arch::default())
        .os(Os::default())
        .rootfs(rootfs)
        .history(history)
        .build()
        .expect("a config builder with the required fields set cannot fail");
    config.set_config(input.to_config());
    config
}

/// An OCI image manifest (`application/vnd.oci.image.manifest.v1+json`)
/// for the config blob `config` and the layer blobs `layers`, bottom first.
pub fn image_manifest(config: Descriptor, layers: Vec<Descriptor>) -> ImageManifest {
    ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()
        .expect("a manifest builder with every required field set cannot fail")
}

/// A descriptor of `media_type` for a blob of `size` bytes with `digest`.
pub fn descriptor(media_type: MediaType, size: u64, digest: &Digest) -> Descriptor {
    Descriptor::new(media_type, size, digest)
}

/// `value` as compact JSON with object keys sorted, so that equal values
/// always give equal bytes (and digests), whatever order maps were built in.
pub fn canonical_json<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    // serde_json's `Value` keeps objects in a `BTreeMap` (the crate's
    // `preserve_order` feature is off), so the round trip sorts every level.
    serde_json::to_vec(&serde_json::to_value(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ImageConfigInput {
        let mut input = ImageConfigInput::default();
        input.set_env("PATH", "/bin");
        input.set_env("A", "1");
        input.set_env("PATH", "/usr/bin:/bin");
        input.cmd = Some(vec!["sh".to_owned()]);
        input.working_dir = Some("/srv".to_owned());
        input.labels.insert("b".to_owned(), "2".to_owned());
        input.labels.insert("a".to_owned(), "1".to_owned());
        input.exposed_ports.insert("80/tcp".to_owned());
        input.exposed_ports.insert("53/udp".to_owned());
        input
    }

    #[test]
    fn set_env_replaces_in_place() {
        let input = input();
        let names: Vec<&str> = input.env.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["PATH", "A"]);
        assert_eq!(input.env_var("PATH"), Some("/usr/bin:/bin"));
    }

    #[test]
    fn empty_input_gives_no_config_section() {
        assert_eq!(ImageConfigInput::default().to_config(), None);
        let config = image_config(&ImageConfigInput::default(), &[], "1970-01-01T00:00:00Z", vec![]);
        let json: serde_json::Value = serde_json::from_slice(&canonical_json(&config).unwrap()).unwrap();
        assert!(json.get("config").is_none(), "{json}");
    }

    #[test]
    fn config_carries_the_input_platform_and_layers() {
        let diff_id = Digest::sha256(b"layer");
        let history = vec![history_entry("2024-01-01T00:00:00Z", "berth import", false)];
        let config = image_config(&input(), std::slice::from_ref(&diff_id), "2024-01-01T00:00:00Z", history);
        let json: serde_json::Value = serde_json::from_slice(&canonical_json(&config).unwrap()).unwrap();
        assert_eq!(json["architecture"], Arch::default().to_string());
        assert_eq!(json["os"], "linux");
        assert_eq!(json["rootfs"]["type"], "layers");
        assert_eq!(json["rootfs"]["diff_ids"][0], diff_id.to_string());
        assert_eq!(json["config"]["Env"], serde_json::json!(["PATH=/usr/bin:/bin", "A=1"]));
        assert_eq!(json["config"]["ExposedPorts"], serde_json::json!({"53/udp": {}, "80/tcp": {}}));
        assert_eq!(json["history"][0]["created_by"], "berth import");
        let parsed = ImageConfiguration::from_reader(&canonical_json(&config).unwrap()[..]).unwrap();
        assert_eq!(parsed.config().as_ref().unwrap().working_dir().as_deref(), Some("/srv"));
    }

    #[test]
    fn canonical_json_is_stable_and_sorted() {
        let config = image_config(&input(), &[], "2024-01-01T00:00:00Z", vec![]);
        let once = canonical_json(&config).unwrap();
        for _ in 0..8 {
            assert_eq!(canonical_json(&config.clone()).unwrap(), once);
        }
        let text = String::from_utf8(once).unwrap();
        assert!(text.find("\"a\":\"1\"").unwrap() < text.find("\"b\":\"2\"").unwrap(), "{text}");
    }

    #[test]
    fn manifest_names_config_and_layers() {
        let config = descriptor(MediaType::ImageConfig, 10, &Digest::sha256(b"c"));
        let layer = descriptor(MediaType::ImageLayerGzip, 20, &Digest::sha256(b"l"));
        let manifest = image_manifest(config, vec![layer]);
        let bytes = canonical_json(&manifest).unwrap();
        let parsed = ImageManifest::from_reader(&bytes[..]).unwrap();
        assert_eq!(parsed.schema_version(), 2);
        assert_eq!(parsed.media_type().as_ref(), Some(&MediaType::ImageManifest));
        assert_eq!(parsed.layers()[0].media_type(), &MediaType::ImageLayerGzip);
    }
}
