//! The image a Dockerfile build writes: the target stage's chain of layers,
//! the config and history [`super::config`] makes over the base's, and the
//! tag.

use std::time::Duration;

use serde_json::{Value, json};

use super::config;
use super::{Builder, DockerBuildError};
use crate::dockerfile::expand::Base as FromBase;
use crate::oci::image::image_config;
use crate::oci::{Digest, ImageConfigInput};
use crate::store::LayerRecord;

impl Builder<'_> {
    /// Writes the target stage's image and tags it; returns its digest.
    pub(super) fn write_image(&self) -> Result<Digest, DockerBuildError> {
        let stages = &self.expanded.stages;
        let target = stages.iter().position(|s| s.index == self.expanded.target).unwrap_or(stages.len() - 1);
        // The chain of stages the target starts from, root first.
        let mut chain = vec![target];
        while let FromBase::Stage(i) = stages[chain[chain.len() - 1]].base {
            match stages.iter().position(|s| s.index == i) {
                Some(p) => chain.push(p),
                None => break,
            }
        }
        chain.reverse();
        let graph = &self.graph.graph;
        let root_key = graph.node(self.graph.stages[chain[0]].root).key;
        let base_raw: Value = match &self.entry(&root_key).config {
            Some(d) => serde_json::from_slice(&self.store.read_blob(d)?).unwrap_or_else(|_| json!({})),
            None => json!({}),
        };
        let base_raw = match &self.images[chain[0]] {
            Some((_, raw)) => raw.clone(),
            None => base_raw,
        };
        let mut base_config = base_raw["config"].as_object().cloned().unwrap_or_default();
        // The base's ONBUILD triggers ran in this build; they are not inherited.
        base_config.remove("OnBuild");
        let mut applied = config::Applied {
            config: base_config,
            author: base_raw["author"].as_str().map(str::to_owned),
            history: Vec::new(),
        };
        for &n in &chain {
            let nodes = &self.graph.stages[n];
            let layered =
                |i: usize| nodes.steps[i].is_some_and(|node| !self.entry(&graph.node(node).key).layers.is_empty());
            config::apply_stage(&mut applied, &stages[n], &layered);
        }
        let tip = self.graph.stages[target].tip;
        let layers: Vec<LayerRecord> =
            graph.chain_from(tip).iter().flat_map(|i| self.entry(&graph.node(*i).key).layers.clone()).collect();
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let created = crate::store::rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(self.req.epoch));
        let mut image =
            serde_json::to_value(image_config(&ImageConfigInput::default(), &diff_ids, &created, Vec::new()))
                .expect("a config always serialises");
        let mut history: Vec<Value> = base_raw["history"].as_array().cloned().unwrap_or_default();
        for (by, empty) in &applied.history {
            let mut h = json!({ "created": created, "created_by": by, "comment": config::HISTORY_COMMENT });
            if *empty {
                h["empty_layer"] = json!(true);
            }
            history.push(h);
        }
        image["history"] = Value::Array(history);
        if !applied.config.is_empty() {
            image["config"] = Value::Object(applied.config);
        }
        if let Some(a) = applied.author {
            image["author"] = json!(a);
        }
        let (digest, manifest) = crate::build::image::put_image(self.store, &image, &layers)?;
        if let Some(tag) = &self.req.tag {
            self.store.set_tag(tag, manifest)?;
        }
        Ok(digest)
    }
}
