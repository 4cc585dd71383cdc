//! The reconciler: desired state against actual state gives a [`Plan`], an
//! ordered list of actions each with its reason; `up` applies it.
//!
//! Planning is pure. [`plan`] takes the resolution and a question it may ask
//! of the store ("is this cache key there?") and returns a value that can be
//! printed, compared and tested; [`containers`] compares each env's
//! container spec with the container [`actual`] reads from the store
//! (create, recreate with the fields that changed, start, remove, drift).
//! Nothing in planning writes anything. The acting half: [`up`] (`berth up`
//! and `down`), [`watch`] (`up --watch`) and [`freeze`] (`berth freeze` and
//! `up --from`).

pub mod actual;
pub mod containers;
pub mod freeze;
mod project;
pub mod up;
pub mod watch;

use std::collections::BTreeMap;

use serde::Serialize;

pub use project::{PlanError, plan_project};

use crate::resolve::{CacheKey, ContainerSpec, Resolution, Step};

/// What to do about one node of the layer graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action", content = "reason")]
pub enum NodeAction {
    /// The store has the node's layer: nothing to do.
    Cached,
    /// The node must be built, and why.
    Build(String),
}

/// One node of the plan, in build order.
#[derive(Debug, Clone, Serialize)]
pub struct NodePlan {
    pub key: CacheKey,
    pub parent: Option<CacheKey>,
    #[serde(flatten)]
    pub step: Step,
    /// The envs whose images contain this node.
    pub envs: Vec<String>,
    #[serde(flatten)]
    pub action: NodeAction,
}

/// One env of the plan: its chain of nodes and its container spec.
#[derive(Debug, Clone, Serialize)]
pub struct EnvPlan {
    /// Cache keys from the base to the env's image.
    pub nodes: Vec<CacheKey>,
    pub spec: ContainerSpec,
}

/// Everything `berth up` would do, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub project: String,
    /// Every node once, parents before children.
    pub nodes: Vec<NodePlan>,
    pub envs: BTreeMap<String, EnvPlan>,
    /// What `berth up` would do with each env's container.
    pub containers: Vec<containers::ContainerPlan>,
}

impl Plan {
    /// How many nodes must be built.
    pub fn to_build(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n.action, NodeAction::Build(_))).count()
    }

    /// Whether applying the plan would change anything.
    pub fn has_changes(&self) -> bool {
        use containers::ContainerAction::{ImageOnly, Unchanged};
        self.to_build() > 0 || self.containers.iter().any(|c| !matches!(c.action, Unchanged | ImageOnly))
    }
}

/// Plans `resolution` for `project`; `cached` answers whether the store holds
/// a node's layer.
pub fn plan(project: &str, resolution: &Resolution, cached: &dyn Fn(&CacheKey) -> bool) -> Plan {
    let graph = &resolution.graph;
    let nodes = graph
        .topological()
        .into_iter()
        .map(|i| {
            let node = graph.node(i);
            let action = if cached(&node.key) {
                NodeAction::Cached
            } else {
                NodeAction::Build("not in the store's cache".to_owned())
            };
            NodePlan {
                key: node.key,
                parent: graph.parent(i).map(|p| graph.node(p).key),
                step: node.step.clone(),
                envs: node.envs.clone(),
                action,
            }
        })
        .collect();
    let envs = resolution
        .specs
        .iter()
        .map(|(name, spec)| {
            let chain = graph.chain(name).into_iter().map(|i| graph.node(i).key).collect();
            (name.clone(), EnvPlan { nodes: chain, spec: spec.clone() })
        })
        .collect();
    Plan { project: project.to_owned(), nodes, envs, containers: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolution(text: &str) -> Resolution {
        crate::resolve::resolve_text(text)
    }

    const SHARED: &str = r#"
        [env.base]
        image = "scratch"
        run = ["echo base"]
        [env.a]
        from = "base"
        run = ["echo a"]
        [env.b]
        from = "base"
        run = ["echo b"]
    "#;

    #[test]
    fn shared_nodes_appear_once_parents_first() {
        let p = plan("t", &resolution(SHARED), &|_| false);
        assert_eq!(p.nodes.len(), 4, "scratch, base run, a run, b run");
        let root = &p.nodes[0];
        assert_eq!(root.envs, ["a", "b", "base"]);
        for (i, n) in p.nodes.iter().enumerate() {
            if let Some(parent) = n.parent {
                assert!(p.nodes[..i].iter().any(|m| m.key == parent), "parent before child");
            }
        }
        assert_eq!(p.envs["a"].nodes[..2], p.envs["b"].nodes[..2]);
        assert_eq!(p.to_build(), 4);
    }

    #[test]
    fn cached_nodes_are_not_built() {
        let r = resolution(SHARED);
        let base_key = r.graph.node(r.graph.roots()[0]).key;
        let p = plan("t", &r, &|k| *k == base_key);
        assert_eq!(p.to_build(), 3);
        assert_eq!(p.nodes[0].action, NodeAction::Cached);
        let all = plan("t", &r, &|_| true);
        assert!(!all.has_changes());
    }

    #[test]
    fn same_steps_in_two_envs_share_keys_and_different_steps_do_not() {
        let p = plan("t", &resolution(SHARED), &|_| false);
        assert_ne!(p.envs["a"].spec.image, p.envs["b"].spec.image);
        let twins = resolution(
            "[env.x]\nimage = \"scratch\"\nrun = [\"true\"]\n[env.y]\nimage = \"scratch\"\nrun = [\"true\"]\n",
        );
        assert_eq!(twins.graph.len(), 2);
        assert_eq!(twins.specs["x"].image, twins.specs["y"].image);
    }
}
