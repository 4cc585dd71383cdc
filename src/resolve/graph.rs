//! The layer graph: one node per build step, shared between envs whose
//! steps are the same, held in a petgraph DAG (edges point parent → child).

use std::collections::{BTreeMap, HashMap};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;

use super::key::CacheKey;

/// What a node does. Its parameters are what its cache key covers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Step {
    /// Where the filesystem starts; `source` is how the manifest named it.
    Base { source: String },
    /// Install packages with the base's package manager.
    Packages {
        names: Vec<String>,
        locked: BTreeMap<String, String>,
        /// The environment the install sees (`KEY=VALUE`) when it is not the
        /// base image's: over a `build` base whose target stage set `ENV`s.
        #[serde(skip_serializing_if = "Option::is_none")]
        env: Option<Vec<String>>,
    },
    /// Copy a file or tree from the project directory.
    Copy { src: String, dest: String, mode: Option<u32>, owner: Option<String>, files: u64, bytes: u64 },
    /// Run a command: `/bin/sh -c COMMAND` as root in `/` with the base
    /// image's environment, unless `with` says otherwise (a Dockerfile's
    /// RUN); `with` is serialized only where it differs, so a berth.toml
    /// step and a Dockerfile RUN that do the same thing are the same node.
    Run {
        command: String,
        #[serde(flatten)]
        with: RunWith,
    },
    /// A Dockerfile COPY or ADD that is not a plain copy of one context path
    /// (several sources, `--from`, an archive ADD extracts, an inline file).
    Files {
        /// `COPY` or `ADD`.
        instruction: String,
        sources: Vec<String>,
        /// The stage (`--from`) the sources are read from; the context when `None`.
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        dest: String,
        mode: Option<u32>,
        owner: Option<String>,
    },
    /// A Dockerfile WORKDIR: the directory and its missing parents, 0755,
    /// owned by the stage's USER when one is set (as BuildKit's mkdir runs
    /// with the user), else by root.
    Mkdir {
        path: String,
        /// The USER at the WORKDIR, when one is set; resolved through the
        /// image's `/etc/passwd` and `/etc/group` as `--chown` is.
        #[serde(skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    },
}

/// How a run step differs from a berth.toml `run` entry; all `None` for one.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunWith {
    /// The argv when it is not `["/bin/sh", "-c", command]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// The whole environment (`KEY=VALUE`) when it is not the base image's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// The build args the step can see (a Dockerfile's ARGs), when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_args: Option<Vec<String>>,
    /// The working directory when it is not `/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// The user when it is not root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `none` for `RUN --network=none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// A Dockerfile RUN's `--mount`s, one line each: the type, target and
    /// options, and for a bind mount the digest of what it binds (a cache
    /// mount's content is never in the key, as in BuildKit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<String>>,
}

impl RunWith {
    /// Adds the fields that are set to a run step's key, each after a tag
    /// naming it, so an unset field adds nothing (a berth.toml run's key).
    pub fn key_fields(&self, h: &mut super::KeyHasher) {
        let mut list = |tag: &str, items: &Option<Vec<String>>| {
            if let Some(items) = items {
                h.field(tag.as_bytes()).field(&(items.len() as u64).to_le_bytes());
                for i in items {
                    h.field(i.as_bytes());
                }
            }
        };
        list("argv", &self.argv);
        list("env", &self.env);
        list("build-args", &self.build_args);
        list("mounts", &self.mounts);
        for (tag, v) in [("workdir", &self.workdir), ("user", &self.user), ("network", &self.network)] {
            if let Some(v) = v {
                h.field(tag.as_bytes()).field(v.as_bytes());
            }
        }
    }
}

impl Step {
    /// The step's kind as one word.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Base { .. } => "base",
            Step::Packages { .. } => "packages",
            Step::Copy { .. } => "copy",
            Step::Run { .. } => "run",
            Step::Files { .. } => "files",
            Step::Mkdir { .. } => "mkdir",
        }
    }

    /// A one-line description for listings.
    pub fn describe(&self) -> String {
        match self {
            Step::Base { source } => source.clone(),
            Step::Packages { names, .. } => names.join(" "),
            Step::Copy { src, dest, .. } => format!("{src} -> {dest}"),
            Step::Run { command, .. } => command.clone(),
            Step::Files { instruction, sources, from, dest, .. } => match from {
                Some(stage) => format!("{instruction} --from={stage} {} -> {dest}", sources.join(" ")),
                None => format!("{instruction} {} -> {dest}", sources.join(" ")),
            },
            Step::Mkdir { path, owner } => match owner {
                Some(user) => format!("mkdir {path} (as {user})"),
                None => format!("mkdir {path}"),
            },
        }
    }
}

/// One step of the graph.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub key: CacheKey,
    pub step: Step,
    /// The envs whose images contain this node's layer.
    pub envs: Vec<String>,
}

/// The DAG of build steps of every env in a manifest.
#[derive(Debug, Default)]
pub struct LayerGraph {
    graph: DiGraph<Node, ()>,
    by_key: HashMap<CacheKey, NodeIndex>,
    tips: BTreeMap<String, NodeIndex>,
}

impl LayerGraph {
    /// Adds a step under `parent` (or as a root), or finds the node with the
    /// same key; either way marks it as used by `env`.
    pub fn add(&mut self, parent: Option<NodeIndex>, key: CacheKey, step: Step, env: &str) -> NodeIndex {
        let index = *self.by_key.entry(key).or_insert_with(|| {
            let index = self.graph.add_node(Node { key, step, envs: Vec::new() });
            if let Some(p) = parent {
                self.graph.add_edge(p, index, ());
            }
            index
        });
        self.mark_used(index, env);
        index
    }

    /// Marks `index` and its ancestors as part of `env`'s image.
    pub fn mark_used(&mut self, index: NodeIndex, env: &str) {
        for i in self.chain_from(index) {
            let envs = &mut self.graph[i].envs;
            if !envs.iter().any(|e| e == env) {
                envs.push(env.to_owned());
                envs.sort();
            }
        }
    }

    /// Records `tip` as the last node of `env`.
    pub fn set_tip(&mut self, env: &str, tip: NodeIndex) {
        self.tips.insert(env.to_owned(), tip);
    }

    pub fn node(&self, index: NodeIndex) -> &Node {
        &self.graph[index]
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    pub fn parent(&self, index: NodeIndex) -> Option<NodeIndex> {
        self.graph.neighbors_directed(index, Direction::Incoming).next()
    }

    /// Children in key order, so listings are stable.
    pub fn children(&self, index: NodeIndex) -> Vec<NodeIndex> {
        let mut c: Vec<NodeIndex> = self.graph.neighbors_directed(index, Direction::Outgoing).collect();
        c.sort_by_key(|i| self.graph[*i].key);
        c
    }

    /// Root nodes (bases) in key order.
    pub fn roots(&self) -> Vec<NodeIndex> {
        let mut r: Vec<NodeIndex> = self.graph.node_indices().filter(|i| self.parent(*i).is_none()).collect();
        r.sort_by_key(|i| self.graph[*i].key);
        r
    }

    /// Every node, parents before children (a topological order).
    pub fn topological(&self) -> Vec<NodeIndex> {
        petgraph::algo::toposort(&self.graph, None).expect("a layer graph is built parent-first and has no cycle")
    }

    /// The last node of each env, by env name.
    pub fn tips(&self) -> &BTreeMap<String, NodeIndex> {
        &self.tips
    }

    /// The nodes of `env` from its base to its tip.
    pub fn chain(&self, env: &str) -> Vec<NodeIndex> {
        self.tips.get(env).map(|tip| self.chain_from(*tip)).unwrap_or_default()
    }

    /// The nodes from the root down to `index`.
    pub fn chain_from(&self, index: NodeIndex) -> Vec<NodeIndex> {
        let mut chain = vec![index];
        while let Some(p) = self.parent(chain[chain.len() - 1]) {
            chain.push(p);
        }
        chain.reverse();
        chain
    }
}
