//! Stage kinds and the registry that maps a pipeline's `kind = "…"` to one.
//!
//! A kind declares its ports, parameters and an implementation version, and runs against a
//! [`StageContext`]. The built-in kinds are listed in `stages::builtin` (this module knows
//! none of them, so `registry` → `stages` → `context` has no cycle); a library user
//! registers their own with [`Registry::register`] (see `examples/custom_stage.rs`).

use crate::context::StageContext;
use crate::params::{ParamSpec, Params};
use crate::types::ArtifactType;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct PortSpec {
    pub name: String,
    pub ty: ArtifactType,
    pub doc: &'static str,
    /// An input the stage can do without (e.g. `evaluate`'s `labels`, which only adds a
    /// baseline); outputs are always written.
    pub optional: bool,
}

impl PortSpec {
    pub fn new(name: &str, ty: ArtifactType, doc: &'static str) -> Self {
        PortSpec {
            name: name.to_string(),
            ty,
            doc,
            optional: false,
        }
    }

    /// Marks an input port as optional.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
}

/// The resolved ports of one stage. Most kinds have fixed ports; some (like `command`)
/// derive them from their parameters.
#[derive(Debug, Clone, Default)]
pub struct Signature {
    pub inputs: Vec<PortSpec>,
    pub outputs: Vec<PortSpec>,
}

/// Summary figures a stage reports for its provenance record (items in/out, final loss…).
pub type Figures = BTreeMap<String, f64>;

pub trait StageKind: Send + Sync + 'static {
    /// The name used in `kind = "…"`.
    fn name(&self) -> &'static str;
    /// Bumped whenever the kind's outputs would change for the same inputs and parameters:
    /// it is part of every cache key, so a bump invalidates old results.
    fn version(&self) -> u32;
    /// One line for `hhi stages`.
    fn about(&self) -> &'static str;
    fn params(&self) -> Vec<ParamSpec>;
    fn inputs(&self) -> Vec<PortSpec> {
        Vec::new()
    }
    fn outputs(&self) -> Vec<PortSpec>;
    /// A table parameter whose entries are input ports of type `Any`, for kinds with a
    /// user-chosen set of inputs (`command`'s `inputs = { … }`).
    fn input_table(&self) -> Option<&'static str> {
        None
    }
    /// The stage's ports once its parameters are known. The default is the fixed ports.
    fn signature(&self, _params: &Params) -> Result<Signature, String> {
        Ok(Signature {
            inputs: self.inputs(),
            outputs: self.outputs(),
        })
    }
    /// Does the work: reads `ctx.input(..)`, writes every declared `ctx.output(..)`.
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()>;
}

#[derive(Clone)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Arc<dyn StageKind>>,
}

impl Registry {
    pub fn empty() -> Self {
        Registry {
            kinds: BTreeMap::new(),
        }
    }

    /// Adds a kind; a later registration under the same name replaces the earlier one.
    pub fn register(&mut self, kind: impl StageKind) -> &mut Self {
        self.kinds.insert(kind.name(), Arc::new(kind));
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn StageKind>> {
        self.kinds.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }

    pub fn kinds(&self) -> impl Iterator<Item = &Arc<dyn StageKind>> {
        self.kinds.values()
    }
}
