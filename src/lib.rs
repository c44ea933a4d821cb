//! hhi: learn to describe human-human interactions from weak textual supervision, run as a
//! content-addressed DAG of typed stages.
//!
//! The library is the whole tool; the `hhi` binary is a thin shell over [`cli`]. To add
//! your own stage kind, implement [`registry::StageKind`] and register it (see
//! `examples/custom_stage.rs`).

pub mod audit;
pub mod backend;
pub mod cli;
pub mod context;
pub mod diag;
pub mod experiments;
pub mod gc;
pub mod graph;
pub mod key;
pub mod lockfile;
pub mod models;
pub mod overrides;
pub mod params;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod registry;
pub mod remote;
pub mod report;
pub mod scheduler;
pub mod show;
pub mod slurm;
pub mod stages;
pub mod store;
pub mod sweep;
pub mod text;
pub mod toy;
pub mod types;
pub mod vision;

pub use context::StageContext;
pub use params::{ParamSpec, ParamType, Params, Value};
pub use pipeline::Pipeline;
pub use registry::{PortSpec, Registry, Signature, StageKind};
pub use store::Store;
pub use types::ArtifactType;
