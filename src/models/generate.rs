//! Generation, one implementation for every decoder: greedy, seeded sampling (temperature,
//! top-p, no-repeat-ngram, min/max new tokens, stop token), Hugging Face-compatible beam
//! search, and the paper's captioner beam search.
//!
//! Models plug in through [`Decoder`]: a prefill over the prompt rows, then one token per
//! row per step with a cache, and a way to reorder the cache when beams are reshuffled.

use super::KvCache;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

pub trait Decoder<B: Backend> {
    type Cache;
    /// Runs the prompt (`[rows, t]`) and returns the last position's logits `[rows, vocab]`.
    fn prefill(&self, prompt: Tensor<B, 2, Int>) -> (Tensor<B, 2>, Self::Cache);
    /// Feeds one new token per row (`[rows, 1]`); returns logits `[rows, vocab]`.
    fn step(&self, tokens: Tensor<B, 2, Int>, cache: &mut Self::Cache) -> Tensor<B, 2>;
    /// Keeps cache rows `rows`, in that order.
    fn reorder(&self, cache: &mut Self::Cache, rows: Tensor<B, 1, Int>);
}

fn last<B: Backend>(logits: Tensor<B, 3>) -> Tensor<B, 2> {
    let [b, t, v] = logits.dims();
    logits.narrow(1, t - 1, 1).reshape([b, v])
}

macro_rules! causal_decoder {
    ($ty:ty) => {
        impl<B: Backend> Decoder<B> for $ty {
            type Cache = KvCache<B>;
            fn prefill(&self, prompt: Tensor<B, 2, Int>) -> (Tensor<B, 2>, KvCache<B>) {
                let mut cache = self.new_cache();
                let logits = self.forward(prompt, Some(&mut cache));
                (last(logits), cache)
            }
            fn step(&self, tokens: Tensor<B, 2, Int>, cache: &mut KvCache<B>) -> Tensor<B, 2> {
                last(self.forward(tokens, Some(cache)))
            }
            fn reorder(&self, cache: &mut KvCache<B>, rows: Tensor<B, 1, Int>) {
                cache.select(rows);
            }
        }
    };
}
causal_decoder!(super::gpt2::Gpt2<B>);
causal_decoder!(super::gpt_neo::GptNeo<B>);

/// A sequence-to-sequence model bound to the encoder output of one input (or one per
/// prompt row): generation runs its decoder.
pub struct Seq2Seq<'a, B: Backend> {
    pub model: &'a super::t5::T5<B>,
    pub enc: Tensor<B, 3>,
}

impl<B: Backend> Decoder<B> for Seq2Seq<'_, B> {
    type Cache = (super::t5::T5Cache<B>, Tensor<B, 3>);
    fn prefill(&self, prompt: Tensor<B, 2, Int>) -> (Tensor<B, 2>, Self::Cache) {
        let rows = prompt.dims()[0];
        let enc = if self.enc.dims()[0] == rows {
            self.enc.clone()
        } else {
            self.enc.clone().repeat_dim(0, rows)
        };
        let mut cache = self.model.new_cache();
        let logits = self.model.decode(prompt, &enc, Some(&mut cache));
        (last(logits), (cache, enc))
    }
    fn step(&self, tokens: Tensor<B, 2, Int>, cache: &mut Self::Cache) -> Tensor<B, 2> {
        last(self.model.decode(tokens, &cache.1, Some(&mut cache.0)))
    }
    fn reorder(&self, cache: &mut Self::Cache, rows: Tensor<B, 1, Int>) {
        cache.0.select(rows.clone());
        cache.1 = cache.1.clone().select(0, rows);
    }
}

fn ids_tensor<B: Backend>(rows: &[Vec<u32>], dev: &B::Device) -> Tensor<B, 2, Int> {
    let t = rows[0].len();
    assert!(
        rows.iter().all(|r| r.len() == t),
        "prompt rows must have equal length"
    );
    let flat: Vec<i64> = rows.iter().flatten().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), t]), dev)
}

fn rows_f32<B: Backend>(t: Tensor<B, 2>) -> Vec<Vec<f32>> {
    let [r, v] = t.dims();
    let flat = t.into_data().convert::<f32>().to_vec::<f32>().expect("f32");
    (0..r).map(|i| flat[i * v..(i + 1) * v].to_vec()).collect()
}

/// Tokens that would repeat an n-gram already in `seq` (HF's NoRepeatNGramLogitsProcessor).
pub fn banned_by_ngram(seq: &[u32], n: usize) -> Vec<u32> {
    if n == 0 || seq.len() + 1 < n {
        return Vec::new();
    }
    let prefix = &seq[seq.len() + 1 - n..];
    let mut banned = Vec::new();
    for w in seq.windows(n) {
        if &w[..n - 1] == prefix {
            banned.push(w[n - 1]);
        }
    }
    banned
}

#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub max_new_tokens: usize,
    pub min_new_tokens: usize,
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub no_repeat_ngram: usize,
    /// Generation stops after this token (it is kept in the output).
    pub stop_token: Option<u32>,
    pub seed: u64,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            max_new_tokens: 20,
            min_new_tokens: 0,
            temperature: 0.0,
            top_p: 1.0,
            no_repeat_ngram: 0,
            stop_token: None,
            seed: 0,
        }
    }
}

/// Greedy decoding or seeded sampling for each prompt row; returns the prompt plus the
/// new tokens (through the stop token, if reached).
pub fn sample<B: Backend, M: Decoder<B>>(
    model: &M,
    prompts: &[Vec<u32>],
    opt: &SampleOptions,
    dev: &B::Device,
) -> Vec<Vec<u32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(opt.seed);
    let mut seqs: Vec<Vec<u32>> = prompts.to_vec();
    let mut done = vec![false; seqs.len()];
    let (mut logits, mut cache) = model.prefill(ids_tensor::<B>(prompts, dev));
    for step in 0..opt.max_new_tokens {
        let rows = rows_f32(logits);
        let mut next = Vec::with_capacity(seqs.len());
        for (i, mut l) in rows.into_iter().enumerate() {
            if done[i] {
                next.push(*seqs[i].last().expect("non-empty"));
                continue;
            }
            for b in banned_by_ngram(&seqs[i], opt.no_repeat_ngram) {
                l[b as usize] = f32::NEG_INFINITY;
            }
            if let (Some(s), true) = (opt.stop_token, step < opt.min_new_tokens) {
                l[s as usize] = f32::NEG_INFINITY;
            }
            let tok = if opt.temperature <= 0.0 {
                argmax(&l)
            } else {
                draw(&l, opt.temperature, opt.top_p, &mut rng)
            };
            seqs[i].push(tok);
            if Some(tok) == opt.stop_token {
                done[i] = true;
            }
            next.push(tok);
        }
        if done.iter().all(|&d| d) {
            break;
        }
        let toks: Vec<Vec<u32>> = next.into_iter().map(|t| vec![t]).collect();
        logits = model.step(ids_tensor::<B>(&toks, dev), &mut cache);
    }
    seqs
}

fn argmax(l: &[f32]) -> u32 {
    // First maximum, as torch.argmax.
    let mut best = 0;
    for (i, &x) in l.iter().enumerate() {
        if x > l[best] {
            best = i;
        }
    }
    best as u32
}

/// Samples from softmax(l / t) restricted to the smallest set with mass ≥ top_p.
fn draw(l: &[f32], t: f32, top_p: f32, rng: &mut ChaCha8Rng) -> u32 {
    let m = l.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut p: Vec<(u32, f64)> = l
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as u32, (((x - m) / t) as f64).exp()))
        .collect();
    let z: f64 = p.iter().map(|x| x.1).sum();
    p.iter_mut().for_each(|x| x.1 /= z);
    p.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut keep = 0;
    let mut mass = 0.0;
    while keep < p.len() && (keep == 0 || mass < top_p as f64) {
        mass += p[keep].1;
        keep += 1;
    }
    let r: f64 = rng.random::<f64>() * mass;
    let mut acc = 0.0;
    for &(tok, q) in &p[..keep] {
        acc += q;
        if r < acc {
            return tok;
        }
    }
    p[keep - 1].0
}

#[derive(Debug, Clone)]
pub struct BeamOptions {
    pub num_beams: usize,
    pub max_new_tokens: usize,
    pub min_length: usize,
    pub length_penalty: f32,
    pub no_repeat_ngram: usize,
    pub early_stopping: bool,
    pub eos: Option<u32>,
}

/// One returned hypothesis: tokens (prompt included) and its length-penalised score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    pub tokens: Vec<u32>,
    pub score: f32,
}

/// Beam search with Hugging Face's semantics (transformers ≥ 4.50 `_beam_search`): running
/// beams start from the first beam only, `2 × num_beams` candidates per step, finished
/// hypotheses scored `sum_logprobs / generated_len^length_penalty`, the same early-stop
/// heuristic. Returns `num_beams` hypotheses, best first, for one prompt.
pub fn beam_search<B: Backend, M: Decoder<B>>(
    model: &M,
    prompt: &[u32],
    o: &BeamOptions,
    dev: &B::Device,
) -> Vec<Hypothesis> {
    let nb = o.num_beams;
    let prompt_len = prompt.len();
    let max_len = prompt_len + o.max_new_tokens;
    let keep = 2.max(1 + o.eos.is_some() as usize) * nb;
    let mut running: Vec<Vec<u32>> = vec![prompt.to_vec(); nb];
    let mut running_scores: Vec<f32> = (0..nb).map(|i| if i == 0 { 0.0 } else { -1e9 }).collect();
    let mut finished: Vec<(Vec<u32>, f32, bool)> = vec![(prompt.to_vec(), -1e9, false); nb];
    let mut heuristic_unsatisfied = true;
    let (mut logits, mut cache) = model.prefill(ids_tensor::<B>(&running, dev));
    let mut cur_len = prompt_len;
    loop {
        let rows = rows_f32(log_softmax(logits, 1));
        // Accumulated scores over (beam, token), after the logits processors.
        let mut cands: Vec<(f32, usize, u32)> = Vec::with_capacity(nb * rows[0].len());
        for (b, mut lp) in rows.into_iter().enumerate() {
            for t in banned_by_ngram(&running[b], o.no_repeat_ngram) {
                lp[t as usize] = f32::NEG_INFINITY;
            }
            if let (Some(e), true) = (o.eos, cur_len < o.min_length) {
                lp[e as usize] = f32::NEG_INFINITY;
            }
            cands.extend(
                lp.into_iter()
                    .enumerate()
                    .map(|(t, x)| (x + running_scores[b], b, t as u32)),
            );
        }
        // torch.topk: descending; among equal scores the lower flat index first.
        cands.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        cands.truncate(keep);
        let hits: Vec<bool> = cands
            .iter()
            .map(|c| Some(c.2) == o.eos || cur_len + 1 >= max_len)
            .collect();
        let seq_of = |c: &(f32, usize, u32)| {
            let mut s = running[c.1].clone();
            s.push(c.2);
            s
        };
        // Next running beams: the best candidates that did not stop.
        let mut order: Vec<usize> = (0..keep).collect();
        let adj = |i: usize| cands[i].0 + if hits[i] { -1e9 } else { 0.0 };
        order.sort_by(|&a, &b| adj(b).total_cmp(&adj(a)).then(a.cmp(&b)));
        let chosen: Vec<usize> = order[..nb].to_vec();
        // Finished hypotheses: merge the old ones with the top-nb candidates that stopped.
        let all_done = finished.iter().all(|f| f.2) && o.early_stopping;
        let denom = ((cur_len + 1 - prompt_len) as f32).powf(o.length_penalty);
        let mut merged: Vec<(Vec<u32>, f32, bool)> = finished.clone();
        for (i, c) in cands.iter().enumerate() {
            let just = hits[i] && i < nb;
            let mut s = c.0 / denom;
            if all_done {
                s += -1e9;
            }
            if !heuristic_unsatisfied {
                s += -1e9;
            }
            if !just {
                s += -1e9;
            }
            merged.push((seq_of(c), s, just));
        }
        let mut idx: Vec<usize> = (0..merged.len()).collect();
        idx.sort_by(|&a, &b| merged[b].1.total_cmp(&merged[a].1).then(a.cmp(&b)));
        finished = idx[..nb].iter().map(|&i| merged[i].clone()).collect();

        let new_running: Vec<Vec<u32>> = chosen.iter().map(|&i| seq_of(&cands[i])).collect();
        running_scores = chosen.iter().map(|&i| adj(i)).collect();
        let rows: Vec<i64> = chosen.iter().map(|&i| cands[i].1 as i64).collect();
        running = new_running;
        cur_len += 1;

        if heuristic_unsatisfied {
            let best_len = (cur_len - prompt_len) as f32;
            let best_possible = running_scores[0] / best_len.powf(o.length_penalty);
            let min_finished = finished.iter().map(|f| f.1).fold(f32::INFINITY, f32::min);
            heuristic_unsatisfied = finished
                .iter()
                .any(|f| best_possible > if f.2 { min_finished } else { -1e9 });
        }
        let all_finished_stop = finished.iter().all(|f| f.2) && o.early_stopping;
        if !heuristic_unsatisfied || all_finished_stop || hits.iter().all(|&h| h) {
            break;
        }
        model.reorder(
            &mut cache,
            Tensor::from_data(TensorData::new(rows, [nb]), dev),
        );
        let toks: Vec<Vec<u32>> = running
            .iter()
            .map(|s| vec![*s.last().expect("non-empty")])
            .collect();
        logits = model.step(ids_tensor::<B>(&toks, dev), &mut cache);
    }
    finished
        .into_iter()
        .map(|(tokens, score, _)| Hypothesis { tokens, score })
        .collect()
}

/// The paper's captioner decoding: beam width `width`, score = sum of token log-probs with
/// no length normalisation, a beam ends at `eos`, at most `max_new_tokens`; returns the
/// best `top_n` beams (finished or not), best first, with only the generated tokens.
pub fn paper_beam<B: Backend, M: Decoder<B>>(
    model: &M,
    prompt: &[u32],
    width: usize,
    max_new_tokens: usize,
    eos: u32,
    top_n: usize,
    dev: &B::Device,
) -> Vec<Hypothesis> {
    let (logits, mut cache) = model.prefill(ids_tensor::<B>(&[prompt.to_vec()], dev));
    let first = &rows_f32(log_softmax(logits, 1))[0];
    let mut order: Vec<u32> = (0..first.len() as u32).collect();
    order.sort_by(|&a, &b| {
        first[b as usize]
            .total_cmp(&first[a as usize])
            .then(a.cmp(&b))
    });
    let mut beams: Vec<(Vec<u32>, f32, bool)> = order[..width]
        .iter()
        .map(|&t| (vec![t], first[t as usize], t == eos))
        .collect();
    model.reorder(
        &mut cache,
        Tensor::from_data(TensorData::new(vec![0i64; width], [width]), dev),
    );
    for _ in 1..max_new_tokens {
        if beams.iter().all(|b| b.2) {
            break;
        }
        let toks: Vec<Vec<u32>> = beams
            .iter()
            .map(|b| vec![*b.0.last().expect("non-empty")])
            .collect();
        let rows = rows_f32(log_softmax(
            model.step(ids_tensor::<B>(&toks, dev), &mut cache),
            1,
        ));
        let mut cands: Vec<(f32, usize, Option<u32>)> = Vec::new();
        for (b, lp) in rows.iter().enumerate() {
            if beams[b].2 {
                cands.push((beams[b].1, b, None)); // a finished beam carries over unchanged
            } else {
                cands.extend(
                    lp.iter()
                        .enumerate()
                        .map(|(t, &x)| (beams[b].1 + x, b, Some(t as u32))),
                );
            }
        }
        cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        cands.truncate(width);
        let rows_idx: Vec<i64> = cands.iter().map(|c| c.1 as i64).collect();
        beams = cands
            .iter()
            .map(|&(s, b, t)| match t {
                None => beams[b].clone(),
                Some(t) => {
                    let mut seq = beams[b].0.clone();
                    seq.push(t);
                    (seq, s, t == eos)
                }
            })
            .collect();
        model.reorder(
            &mut cache,
            Tensor::from_data(TensorData::new(rows_idx, [width]), dev),
        );
    }
    beams.sort_by(|a, b| b.1.total_cmp(&a.1));
    beams
        .into_iter()
        .take(top_n)
        .map(|(tokens, score, _)| Hypothesis { tokens, score })
        .collect()
}

/// Counts how often each n-gram occurs (a helper for tests of the no-repeat rule).
pub fn ngram_counts(seq: &[u32], n: usize) -> HashMap<Vec<u32>, usize> {
    let mut m = HashMap::new();
    for w in seq.windows(n) {
        *m.entry(w.to_vec()).or_insert(0) += 1;
    }
    m
}
