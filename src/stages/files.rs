//! `files`: imports a file or folder from disk as an artifact, hashed by content.

use crate::context::StageContext;
use crate::params::{ParamSpec, ParamType, Params};
use crate::registry::{PortSpec, Signature, StageKind};
use crate::store::fsutil::link_or_copy_all;
use crate::types::ArtifactType;
use anyhow::Context;

pub struct Files;

impl StageKind for Files {
    fn name(&self) -> &'static str {
        "files"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "imports a file or a folder from disk as an artifact (hashed by content, not by path or mtime)"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::required(
                "path",
                ParamType::Path,
                "the file or folder to import, relative to the pipeline file",
            ),
            ParamSpec::one_of(
                "as",
                ArtifactType::NAMES,
                "Blob",
                "the artifact type the import is declared as",
            ),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "out",
            ArtifactType::Blob,
            "the imported content (type set by `as`)",
        )]
    }
    fn signature(&self, params: &Params) -> Result<Signature, String> {
        let ty: ArtifactType = params.str("as").parse()?;
        if ty == ArtifactType::Any {
            return Err("`as` names the type of what is imported; `Any` is only for inputs".into());
        }
        Ok(Signature {
            inputs: vec![],
            outputs: vec![PortSpec::new("out", ty, "the imported content")],
        })
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let src = ctx.input("path")?.to_path_buf();
        let dst = ctx.output("out")?.to_path_buf();
        // The engine already imported the path into the store (that is how its content
        // entered the key); the output is that same content, so links suffice.
        link_or_copy_all(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        let size = crate::store::fsutil::disk_size(&dst);
        ctx.figure("bytes", size as f64);
        Ok(())
    }
}
