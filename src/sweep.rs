//! A sweep as one graph: the variants of a pipeline merged so that a stage they share
//! (same kind, version, parameters, seed, and inputs that are themselves shared or the
//! same file) is one node. The scheduler then runs every variant concurrently where the
//! jobs allow, and each shared stage once, instead of one variant after another.
//!
//! Sharing is decided before anything runs, from the pipeline's structure: it is what the
//! cache key will be up to the input digests, which shared inputs make equal.

use crate::graph::Dag;
use crate::pipeline::{InputSource, Pipeline, Stage};
use std::collections::HashMap;

/// The merged graph and, per variant, its stages' indices in it (by the variant's own
/// stage index).
pub struct Merged {
    pub pipeline: Pipeline,
    pub members: Vec<Vec<usize>>,
}

pub fn merge(variants: &[&Pipeline]) -> anyhow::Result<Merged> {
    let Some(first) = variants.first() else {
        anyhow::bail!("a sweep needs at least one variant");
    };
    let mut by_sig: HashMap<blake3::Hash, usize> = HashMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    // The variant each merged stage was taken from, whose names its edges use.
    let mut taken_from: Vec<usize> = Vec::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (v, p) in variants.iter().enumerate() {
        let mut sig: Vec<Option<blake3::Hash>> = vec![None; p.stages.len()];
        let mut idx = vec![usize::MAX; p.stages.len()];
        for &i in &p.order {
            let st = &p.stages[i];
            let mut h = blake3::Hasher::new();
            h.update(st.kind.name().as_bytes());
            h.update(&st.kind.version().to_le_bytes());
            h.update(&st.seed.to_le_bytes());
            h.update(serde_json::to_string(&st.params.canonical())?.as_bytes());
            for (port, input) in &st.inputs {
                h.update(port.as_bytes());
                match &input.source {
                    InputSource::Edge { stage, port } => {
                        let u = p
                            .stage_index(stage)
                            .ok_or_else(|| anyhow::anyhow!("no stage `{stage}`"))?;
                        let s = sig[u].ok_or_else(|| {
                            anyhow::anyhow!("`{stage}` is not before `{}`", st.name)
                        })?;
                        h.update(b"edge");
                        h.update(s.as_bytes());
                        h.update(port.as_bytes());
                    }
                    InputSource::File { abs, .. } => {
                        h.update(b"file");
                        h.update(abs.as_os_str().as_encoded_bytes());
                    }
                }
            }
            let s = h.finalize();
            let c = *by_sig.entry(s).or_insert_with(|| {
                taken_from.push(v);
                stages.push(st.clone());
                stages.len() - 1
            });
            sig[i] = Some(s);
            idx[i] = c;
        }
        members.push(idx);
    }
    // The graph is by index: the copies of a stage keep its name (records and their
    // inputs' `from` read exactly as in a run of the variant alone), and a stage's upstream
    // stages, all from one variant, still have distinct names.
    let mut edges = Vec::new();
    for (c, st) in stages.iter().enumerate() {
        let v = taken_from[c];
        let p = variants[v];
        for input in st.inputs.values() {
            if let InputSource::Edge { stage, .. } = &input.source {
                let u = members[v][p.stage_index(stage).expect("checked above")];
                edges.push((u, c));
            }
        }
    }
    let dag = Dag::new(stages.len(), edges);
    let order = dag
        .topo_order()
        .map_err(|_| anyhow::anyhow!("the merged sweep has a cycle"))?;
    Ok(Merged {
        pipeline: Pipeline {
            path: first.path.clone(),
            dir: first.dir.clone(),
            name: first.name.clone(),
            seed: first.seed,
            backend: first.backend.clone(),
            remote: first.remote.clone(),
            stages,
            dag,
            order,
        },
        members,
    })
}
