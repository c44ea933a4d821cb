//! `generate_interactions`: stage 2. A causal LM continues prompts of 10 random seed
//! interactions (names replaced by dummy names, one a line) and the new line it writes is
//! kept if it passes the acceptance checks of `text::filters::accept_interaction`.
//!
//! The prompt is a template file (`prompt = { file = "prompts/interactions.txt" }`) in which
//! `{seeds}` stands for the seed lines joined by newlines. Attempt `i` draws its seeds and
//! its sampling stream from (stage seed, i) alone, so the outputs do not depend on the
//! batch size, and a killed run resumes from the attempts it had saved in its work folder.

use super::io::{Interaction, read_jsonl, read_text, write_json, write_jsonl};
use super::train_lm::load_lm;
use super::train_tokenizer::{backend, generated_line, line_stops};
use crate::context::StageContext;
use crate::models::generate::{SampleOptions, sample_streams};
use crate::models::gpt_neo::GptNeo;
use crate::params::{ParamSpec, Params};
use crate::registry::{PortSpec, StageKind};
use crate::text::filters::{accept_interaction, seed_with_dummy_names};
use crate::text::tokenizer::Tokenizer;
use crate::types::ArtifactType;
use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub struct GenerateInteractions;

/// The sampling parameters shared by stages 2 and 3 (paper defaults differ only in the
/// temperature).
pub(crate) fn sampling_params(temperature: f64) -> Vec<ParamSpec> {
    vec![
        ParamSpec::int("count", 1000, "accepted outputs wanted").range(1.0, 1e9),
        ParamSpec::int(
            "max_attempts",
            0,
            "give up after this many prompts (0: 50 × count)",
        )
        .range(0.0, 1e12),
        ParamSpec::float("top_p", 0.95, "nucleus sampling mass").range(0.0, 1.0),
        ParamSpec::float("temperature", temperature, "sampling temperature (0: greedy)")
            .range(0.0, 100.0),
        ParamSpec::int("no_repeat_ngram", 3, "no n-gram of this size repeats (0: off)")
            .range(0.0, 100.0),
        ParamSpec::int("max_new_tokens", 200, "tokens generated at most per prompt")
            .range(1.0, 100_000.0)
            .unit("tokens"),
        ParamSpec::int(
            "max_prompt_tokens",
            2048,
            "prompts this long or longer are skipped (also those that leave no room in the model's context)",
        )
        .range(1.0, 1e9)
        .unit("tokens"),
        ParamSpec::int("batch", 16, "prompts generated together").range(1.0, 4096.0),
        ParamSpec::int("checkpoint_every", 64, "attempts between resumable checkpoints")
            .range(1.0, 1e9),
    ]
}

/// The options of one sampling call.
pub(crate) fn sample_options(p: &Params, seed: u64, stops: &[u32]) -> SampleOptions {
    SampleOptions {
        max_new_tokens: p.int("max_new_tokens") as usize,
        min_new_tokens: 0,
        temperature: p.float("temperature") as f32,
        top_p: p.float("top_p") as f32,
        no_repeat_ngram: p.int("no_repeat_ngram") as usize,
        stop_tokens: stops.to_vec(),
        seed,
        selection: Default::default(),
    }
}

/// An independent random stream for attempt `i` of a stage.
pub(crate) fn attempt_rng(seed: u64, i: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(i);
    r
}

/// What a generating stage has done so far; saved in its work folder.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct GenState<T> {
    pub attempts: u64,
    pub accepted: Vec<T>,
    pub rejected: BTreeMap<String, u64>,
    pub skipped_long: u64,
}

impl<T> Default for GenState<T> {
    fn default() -> Self {
        GenState {
            attempts: 0,
            accepted: Vec::new(),
            rejected: BTreeMap::new(),
            skipped_long: 0,
        }
    }
}

impl<T> GenState<T> {
    /// Writes the `stats` output (attempts, acceptance rate among prompts that fit, the
    /// rejections per reason, plus `extra`) and the same numbers as figures.
    pub(crate) fn report(
        &self,
        ctx: &mut StageContext,
        extra: &[(&str, f64)],
    ) -> anyhow::Result<()> {
        let tried = self.attempts - self.skipped_long;
        let rate = self.accepted.len() as f64 / tried.max(1) as f64;
        let mut stats = serde_json::json!({
            "attempts": self.attempts,
            "skipped_too_long": self.skipped_long,
            "accepted": self.accepted.len(),
            "acceptance_rate": rate,
            "rejected": self.rejected,
        });
        for (k, v) in extra {
            stats[*k] = serde_json::json!(v);
        }
        write_json(ctx.output("stats")?, &stats)?;
        ctx.figure("accepted", self.accepted.len() as f64);
        ctx.figure("attempts", self.attempts as f64);
        ctx.figure("acceptance_rate", rate);
        for (k, v) in extra {
            ctx.figure(k, *v);
        }
        Ok(())
    }
}

/// One generated line per prompt (`None` for a prompt that was skipped as too long).
/// Prompt `k` samples from its own stream `streams[k]`, so its line does not depend on the
/// other prompts of the batch (except through the room left in the context).
#[allow(clippy::too_many_arguments)]
pub(crate) fn generate_lines<B: Backend>(
    model: &GptNeo<B>,
    context: usize,
    tok: &Tokenizer,
    prompts: &[String],
    streams: &[u64],
    p: &Params,
    seed: u64,
    dev: &B::Device,
) -> anyhow::Result<Vec<Option<String>>> {
    let stops = line_stops(tok);
    let limit = (p.int("max_prompt_tokens") as usize).min(context);
    let mut out: Vec<Option<String>> = vec![None; prompts.len()];
    let mut rows = Vec::new();
    let mut row_streams = Vec::new();
    let mut at = Vec::new();
    for (k, (prompt, &stream)) in prompts.iter().zip(streams).enumerate() {
        let ids = tok.encode(prompt)?;
        if !ids.is_empty() && ids.len() < limit {
            rows.push(ids);
            row_streams.push(stream);
            at.push(k);
        }
    }
    if rows.is_empty() {
        return Ok(out);
    }
    let longest = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut o = sample_options(p, seed, &stops);
    o.max_new_tokens = o.max_new_tokens.min(context - longest);
    let done = sample_streams(model, &rows, &row_streams, &o, dev)?;
    for ((k, prompt), full) in at.into_iter().zip(&rows).zip(done) {
        out[k] = Some(generated_line(tok, &full[prompt.len()..], &stops)?);
    }
    Ok(out)
}

impl StageKind for GenerateInteractions {
    fn name(&self) -> &'static str {
        "generate_interactions"
    }
    fn version(&self) -> u32 {
        6
    }
    fn about(&self) -> &'static str {
        "stage 2: an LM writes new interactions from prompts of seed interactions"
    }
    fn params(&self) -> Vec<ParamSpec> {
        let mut p = sampling_params(1.0);
        p.push(
            ParamSpec::int("seeds_per_prompt", 10, "seed interactions in each prompt")
                .range(1.0, 1000.0),
        );
        p
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new("lm", ArtifactType::CausalLm, "the language model (GPT-Neo)"),
            PortSpec::new(
                "seeds",
                ArtifactType::Interactions,
                "seed interactions (stage 1)",
            ),
            PortSpec::new(
                "prompt",
                ArtifactType::Any,
                "prompt template file: `{seeds}` = the seed lines",
            ),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "interactions",
                ArtifactType::Interactions,
                "accepted interactions, persons as [NAME] (caption \"\")",
            ),
            PortSpec::new(
                "stats",
                ArtifactType::Stats,
                "attempts, acceptance rate, rejections per reason",
            ),
        ]
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let kind = backend(ctx)?;
        crate::with_backend!(kind, B, _AD => run_stage::<B>(ctx))
    }
}

fn run_stage<B: Backend>(ctx: &mut StageContext) -> anyhow::Result<()> {
    let dev: B::Device = Default::default();
    let template = read_text(ctx.input("prompt")?)?;
    anyhow::ensure!(
        template.contains("{seeds}"),
        "the prompt template has no `{{seeds}}` placeholder"
    );
    let mut seeds: Vec<String> = read_jsonl::<Interaction>(ctx.input("seeds")?)?
        .into_iter()
        .map(|s| s.interaction)
        .filter(|s| s.contains("[NAME]"))
        .collect();
    seeds.sort();
    seeds.dedup();
    anyhow::ensure!(!seeds.is_empty(), "no seed interactions to prompt with");
    let (model, cfg, tok) = load_lm::<B>(ctx.input("lm")?, &dev)?;
    let p = ctx.params.clone();
    let count = p.int("count") as usize;
    let max_attempts = match p.int("max_attempts") {
        0 => 50 * count as u64,
        n => n as u64,
    };
    let k = (p.int("seeds_per_prompt") as usize).min(seeds.len());
    let batch = p.int("batch") as u64;
    let every = p.int("checkpoint_every") as u64;
    let mut st: GenState<String> = ctx.load_checkpoint("generated")?.unwrap_or_default();
    ctx.progress().start(count as u64, "interactions");
    ctx.progress().set_position(st.accepted.len() as u64);
    let mut since_save = 0;
    while st.accepted.len() < count && st.attempts < max_attempts {
        let n = batch.min(max_attempts - st.attempts);
        let streams: Vec<u64> = (st.attempts..st.attempts + n).collect();
        let prompts: Vec<String> = streams
            .iter()
            .map(|&i| {
                let mut rng = attempt_rng(ctx.seed, i);
                let picked = rand::seq::index::sample(&mut rng, seeds.len(), k);
                let lines: Vec<String> = picked
                    .iter()
                    .map(|j| seed_with_dummy_names(&seeds[j]))
                    .collect();
                template.replace("{seeds}", &lines.join("\n"))
            })
            .collect();
        let lines = generate_lines(
            &model,
            cfg.max_position_embeddings,
            &tok,
            &prompts,
            &streams,
            &p,
            ctx.seed,
            &dev,
        )?;
        for line in lines {
            st.attempts += 1;
            match line {
                None => st.skipped_long += 1,
                Some(l) => match accept_interaction(&l) {
                    Ok(m) if st.accepted.len() < count => st.accepted.push(m),
                    Ok(_) => {}
                    Err(r) => *st.rejected.entry(r.name().to_string()).or_default() += 1,
                },
            }
        }
        ctx.progress().set_position(st.accepted.len() as u64);
        since_save += n;
        if since_save >= every {
            ctx.save_checkpoint("generated", &st)?;
            since_save = 0;
        }
    }
    let out: Vec<Interaction> = st
        .accepted
        .iter()
        .map(|i| Interaction {
            interaction: i.clone(),
            caption: String::new(),
        })
        .collect();
    write_jsonl(ctx.output("interactions")?, &out)?;
    let distinct = {
        let mut d = st.accepted.clone();
        d.sort();
        d.dedup();
        d.len()
    };
    st.report(
        ctx,
        &[("distinct", distinct as f64), ("seeds", seeds.len() as f64)],
    )?;
    if st.accepted.len() < count {
        tracing::warn!(
            "generate_interactions: only {} of {count} accepted after {} attempts",
            st.accepted.len(),
            st.attempts
        );
    }
    Ok(())
}
