//! Provenance records: one JSON file per completed stage, named by its cache key. Writing
//! the record is the commit point of a stage: outputs are published first, so a record
//! never names an object that was not fully written.

use super::hash::{Digest, ObjectKind};
use crate::registry::Figures;
use crate::types::ArtifactType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputRecord {
    pub digest: Digest,
    /// Where it came from: `stage.port` or `file:relative/path`.
    pub from: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputRecord {
    pub digest: Digest,
    pub size: u64,
    pub object: ObjectKind,
    #[serde(rename = "type")]
    pub ty: ArtifactType,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub format: u32,
    pub key: Digest,
    pub stage: String,
    pub pipeline: String,
    pub kind: String,
    pub version: u32,
    /// Canonical parameter values, as they entered the key.
    pub params: BTreeMap<String, String>,
    pub inputs: BTreeMap<String, InputRecord>,
    pub outputs: BTreeMap<String, OutputRecord>,
    pub seed: u64,
    pub backend: String,
    pub device: String,
    /// The kernel class the stage computed with (`cpu-x86-64-v4`, `cuda`, …; see
    /// `backend::kernel_class`); empty for stages that run no tensor code, and in records
    /// written before it existed.
    #[serde(default)]
    pub kernel: String,
    pub hhi_version: String,
    pub started: String,
    pub finished: String,
    pub duration_s: f64,
    pub peak_rss_bytes: Option<u64>,
    pub figures: Figures,
    /// The Slurm job the stage ran as (`executor = "slurm"`); absent for local stages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<crate::slurm::SlurmRun>,
}
