//! Training utilities shared by every model: the losses (HF's causal-LM loss and the
//! captioner's weighted token cross-entropy), AdamW with torch's semantics, the linear
//! warmup/decay schedule, global gradient-norm clipping, and checkpoints that hold the
//! optimizer state and step so a resumed run continues exactly.

use anyhow::Context;
use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use std::path::Path;

/// Mean next-token cross-entropy of `logits` `[b, t, v]` against `ids` `[b, t]` shifted by
/// one, as `transformers` computes for `labels = input_ids`.
pub fn causal_lm_loss<B: Backend>(logits: Tensor<B, 3>, ids: Tensor<B, 2, Int>) -> Tensor<B, 1> {
    let [b, t, v] = logits.dims();
    // Each position's target is the next id; the last position has none. (With one
    // position there is nothing to predict, and the loss is 0 rather than a mean over
    // nothing.)
    let none = Tensor::<B, 2, Int>::full([b, 1], IGNORE, &ids.device());
    let next = if t > 1 {
        Tensor::cat(vec![ids.narrow(1, 1, t - 1), none], 1)
    } else {
        none
    };
    let lp = target_log_probs(logits.reshape([b * t, v]), next.reshape([b * t]), IGNORE);
    lp.sum().neg() / (b * t.saturating_sub(1)).max(1) as f64
}

/// transformers' label that no loss counts.
const IGNORE: i64 = -100;

/// `log_softmax(logits)[r, targets[r]]` for each row `r` of `logits` `[rows, v]`, and 0
/// where the target is `ignore`. On the CPU backend under autodiff it is one fused
/// operation (`cpu_train::target_log_probs`: one pass over the logits forward, one
/// backward); elsewhere burn's `log_softmax` and `gather`.
pub fn target_log_probs<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    ignore: i64,
) -> Tensor<B, 1> {
    let [rows, _] = logits.dims();
    let logits = if super::cpu_train::applies::<B>() {
        let wanted: Vec<Option<usize>> = targets
            .to_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap_or_default()
            .into_iter()
            // A negative id becomes usize::MAX, past any vocabulary: the fused op declines
            // it and burn's `gather` reports it.
            .map(|i| (i != ignore).then(|| usize::try_from(i).unwrap_or(usize::MAX)))
            .collect();
        match super::cpu_train::target_log_probs(logits, &wanted) {
            Ok(lp) => return lp,
            Err(l) => l,
        }
    } else {
        logits
    };
    let ignored = targets.clone().equal_elem(ignore);
    let keep = ignored.clone().bool_not().float();
    let safe = targets.mask_fill(ignored, 0).reshape([rows, 1]);
    log_softmax(logits, 1).gather(1, safe).reshape([rows]) * keep
}

/// The captioner's loss: per-token cross-entropy times the item's sample weight, averaged
/// over all `b × t` positions; positions whose target is `ignore` count as zero.
pub fn weighted_token_ce<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    weights: Tensor<B, 1>,
    ignore: i64,
) -> Tensor<B, 1> {
    let [b, t, v] = logits.dims();
    let lp = target_log_probs(logits.reshape([b * t, v]), targets.reshape([b * t]), ignore);
    let per_token = lp.reshape([b, t]).neg() * weights.unsqueeze_dim::<2>(1);
    per_token.mean()
}

/// `get_linear_schedule_with_warmup`: linear rise over `warmup` steps, then linear decay
/// to zero at `total`.
#[derive(Debug, Clone, Copy)]
pub struct LinearSchedule {
    pub lr: f64,
    pub warmup: usize,
    pub total: usize,
}

impl LinearSchedule {
    pub fn at(&self, step: usize) -> f64 {
        if step < self.warmup {
            self.lr * step as f64 / self.warmup.max(1) as f64
        } else {
            let left = self.total.saturating_sub(step) as f64;
            self.lr * (left / (self.total - self.warmup).max(1) as f64).max(0.0)
        }
    }
}

/// AdamW hyper-parameters with torch's defaults.
#[derive(Debug, Clone, Copy)]
pub struct AdamWOptions {
    pub betas: (f32, f32),
    pub eps: f32,
    pub weight_decay: f32,
}

impl Default for AdamWOptions {
    fn default() -> Self {
        AdamWOptions {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// burn's AdamW applies decoupled decay `p ← p(1 − lr·wd)` and the bias-corrected update
/// `lr · m̂ / (√v̂ + ε)`, which is torch's AdamW step for step (checked against a fixture);
/// only burn's defaults differ, so they are set explicitly here.
pub fn adamw<B: AutodiffBackend, M: AutodiffModule<B>>(
    o: AdamWOptions,
) -> OptimizerAdaptor<AdamW, M, B> {
    AdamWConfig::new()
        .with_beta_1(o.betas.0)
        .with_beta_2(o.betas.1)
        .with_epsilon(o.eps)
        .with_weight_decay(o.weight_decay)
        .init()
}

struct GradNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    sum_sq: f64,
    ids: Vec<ParamId>,
    _b: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GradNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            // Rows first, then the row sums: a full `sum()` over millions of elements is
            // combined by rayon in a varying order (different last bits from run to run),
            // and the clipping factor would carry that into every parameter.
            let dims = g.dims();
            let last = dims[D - 1].max(1);
            let rows = g.shape().num_elements() / last;
            let sq = g.powi_scalar(2).reshape([rows, last]);
            self.sum_sq += sq.sum_dim(1).sum().into_scalar().elem::<f64>();
            self.ids.push(param.id);
        }
    }
}

struct Scale<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    factor: f64,
    _b: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads
                .register::<B::InnerBackend, D>(param.id, g * self.factor);
        }
    }
}

/// torch's `clip_grad_norm_`: scales all gradients together so their global L2 norm is at
/// most `max_norm` (burn's built-in clipping works per parameter). Returns the norm before
/// clipping.
pub fn clip_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let mut v = GradNorm::<B> {
        grads,
        sum_sq: 0.0,
        ids: Vec::new(),
        _b: Default::default(),
    };
    model.visit(&mut v);
    let norm = v.sum_sq.sqrt();
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        model.visit(&mut Scale::<B> {
            grads,
            factor,
            _b: Default::default(),
        });
    }
    norm
}

/// Saves model, optimizer state and step into `dir` (each file written atomically, the
/// step last: a checkpoint without its step file is ignored).
pub fn save_checkpoint<B, M, O>(dir: &Path, model: &M, optim: &O, step: u64) -> anyhow::Result<()>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let rec = BinBytesRecorder::<FullPrecisionSettings>::default();
    let m = rec
        .record(model.clone().into_record(), ())
        .context("serialising the model")?;
    let o = rec
        .record(optim.to_record(), ())
        .context("serialising the optimizer")?;
    let _ = std::fs::remove_file(dir.join("step"));
    crate::store::fsutil::write_atomic(&dir.join("model.bin"), &m)?;
    crate::store::fsutil::write_atomic(&dir.join("optim.bin"), &o)?;
    crate::store::fsutil::write_atomic(&dir.join("step"), step.to_string().as_bytes())?;
    Ok(())
}

/// Restores a checkpoint written by [`save_checkpoint`] into `model` and `optim` (built
/// the same way as when it was saved); `None` if `dir` holds none.
pub fn load_checkpoint<B, M, O>(
    dir: &Path,
    model: M,
    optim: O,
    dev: &B::Device,
) -> anyhow::Result<Option<(M, O, u64)>>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let Ok(step) = std::fs::read_to_string(dir.join("step")) else {
        return Ok(None);
    };
    let step: u64 = step
        .trim()
        .parse()
        .context("reading the checkpoint's step")?;
    let rec = BinBytesRecorder::<FullPrecisionSettings>::default();
    let m = rec
        .load(std::fs::read(dir.join("model.bin"))?, dev)
        .context("reading the model checkpoint")?;
    let o = rec
        .load(std::fs::read(dir.join("optim.bin"))?, dev)
        .context("reading the optimizer checkpoint")?;
    Ok(Some((model.load_record(m), optim.load_record(o), step)))
}
