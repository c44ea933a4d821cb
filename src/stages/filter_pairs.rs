//! `filter_pairs`: stage 4 a–g on the synthetic (caption, interaction) pairs. 4a (NLI with
//! a BART-MNLI checkpoint, premise = caption, hypothesis = interaction) runs when `nli`
//! names a checkpoint folder; b–g are `text::filters::filter_pair_forms`. A kept pair gets
//! its target text in `label`; the stats hold how many pairs each rule removed.

use super::io::{Pair, optional_input, optional_path, read_jsonl, write_json, write_jsonl};
use super::train_tokenizer::backend;
use crate::context::StageContext;
use crate::models::bart::{BartClassifier, nli_scores};
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::text::filters::{FilterRule, filter_pair_forms, nli_accept};
use crate::text::tokenizer::Tokenizer;
use crate::types::ArtifactType;
use burn::prelude::*;
use std::collections::BTreeMap;

pub struct FilterPairs;

impl StageKind for FilterPairs {
    fn name(&self) -> &'static str {
        "filter_pairs"
    }
    fn version(&self) -> u32 {
        4
    }
    fn about(&self) -> &'static str {
        "stage 4: filters synthetic pairs (NLI, verb, forbidden words, capitals, persons, form) and writes their `_` targets"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![optional_path(
            "nli",
            "a BART-MNLI checkpoint folder for rule 4a (absent: 4a is off)",
        )]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "pairs",
            ArtifactType::SyntheticPairs,
            "synthetic pairs (stage 3)",
        )]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "pairs",
                ArtifactType::SyntheticPairs,
                "the kept pairs, each with its target `label`",
            ),
            PortSpec::new(
                "stats",
                ArtifactType::Stats,
                "the funnel: pairs in, removed per rule, kept",
            ),
        ]
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let pairs: Vec<Pair> = read_jsonl(ctx.input("pairs")?)?;
        let entail = match optional_input(ctx, "nli") {
            Some(dir) => {
                let kind = backend(ctx)?;
                Some(crate::with_backend!(kind, B, _AD => entailment::<B>(&dir, &pairs))?)
            }
            None => None,
        };
        let mut removed: BTreeMap<&'static str, usize> =
            FilterRule::ALL.iter().map(|r| (r.name(), 0)).collect();
        let mut kept = Vec::new();
        for (i, pair) in pairs.iter().enumerate() {
            let names: Vec<&str> = pair.names.iter().map(String::as_str).collect();
            let verdict = match &entail {
                Some(p) => nli_accept(p[i]),
                None => Ok(()),
            }
            .and_then(|()| filter_pair_forms(&pair.caption, &pair.interaction, &names));
            match verdict {
                Ok((_, target)) => kept.push(Pair {
                    label: Some(target),
                    ..pair.clone()
                }),
                Err(rule) => *removed.entry(rule.name()).or_default() += 1,
            }
        }
        write_jsonl(ctx.output("pairs")?, &kept)?;
        // The funnel in rule order: what each rule removed and what was left after it.
        let mut left = pairs.len();
        let funnel: Vec<serde_json::Value> = FilterRule::ALL
            .iter()
            .map(|r| {
                let n = removed[r.name()];
                left -= n;
                serde_json::json!({"rule": r.name(), "removed": n, "left": left})
            })
            .collect();
        let mut distinct: Vec<&str> = kept.iter().filter_map(|p| p.label.as_deref()).collect();
        distinct.sort();
        distinct.dedup();
        write_json(
            ctx.output("stats")?,
            &serde_json::json!({
                "input": pairs.len(),
                "nli": entail.is_some(),
                "removed": removed,
                "funnel": funnel,
                "kept": kept.len(),
                "distinct_labels": distinct.len(),
            }),
        )?;
        ctx.figure("input", pairs.len() as f64);
        for (rule, n) in &removed {
            ctx.figure(&format!("removed_{rule}"), *n as f64);
        }
        ctx.figure("kept", kept.len() as f64);
        ctx.figure("distinct_labels", distinct.len() as f64);
        Ok(())
    }
}

/// P(entailment) of each pair, premise = caption, hypothesis = interaction.
fn entailment<B: Backend>(dir: &std::path::Path, pairs: &[Pair]) -> anyhow::Result<Vec<f64>> {
    let texts: Vec<(&str, &str)> = pairs
        .iter()
        .map(|p| (p.caption.as_str(), p.interaction.as_str()))
        .collect();
    Ok(Nli::<B>::load(dir)?
        .scores(&texts)?
        .into_iter()
        .map(|s| s.entailment as f64)
        .collect())
}

/// A BART-MNLI checkpoint with its tokenizer, loaded once, scoring text pairs.
pub(crate) struct Nli<B: Backend> {
    model: BartClassifier<B>,
    cfg: crate::models::bart::BartConfig,
    tok: Tokenizer,
}

impl<B: Backend> Nli<B> {
    pub(crate) fn load(dir: &std::path::Path) -> anyhow::Result<Self> {
        let dev: B::Device = Default::default();
        let (model, cfg) = BartClassifier::<B>::load(dir, &dev)?;
        let tok = Tokenizer::load(dir)?;
        Ok(Nli { model, cfg, tok })
    }

    /// NLI probabilities of (premise, hypothesis) texts.
    pub(crate) fn scores(
        &self,
        pairs: &[(&str, &str)],
    ) -> anyhow::Result<Vec<crate::models::bart::NliScores>> {
        let cfg = &self.cfg;
        // `nli_scores` adds <s> and </s> itself.
        let bare = |text: &str| -> anyhow::Result<Vec<u32>> {
            let mut ids = self.tok.encode(text)?;
            if ids.first() == Some(&(cfg.bos_token_id)) {
                ids.remove(0);
            }
            if ids.last() == Some(&(cfg.eos_token_id)) {
                ids.pop();
            }
            Ok(ids)
        };
        let encoded: Vec<(Vec<u32>, Vec<u32>)> = pairs
            .iter()
            .map(|(p, h)| Ok((bare(p)?, bare(h)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(nli_scores(&self.model, cfg, &encoded, &Default::default()))
    }
}
