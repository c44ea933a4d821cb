//! Adding your own stage kind through the library: a word counter that reports progress
//! and checkpoints, so a killed run resumes where it stopped.
//!
//! ```sh
//! cargo run --example custom_stage -- run examples/custom_stage.toml
//! cargo run --example custom_stage -- stages     # lists `word_count` beside the built-ins
//! ```

use hhi::{ArtifactType, ParamSpec, PortSpec, StageContext, StageKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

struct WordCount;

#[derive(Serialize, Deserialize, Default)]
struct State {
    line: usize,
    counts: BTreeMap<String, u64>,
}

impl StageKind for WordCount {
    fn name(&self) -> &'static str {
        "word_count"
    }
    // Bump when the output would change for the same inputs: old results are then stale.
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "counts words of at least `min_len` letters in a text file"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::int("min_len", 1, "shortest word counted")
                .range(1.0, 100.0)
                .unit("letters"),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new("text", ArtifactType::Text, "any UTF-8 text")]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "counts",
            ArtifactType::Metrics,
            "word → count, as JSON",
        )]
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(ctx.input("text")?)?;
        let lines: Vec<&str> = text.lines().collect();
        let min_len = ctx.params.int("min_len") as usize;
        // Resume from the last checkpoint of a run with the same cache key, if any.
        let mut state: State = ctx.load_checkpoint("state")?.unwrap_or_default();
        ctx.progress().start(lines.len() as u64, "lines");
        ctx.progress().set_position(state.line as u64);
        while state.line < lines.len() {
            for w in lines[state.line]
                .split_whitespace()
                .filter(|w| w.chars().count() >= min_len)
            {
                *state.counts.entry(w.to_lowercase()).or_default() += 1;
            }
            state.line += 1;
            ctx.progress().inc(1);
            if state.line.is_multiple_of(1000) {
                ctx.save_checkpoint("state", &state)?;
            }
        }
        std::fs::write(
            ctx.output("counts")?,
            serde_json::to_vec_pretty(&state.counts)?,
        )?;
        ctx.figure("items_in", lines.len() as f64);
        ctx.figure("items_out", state.counts.len() as f64);
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let mut registry = hhi::stages::builtin();
    registry.register(WordCount);
    hhi::cli::main(registry)
}
