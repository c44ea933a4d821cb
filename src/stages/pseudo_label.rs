//! `pseudo_label`: stage 6. Each caption with more than one detected person gets the
//! summarizer's interaction: `[NAME]`s become Adam, Bob, Cindy, … (cyclically), the
//! source is `summarize: ` + caption, and beam search decodes with t5-base's
//! summarization settings and the paper's lengths (4 beams, length penalty 2.0,
//! no-repeat-ngram 3, min length 1, max length 20), a batch of captions at a time.

use super::io::{Caption, PseudoLabel, read_jsonl, write_jsonl};
use super::train_summarizer::encode_eos;
use super::train_tokenizer::backend;
use crate::context::StageContext;
use crate::models::generate::{BeamOptions, Seq2Seq, beam_search_batch};
use crate::models::t5::T5;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::text::names::{PSEUDO_LABEL_NAMES, fill_names};
use crate::text::tokenizer::Tokenizer;
use crate::types::ArtifactType;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

pub struct PseudoLabelKind;

#[derive(Default, Serialize, Deserialize)]
struct Done {
    labels: Vec<PseudoLabel>,
}

impl StageKind for PseudoLabelKind {
    fn name(&self) -> &'static str {
        "pseudo_label"
    }
    fn version(&self) -> u32 {
        5
    }
    fn about(&self) -> &'static str {
        "stage 6: the summarizer labels every caption with more than one person"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::int("num_beams", 4, "beam width").range(1.0, 256.0),
            ParamSpec::float(
                "length_penalty",
                2.0,
                "beam score = logprob / length^penalty",
            )
            .range(-100.0, 100.0),
            ParamSpec::int(
                "no_repeat_ngram",
                3,
                "no n-gram of this size repeats (0: off)",
            )
            .range(0.0, 100.0),
            ParamSpec::int(
                "min_length",
                1,
                "decoder length at least (start token counted)",
            )
            .range(0.0, 10_000.0),
            ParamSpec::int(
                "max_length",
                20,
                "decoder length at most (start token counted)",
            )
            .range(2.0, 10_000.0),
            ParamSpec::int(
                "min_persons",
                2,
                "captions with fewer detected persons are skipped",
            )
            .range(0.0, 1000.0),
            ParamSpec::string("prefix", "summarize: ", "text put before each caption"),
            ParamSpec::int("max_source", 1024, "source tokens kept")
                .range(2.0, 1e6)
                .unit("tokens"),
            ParamSpec::int("batch", 32, "captions decoded together").range(1.0, 4096.0),
            ParamSpec::int(
                "checkpoint_every",
                512,
                "captions between resumable checkpoints",
            )
            .range(1.0, 1e9),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "model",
                ArtifactType::Summarizer,
                "the summarizer (stage 5)",
            ),
            PortSpec::new(
                "captions",
                ArtifactType::Captions,
                "captions to label, persons as [NAME]",
            ),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "labels",
            ArtifactType::PseudoLabels,
            "JSONL {id, caption, label, weight = 1}",
        )]
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let kind = backend(ctx)?;
        crate::with_backend!(kind, B, _AD => run_stage::<B>(ctx))
    }
}

fn run_stage<B: Backend>(ctx: &mut StageContext) -> anyhow::Result<()> {
    let dev: B::Device = Default::default();
    let p = ctx.params.clone();
    let min_persons = p.int("min_persons") as u32;
    let items: Vec<Caption> = read_jsonl::<Caption>(ctx.input("captions")?)?
        .into_iter()
        .filter(|c| c.persons >= min_persons)
        .collect();
    let dir = ctx.input("model")?.to_path_buf();
    let (model, cfg) = T5::<B>::load(&dir, &dev)?;
    let tok = Tokenizer::load(&dir)?;
    let eos = cfg.eos_token_id;
    let opts = BeamOptions {
        num_beams: p.int("num_beams") as usize,
        max_new_tokens: (p.int("max_length") as usize).saturating_sub(1).max(1),
        min_length: p.int("min_length") as usize,
        length_penalty: p.float("length_penalty") as f32,
        no_repeat_ngram: p.int("no_repeat_ngram") as usize,
        early_stopping: true,
        eos,
    };
    let prefix = p.str("prefix").to_string();
    let max_s = p.int("max_source") as usize;
    let batch = p.int("batch") as usize;
    let every = p.int("checkpoint_every") as usize;
    let mut done: Done = ctx.load_checkpoint("labelled")?.unwrap_or_default();
    ctx.progress().start(items.len() as u64, "captions");
    let mut since_save = 0;
    while done.labels.len() < items.len() {
        let chunk = &items[done.labels.len()..(done.labels.len() + batch).min(items.len())];
        let sources: Vec<Vec<u32>> = chunk
            .iter()
            .map(|c| {
                let text = format!("{prefix}{}", fill_names(&c.caption, PSEUDO_LABEL_NAMES));
                encode_eos(&tok, &text, eos, max_s)
            })
            .collect::<anyhow::Result<_>>()?;
        let s2s = Seq2Seq::from_sources(&model, &sources, &dev)?;
        let starts = vec![vec![cfg.decoder_start()]; sources.len()];
        let hyps = beam_search_batch(&s2s, &starts, &opts, &dev)?;
        for (c, h) in chunk.iter().zip(hyps) {
            let best = h.first().map(|h| &h.tokens[1..]).unwrap_or(&[]);
            done.labels.push(PseudoLabel {
                id: c.id.clone(),
                caption: c.caption.clone(),
                label: tok.decode(best)?.trim().to_string(),
                weight: 1.0,
            });
        }
        ctx.progress().set_position(done.labels.len() as u64);
        since_save += chunk.len();
        if since_save >= every && done.labels.len() < items.len() {
            ctx.save_checkpoint("labelled", &done)?;
            since_save = 0;
        }
    }
    write_jsonl(ctx.output("labels")?, &done.labels)?;
    let mut distinct: Vec<&str> = done.labels.iter().map(|l| l.label.as_str()).collect();
    distinct.sort();
    distinct.dedup();
    ctx.figure("captions", items.len() as f64);
    ctx.figure("labels", done.labels.len() as f64);
    ctx.figure("distinct_labels", distinct.len() as f64);
    Ok(())
}
