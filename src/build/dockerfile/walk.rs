//! The order a Dockerfile's nodes are built in: stage after stage in
//! dependency levels ([`crate::dockerfile::Expanded::levels`]); the stages
//! of one level need none of each other, so they are built side by side,
//! as many at once as the machine has CPUs, each stage's nodes one after
//! the other. A node two such stages share (the same key) is built once:
//! a worker holds the key's lock while it looks the node up or builds it,
//! and the other finds it done. Everything a node reads (its ancestors,
//! the stages it copies or mounts from) is of its own stage or of a lower
//! level, so it is complete before the node starts.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use petgraph::graph::NodeIndex;

use super::{Builder, DockerBuildError};
use crate::build::engine::Event;
use crate::dockerfile::error::Pos;
use crate::dockerfile::expand::Base as FromBase;
use crate::resolve::CacheKey;
use crate::store::CacheEntry;

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Builder<'_> {
    /// The cache entry of a node built or found earlier in this build.
    pub(super) fn entry(&self, key: &CacheKey) -> CacheEntry {
        locked(&self.entries).get(key).cloned().expect("a node is built after the nodes it reads")
    }

    /// Builds every node the store has no cache entry for (every node with
    /// `--no-cache`).
    pub(super) fn build_all(&self, progress: &(dyn Fn(Event) + Sync)) -> Result<(), DockerBuildError> {
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        for level in &self.expanded.levels {
            let stages: Vec<usize> =
                level.iter().filter_map(|i| self.expanded.stages.iter().position(|s| s.index == *i)).collect();
            for chunk in stages.chunks(jobs) {
                if let [n] = chunk {
                    self.build_stage(*n, progress)?;
                    continue;
                }
                let results: Vec<Result<(), DockerBuildError>> = std::thread::scope(|s| {
                    let handles: Vec<_> =
                        chunk.iter().map(|&n| s.spawn(move || self.build_stage(n, progress))).collect();
                    handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
                });
                for r in results {
                    r?;
                }
            }
        }
        Ok(())
    }

    /// Builds the nodes of stage `n` (an index into the expanded stages).
    fn build_stage(&self, n: usize, progress: &(dyn Fn(Event) + Sync)) -> Result<(), DockerBuildError> {
        let stage = &self.expanded.stages[n];
        let nodes = &self.graph.stages[n];
        let mut todo: Vec<(NodeIndex, Pos, Option<usize>)> = Vec::new();
        if !matches!(stage.base, FromBase::Stage(_)) {
            todo.push((nodes.root, stage.pos, None));
        }
        for (i, made) in nodes.steps.iter().enumerate() {
            if let Some(node) = made {
                todo.push((*node, stage.steps[i].pos, Some(i)));
            }
        }
        for (node, pos, step) in todo {
            self.build_node(n, node, pos, step, progress)?;
        }
        Ok(())
    }

    fn build_node(
        &self,
        n: usize,
        node: NodeIndex,
        pos: Pos,
        step: Option<usize>,
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<(), DockerBuildError> {
        let graph = &self.graph.graph;
        let key = graph.node(node).key;
        let slot = Arc::clone(locked(&self.building).entry(key).or_default());
        let _building = locked(&slot);
        if locked(&self.entries).contains_key(&key) {
            return Ok(());
        }
        let the_step = graph.node(node).step.clone();
        if !self.req.no_cache
            && let Some(entry) = self.store.cache_get(&key)?
        {
            self.store.cache_touch(&key)?;
            progress(Event::Cached { key, step: the_step });
            locked(&self.entries).insert(key, entry);
            self.cached.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        progress(Event::Started { key, step: the_step.clone() });
        let start = Instant::now();
        match self.node(n, node, pos, step) {
            Ok(entry) => {
                let bytes = entry.layers.iter().map(|l| l.size).sum();
                self.store.cache_put(&key, &entry)?;
                locked(&self.entries).insert(key, entry);
                self.built.fetch_add(1, Ordering::Relaxed);
                progress(Event::Built { key, step: the_step, took: start.elapsed(), bytes });
                Ok(())
            }
            Err(e) => {
                progress(Event::Failed { key, step: the_step });
                Err(e)
            }
        }
    }
}
