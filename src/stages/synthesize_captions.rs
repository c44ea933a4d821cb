//! `synthesize_captions`: stage 3. A causal LM writes a caption for a generated
//! interaction after `shots` examples drawn from the training captions of the target
//! corpus, each with the interaction the stage-1 parser reads in it; `[NAME]`s become
//! random real first names (the same names, in order, in a shot's caption and its
//! interaction). An output is kept if it contains every name of its interaction as a word
//! token.
//!
//! The prompt template file holds one shot with `{interaction}` and `{caption}`; the query
//! after the shots is the template up to `{caption}`. Attempt `i` depends only on (stage
//! seed, i), and a killed run resumes from what its work folder holds.

use super::generate_interactions::{GenState, attempt_rng, generate_lines, sampling_params};
use super::io::{Caption, Interaction, Pair, read_jsonl, read_text, write_jsonl};
use super::train_lm::load_lm;
use super::train_tokenizer::backend;
use crate::context::StageContext;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::text::extract::extract_interactions;
use crate::text::filters::{accept_caption, render_caption_shot};
use crate::text::names::{FIRST_NAMES, fill_names, names_used};
use crate::types::ArtifactType;
use burn::prelude::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub struct SynthesizeCaptions;

impl StageKind for SynthesizeCaptions {
    fn name(&self) -> &'static str {
        "synthesize_captions"
    }
    fn version(&self) -> u32 {
        6
    }
    fn about(&self) -> &'static str {
        "stage 3: an LM writes captions for generated interactions, after few-shot examples from real captions"
    }
    fn params(&self) -> Vec<ParamSpec> {
        let mut p = sampling_params(0.7);
        p.push(ParamSpec::int("shots", 10, "examples in each prompt").range(0.0, 1000.0));
        p.push(ParamSpec::list(
            "name_pool",
            &[],
            "first names to fill the interactions with (empty: the built-in list of common \
             first names, as the paper); the toy pipeline narrows it to names its small LM has seen",
        ));
        p.push(ParamSpec::string(
            "split",
            "train",
            "captions of this split are the examples (\"\": every split)",
        ));
        p
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new("lm", ArtifactType::CausalLm, "the language model (GPT-Neo)"),
            PortSpec::new(
                "interactions",
                ArtifactType::Interactions,
                "interactions to caption (stage 2)",
            ),
            PortSpec::new(
                "captions",
                ArtifactType::Captions,
                "captions of the target corpus, the source of the examples",
            ),
            PortSpec::new(
                "prompt",
                ArtifactType::Any,
                "template of one example: `{interaction}` and `{caption}`",
            ),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "pairs",
                ArtifactType::SyntheticPairs,
                "JSONL {caption, interaction, names} with real first names",
            ),
            PortSpec::new("stats", ArtifactType::Stats, "attempts and acceptance rate"),
        ]
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let kind = backend(ctx)?;
        crate::with_backend!(kind, B, _AD => run_stage::<B>(ctx))
    }
}

/// `n` distinct random first names from `pool`.
fn random_names<'a>(rng: &mut ChaCha8Rng, pool: &[&'a str], n: usize) -> Vec<&'a str> {
    rand::seq::index::sample(rng, pool.len(), n.min(pool.len()))
        .iter()
        .map(|i| pool[i])
        .collect()
}

fn run_stage<B: Backend>(ctx: &mut StageContext) -> anyhow::Result<()> {
    let dev: B::Device = Default::default();
    let custom: Vec<String> = ctx.params.list("name_pool").to_vec();
    let pool: Vec<&str> = if custom.is_empty() {
        FIRST_NAMES.to_vec()
    } else {
        custom.iter().map(String::as_str).collect()
    };
    anyhow::ensure!(pool.len() >= 2, "`name_pool` needs at least two names");
    let template = read_text(ctx.input("prompt")?)?;
    let Some(cut) = template.find("{caption}") else {
        anyhow::bail!("the prompt template has no `{{caption}}` placeholder");
    };
    anyhow::ensure!(
        template[..cut].contains("{interaction}"),
        "the prompt template has no `{{interaction}}` before `{{caption}}`"
    );
    let query = &template[..cut];
    let split = ctx.params.str("split").to_string();
    // The examples: captions whose parse yields an interaction (its first one).
    let shots: Vec<(String, String)> = read_jsonl::<Caption>(ctx.input("captions")?)?
        .into_iter()
        .filter(|c| split.is_empty() || c.split == split)
        .filter_map(|c| {
            extract_interactions(&c.caption)
                .into_iter()
                .next()
                .map(|i| (i, c.caption))
        })
        .collect();
    let k = ctx.params.int("shots") as usize;
    anyhow::ensure!(
        k == 0 || !shots.is_empty(),
        "no caption of split `{split}` states an interaction the parser reads: no examples for the prompt"
    );
    let k = k.min(shots.len());
    let wanted: Vec<String> = read_jsonl::<Interaction>(ctx.input("interactions")?)?
        .into_iter()
        .map(|i| i.interaction)
        .filter(|i| i.matches("[NAME]").count() >= 2)
        .collect();
    if wanted.is_empty() {
        tracing::warn!("synthesize_captions: no interaction with two or more [NAME]s to caption");
    }
    let (model, cfg, tok) = load_lm::<B>(ctx.input("lm")?, &dev)?;
    let p = ctx.params.clone();
    let count = p.int("count") as usize;
    let max_attempts = match p.int("max_attempts") {
        0 => 50 * count as u64,
        n => n as u64,
    };
    let batch = p.int("batch") as u64;
    let every = p.int("checkpoint_every") as u64;
    let mut st: GenState<Pair> = ctx.load_checkpoint("synthesized")?.unwrap_or_default();
    ctx.progress().start(count as u64, "captions");
    ctx.progress().set_position(st.accepted.len() as u64);
    let mut since_save = 0;
    while !wanted.is_empty() && st.accepted.len() < count && st.attempts < max_attempts {
        let n = batch.min(max_attempts - st.attempts);
        let streams: Vec<u64> = (st.attempts..st.attempts + n).collect();
        let mut prompts = Vec::new();
        let mut queries = Vec::new();
        for &i in &streams {
            let mut rng = attempt_rng(ctx.seed, i);
            let mut prompt = String::new();
            for j in rand::seq::index::sample(&mut rng, shots.len(), k).iter() {
                let (inter, cap) = &shots[j];
                let n = cap
                    .matches("[NAME]")
                    .count()
                    .max(inter.matches("[NAME]").count());
                let names = random_names(&mut rng, &pool, n);
                prompt.push_str(&render_caption_shot(
                    &template,
                    &fill_names(inter, &names),
                    &fill_names(cap, &names),
                ));
            }
            let inter = &wanted[rng.random_range(0..wanted.len())];
            let names = random_names(&mut rng, &pool, inter.matches("[NAME]").count());
            let filled = fill_names(inter, &names);
            prompt.push_str(&query.replace("{interaction}", &filled));
            let used = names_used(inter, &names);
            prompts.push(prompt);
            queries.push((filled, used));
        }
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
        for (line, (interaction, names)) in lines.into_iter().zip(queries) {
            st.attempts += 1;
            let Some(line) = line else {
                st.skipped_long += 1;
                continue;
            };
            let caption = line.trim().to_string();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            if accept_caption(&caption, &refs) {
                if st.accepted.len() < count {
                    st.accepted.push(Pair {
                        caption,
                        interaction,
                        names,
                        label: None,
                    });
                }
            } else {
                *st.rejected.entry("missing_name".into()).or_default() += 1;
            }
        }
        ctx.progress().set_position(st.accepted.len() as u64);
        since_save += n;
        if since_save >= every {
            ctx.save_checkpoint("synthesized", &st)?;
            since_save = 0;
        }
    }
    write_jsonl(ctx.output("pairs")?, &st.accepted)?;
    st.report(ctx, &[("example_pool", shots.len() as f64)])?;
    Ok(())
}
