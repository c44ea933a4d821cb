//! The fused kernels of [`super::cpu`] as autodiff operations, for training on the CPU
//! backend: activations, softmax over the last dimension, layer/RMS norms and the
//! embedding lookup, each with a hand-written backward pass.
//!
//! Written here because burn's autodiff composes these from elementwise operations, and
//! burn-flex runs each of those on one thread with a scalar `expf`: in the toy CLIP
//! pre-training (the critical path of `full.toml`) `expf`, single-threaded maps and strided
//! copies took more samples than the matrix products. Every kernel keeps the properties of
//! [`super::cpu`]: a function of one element or of one row, summed in a fixed order, so the
//! bits depend neither on the thread count nor on the SIMD width. The column sums of the
//! norms' weight gradients run over rows in order, columns split between threads.

use super::cpu::{Act, act_derivative, act_value, cast, exp, primitive_as, sum_fixed, tensor_from};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn_flex::FlexTensor;
use rayon::prelude::*;

type Inner = super::Cpu;
type Train = super::CpuTrain;
type TrainTensor = FloatTensor<Train>;

/// Rows per parallel task of a row kernel (any fixed number: rows are independent).
const ROWS_PER_TASK: usize = 16;
/// Columns per parallel task of a column sum.
const COLUMNS_PER_TASK: usize = 64;

/// Whether `B` is the CPU backend with autodiff, the one these operations serve.
pub fn applies<B: Backend>() -> bool {
    std::any::TypeId::of::<B::FloatTensorPrimitive>() == std::any::TypeId::of::<TrainTensor>()
}

fn as_train<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<TrainTensor, Tensor<B, D>> {
    primitive_as(t)
}

fn from_train<B: Backend, const D: usize>(t: TrainTensor) -> Tensor<B, D> {
    tensor_from(t)
}

/// The values of a CPU tensor in logical order, as one contiguous slice's owner.
fn contiguous(f: &FlexTensor) -> FlexTensor {
    let whole = f.layout().contiguous_offsets() == Some((0, f.layout().num_elements()))
        && f.bytes().len() == f.layout().num_elements() * 4;
    if whole { f.clone() } else { f.to_contiguous() }
}

fn values(f: &FlexTensor) -> &[f32] {
    &f.storage::<f32>()[..f.layout().num_elements()]
}

fn new_like(f: &FlexTensor, v: Vec<f32>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, f.layout().shape().clone()))
}

fn last_dim(f: &FlexTensor) -> usize {
    f.layout().shape().last().copied().unwrap_or(1)
}

// ---------------------------------------------------------------------------------------
// Activations

#[derive(Debug)]
struct ActOp(Act);

impl Backward<Inner, 1> for ActOp {
    type State = FlexTensor;

    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<Inner, _>(ops.parents, ops.node, grads, |g| {
            let g = contiguous(&g);
            let (xs, gs) = (values(&x), values(&g));
            let mut out = vec![0f32; xs.len()];
            out.par_chunks_mut(1 << 15)
                .zip(xs.par_chunks(1 << 15).zip(gs.par_chunks(1 << 15)))
                .for_each(|(o, (x, g))| act_backward_slice(o, x, g, self.0));
            new_like(&x, out)
        });
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn act_backward_slice(out: &mut [f32], x: &[f32], g: &[f32], act: Act) {
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
        *o = g * act_derivative(x, act);
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn act_forward_slice(out: &mut [f32], x: &[f32], act: Act) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = act_value(x, act);
    }
}

/// `act(x)` under autodiff on the CPU backend; `Err(x)` for any other backend.
pub fn activation<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    act: Act,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let x = as_train(x)?;
    let input = contiguous(&x.primitive);
    let xs = values(&input);
    let mut out = vec![0f32; xs.len()];
    out.par_chunks_mut(1 << 15)
        .zip(xs.par_chunks(1 << 15))
        .for_each(|(o, x)| act_forward_slice(o, x, act));
    let out = new_like(&input, out);
    let y = match ActOp(act)
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(input, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Ok(from_train(y))
}

// ---------------------------------------------------------------------------------------
// Softmax over the last dimension

#[derive(Debug)]
struct SoftmaxOp;

impl Backward<Inner, 1> for SoftmaxOp {
    /// The output.
    type State = FlexTensor;

    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let y = ops.state;
        unary::<Inner, _>(ops.parents, ops.node, grads, |g| {
            let g = contiguous(&g);
            let d = last_dim(&y);
            let (ys, gs) = (values(&y), values(&g));
            let mut out = vec![0f32; ys.len()];
            let chunk = ROWS_PER_TASK * d;
            out.par_chunks_mut(chunk)
                .zip(ys.par_chunks(chunk).zip(gs.par_chunks(chunk)))
                .for_each(|(o, (y, g))| {
                    for ((o, y), g) in o.chunks_mut(d).zip(y.chunks(d)).zip(g.chunks(d)) {
                        softmax_backward_row(o, y, g);
                    }
                });
            new_like(&y, out)
        });
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn softmax_row(out: &mut [f32], x: &[f32]) {
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = exp(v - m);
    }
    let s = sum_fixed(out, |v| v);
    for o in out.iter_mut() {
        let y = *o / s;
        // No subnormals: masked scores (f32::MIN) give exactly 0, and the products that
        // follow would slow down ~30% on the subnormal remainders of others.
        *o = if y < f32::MIN_POSITIVE { 0.0 } else { y };
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn softmax_backward_row(out: &mut [f32], y: &[f32], g: &[f32]) {
    for ((o, &y), &g) in out.iter_mut().zip(y).zip(g) {
        *o = y * g;
    }
    let dot = sum_fixed(out, |v| v);
    for ((o, &y), &g) in out.iter_mut().zip(y).zip(g) {
        *o = y * (g - dot);
    }
}

/// Softmax over the last dimension under autodiff on the CPU backend; `Err(x)` for any
/// other backend.
pub fn softmax_last<B: Backend, const D: usize>(
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let x = as_train(x)?;
    let input = contiguous(&x.primitive);
    let d = last_dim(&input);
    if d == 0 {
        return Ok(from_train(x));
    }
    let xs = values(&input);
    let mut out = vec![0f32; xs.len()];
    let chunk = ROWS_PER_TASK * d;
    out.par_chunks_mut(chunk)
        .zip(xs.par_chunks(chunk))
        .for_each(|(o, x)| {
            for (o, x) in o.chunks_mut(d).zip(x.chunks(d)) {
                softmax_row(o, x);
            }
        });
    let out = new_like(&input, out);
    let y = match SoftmaxOp
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(out.clone(), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Ok(from_train(y))
}

// ---------------------------------------------------------------------------------------
// Layer norm (centred, with a bias) and RMS norm (T5: neither)

/// What the backward pass of a norm needs: the normalised input `x̂`, `1/σ` per row, the
/// weight, and whether the mean was subtracted.
#[derive(Clone, Debug)]
struct NormState {
    xhat: FlexTensor,
    rstd: Vec<f32>,
    weight: FlexTensor,
    center: bool,
}

#[derive(Debug)]
struct LayerNormOp;

#[derive(Debug)]
struct RmsNormOp;

/// `(dx, dw, db)` of a norm for the output gradient `g`.
fn norm_backward(s: &NormState, g: &FlexTensor) -> (FlexTensor, FlexTensor, FlexTensor) {
    let g = contiguous(g);
    let d = last_dim(&s.xhat);
    let (xh, gs, ws) = (values(&s.xhat), values(&g), values(&s.weight));
    let mut dx = vec![0f32; xh.len()];
    let chunk = ROWS_PER_TASK * d;
    dx.par_chunks_mut(chunk)
        .zip(xh.par_chunks(chunk).zip(gs.par_chunks(chunk)))
        .zip(s.rstd.par_chunks(ROWS_PER_TASK))
        .for_each(|((o, (xh, g)), rstd)| {
            for (((o, xh), g), &r) in o.chunks_mut(d).zip(xh.chunks(d)).zip(g.chunks(d)).zip(rstd) {
                norm_backward_row(o, xh, g, ws, r, s.center);
            }
        });
    // Column sums over the rows, in row order; columns split between tasks.
    let rows = xh.len() / d.max(1);
    let mut dw = vec![0f32; d];
    let mut db = vec![0f32; d];
    dw.par_chunks_mut(COLUMNS_PER_TASK)
        .zip(db.par_chunks_mut(COLUMNS_PER_TASK))
        .enumerate()
        .for_each(|(t, (dw, db))| {
            let j0 = t * COLUMNS_PER_TASK;
            for r in 0..rows {
                let row = r * d + j0;
                column_sums(dw, db, &xh[row..row + dw.len()], &gs[row..row + dw.len()]);
            }
        });
    let wshape = s.weight.layout().shape().clone();
    (
        new_like(&s.xhat, dx),
        FlexTensor::from_data(TensorData::new(dw, wshape.clone())),
        FlexTensor::from_data(TensorData::new(db, wshape)),
    )
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn column_sums(dw: &mut [f32], db: &mut [f32], xh: &[f32], g: &[f32]) {
    for (((dw, db), &x), &g) in dw.iter_mut().zip(db.iter_mut()).zip(xh).zip(g) {
        *dw += g * x;
        *db += g;
    }
}

/// `dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / σ` with `dx̂ = g·w` (no `mean(dx̂)` term
/// without centring).
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn norm_backward_row(out: &mut [f32], xh: &[f32], g: &[f32], w: &[f32], rstd: f32, center: bool) {
    let n = out.len() as f32;
    for ((o, &g), &w) in out.iter_mut().zip(g).zip(w) {
        *o = g * w;
    }
    let mean_dxh = if center {
        sum_fixed(out, |v| v) / n
    } else {
        0.0
    };
    let mut prod = vec![0f32; out.len()];
    for ((p, &o), &x) in prod.iter_mut().zip(out.iter()).zip(xh) {
        *p = o * x;
    }
    let mean_dxh_xh = sum_fixed(&prod, |v| v) / n;
    for (o, &x) in out.iter_mut().zip(xh) {
        *o = (*o - mean_dxh - x * mean_dxh_xh) * rstd;
    }
}

/// `x̂` and `1/σ` per row; `σ = √(var + eps)` (around the mean when `center`, else around 0).
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn normalise_row(xh: &mut [f32], x: &[f32], eps: f32, center: bool) -> f32 {
    let n = x.len() as f32;
    let mean = if center { sum_fixed(x, |v| v) / n } else { 0.0 };
    let var = sum_fixed(x, |v| (v - mean) * (v - mean)) / n;
    let denom = (var + eps).sqrt();
    for (o, &v) in xh.iter_mut().zip(x) {
        *o = (v - mean) / denom;
    }
    1.0 / denom
}

/// `x̂`, `1/σ` per row, and `y = x̂·w (+ b)`.
/// The norm's output and what its backward pass keeps.
fn norm_forward(
    x: &FlexTensor,
    w: FlexTensor,
    b: Option<&FlexTensor>,
    eps: f32,
    center: bool,
) -> (NormState, FlexTensor) {
    let d = last_dim(x);
    let xs = values(x);
    let rows = xs.len() / d;
    let mut xhat = vec![0f32; xs.len()];
    let mut rstd = vec![0f32; rows];
    let chunk = ROWS_PER_TASK * d;
    xhat.par_chunks_mut(chunk)
        .zip(xs.par_chunks(chunk))
        .zip(rstd.par_chunks_mut(ROWS_PER_TASK))
        .for_each(|((o, x), r)| {
            for ((o, x), r) in o.chunks_mut(d).zip(x.chunks(d)).zip(r.iter_mut()) {
                *r = normalise_row(o, x, eps, center);
            }
        });
    let ws = values(&w);
    let bs = b.map(values);
    let mut y = xhat.clone();
    y.par_chunks_mut(chunk).for_each(|o| {
        for o in o.chunks_mut(d) {
            scale_shift(o, ws, bs);
        }
    });
    let state = NormState {
        xhat: new_like(x, xhat),
        rstd,
        weight: w,
        center,
    };
    (state, new_like(x, y))
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn scale_shift(row: &mut [f32], w: &[f32], b: Option<&[f32]>) {
    match b {
        Some(b) => {
            for ((v, &w), &b) in row.iter_mut().zip(w).zip(b) {
                *v = *v * w + b;
            }
        }
        None => {
            for (v, &w) in row.iter_mut().zip(w) {
                *v *= w;
            }
        }
    }
}

impl Backward<Inner, 3> for LayerNormOp {
    type State = NormState;

    fn backward(self, ops: Ops<NormState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<Inner>(&ops.node);
        let (dx, dw, db) = norm_backward(&ops.state, &g);
        let [px, pw, pb] = ops.parents;
        for (p, grad) in [(px, dx), (pw, dw), (pb, db)] {
            if let Some(p) = p {
                grads.register::<Inner>(p.id, grad);
            }
        }
    }
}

impl Backward<Inner, 2> for RmsNormOp {
    type State = NormState;

    fn backward(self, ops: Ops<NormState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<Inner>(&ops.node);
        let (dx, dw, _) = norm_backward(&ops.state, &g);
        let [px, pw] = ops.parents;
        for (p, grad) in [(px, dx), (pw, dw)] {
            if let Some(p) = p {
                grads.register::<Inner>(p.id, grad);
            }
        }
    }
}

/// The output of a norm, with its state kept for the backward pass when it is tracked.
fn finish_norm<O: Backward<Inner, N, State = NormState>, const N: usize>(
    kind: OpsKind<O, Inner, NormState, NoCheckpointing, N>,
    state: NormState,
    y: FlexTensor,
) -> TrainTensor {
    match kind {
        OpsKind::Tracked(prep) => prep.finish(state, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// A layer norm over the last dimension under autodiff on the CPU backend; `Err(x)` for
/// any other backend.
pub fn layer_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    bias: Tensor<B, 1>,
    eps: f64,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let (Ok(w), Ok(b)) = (as_train(weight), as_train(bias)) else {
        return Err(x);
    };
    let x = as_train(x)?;
    let (xc, wc, bc) = (
        contiguous(&x.primitive),
        contiguous(&w.primitive),
        contiguous(&b.primitive),
    );
    if last_dim(&xc) == 0 {
        return Ok(from_train(x));
    }
    let (state, y) = norm_forward(&xc, wc, Some(&bc), eps as f32, true);
    let kind = LayerNormOp
        .prepare::<NoCheckpointing>([x.node.clone(), w.node.clone(), b.node.clone()])
        .compute_bound()
        .stateful();
    Ok(from_train(finish_norm(kind, state, y)))
}

/// T5's norm (`x / √(mean(x²) + eps) · weight`) under autodiff on the CPU backend;
/// `Err(x)` for any other backend.
pub fn rms_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    eps: f64,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let Ok(w) = as_train(weight) else {
        return Err(x);
    };
    let x = as_train(x)?;
    let (xc, wc) = (contiguous(&x.primitive), contiguous(&w.primitive));
    if last_dim(&xc) == 0 {
        return Ok(from_train(x));
    }
    let (state, y) = norm_forward(&xc, wc, None, eps as f32, false);
    let kind = RmsNormOp
        .prepare::<NoCheckpointing>([x.node.clone(), w.node.clone()])
        .compute_bound()
        .stateful();
    Ok(from_train(finish_norm(kind, state, y)))
}

// ---------------------------------------------------------------------------------------
// The log-probability of each row's target (cross-entropy)

/// `ln Σ exp(x)` of one row, from its maximum, summed in a fixed order. The logarithm is
/// taken in f64 and rounded once, so libm's choice of kernel cannot show in the bits.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn log_sum_exp(x: &[f32]) -> f32 {
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let s = sum_fixed(x, |v| exp(v - m));
    m + (s as f64).ln() as f32
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn target_backward_row(out: &mut [f32], x: &[f32], lse: f32, g: f32, target: usize) {
    for (o, &v) in out.iter_mut().zip(x) {
        let d = -g * exp(v - lse);
        // No subnormals: the LM head's backward products would slow down on them.
        *o = if d.abs() < f32::MIN_POSITIVE { 0.0 } else { d };
    }
    out[target] += g;
}

#[derive(Debug)]
struct TargetLogProbOp;

/// The logits, each row's `ln Σ exp` and target.
type TargetState = (FlexTensor, Vec<f32>, Vec<Option<usize>>);

impl Backward<Inner, 1> for TargetLogProbOp {
    type State = TargetState;

    fn backward(self, ops: Ops<TargetState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, lse, targets) = ops.state;
        unary::<Inner, _>(ops.parents, ops.node, grads, |g| {
            let g = contiguous(&g);
            let (xs, gs) = (values(&x), values(&g));
            let v = last_dim(&x);
            let mut out = vec![0f32; xs.len()];
            out.par_chunks_mut(v)
                .zip(xs.par_chunks(v))
                .enumerate()
                .for_each(|(r, (o, x))| {
                    if let Some(t) = targets[r] {
                        target_backward_row(o, x, lse[r], gs[r], t);
                    }
                });
            new_like(&x, out)
        });
    }
}

/// `log_softmax(logits)[r, targets[r]]` for each row `r` of `logits` `[rows, vocab]` (0,
/// with no gradient, where the target is `None`) under autodiff on the CPU backend: the
/// cross-entropy of language-model training in one pass forward and one backward, where
/// burn composes it from a dozen passes over the logits (GPT-2-small at batch 4 × 128:
/// 103 MB each). `Err(logits)` for any other backend or a target past the vocabulary.
pub fn target_log_probs<B: Backend>(
    logits: Tensor<B, 2>,
    targets: &[Option<usize>],
) -> Result<Tensor<B, 1>, Tensor<B, 2>> {
    let [rows, v] = logits.dims();
    if targets.len() != rows || v == 0 || targets.iter().flatten().any(|&t| t >= v) {
        return Err(logits);
    }
    let x = as_train(logits)?;
    let xc = contiguous(&x.primitive);
    let xs = values(&xc);
    let mut lse = vec![0f32; rows];
    let mut out = vec![0f32; rows];
    lse.par_iter_mut()
        .zip(out.par_iter_mut())
        .zip(xs.par_chunks(v))
        .zip(targets.par_iter())
        .for_each(|(((l, o), row), t)| {
            if let Some(t) = *t {
                *l = log_sum_exp(row);
                *o = row[t] - *l;
            }
        });
    let out = FlexTensor::from_data(TensorData::new(out, [rows]));
    let y = match TargetLogProbOp
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((xc, lse, targets.to_vec()), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Ok(from_train(y))
}

// ---------------------------------------------------------------------------------------
// Splitting and merging attention heads

/// Swaps dims 1 and 2 of a gradient and makes it contiguous: the backward of both head
/// permutations. burn's autodiff would reach the same through a reshape of a strided
/// view, which burn-flex copies one element at a time.
#[derive(Debug)]
struct SwapMiddleOp;

impl Backward<Inner, 1> for SwapMiddleOp {
    type State = ();

    fn backward(self, ops: Ops<(), 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        unary::<Inner, _>(ops.parents, ops.node, grads, |g| {
            super::cpu::swap_middle_copy(&g).unwrap_or_else(|| g.transpose(1, 2).to_contiguous())
        });
    }
}

/// `x` `[b, x, y, d]` → `[b, y, x, d]` under autodiff on the CPU backend, as a contiguous
/// copy (`copy`) or a view (not), with a contiguous gradient either way.
fn swap_middle<B: Backend>(x: Tensor<B, 4>, copy: bool) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    let x = as_train(x)?;
    let y = if copy {
        match super::cpu::swap_middle_copy(&x.primitive) {
            Some(y) => y,
            None => return Err(from_train(x)),
        }
    } else {
        x.primitive.transpose(1, 2)
    };
    let y = SwapMiddleOp
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateless(y);
    Ok(from_train(y))
}

/// `[b, t, h·dh]` → `[b, h, t, dh]` (a view) under autodiff on the CPU backend, whose
/// gradient is one fast copy; `Err(x)` for any other backend.
pub fn split_heads<B: Backend>(
    x: Tensor<B, 3>,
    heads: usize,
) -> Result<Tensor<B, 4>, Tensor<B, 3>> {
    if !applies::<B>() {
        return Err(x);
    }
    let [b, t, d] = x.dims();
    swap_middle(x.reshape([b, t, heads, d / heads]), false).map_err(|x| x.reshape([b, t, d]))
}

/// `[b, h, t, dh]` → `[b, t, h·dh]` (one fast copy) under autodiff on the CPU backend;
/// `Err(x)` for any other backend.
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Result<Tensor<B, 3>, Tensor<B, 4>> {
    let [b, h, t, dh] = x.dims();
    swap_middle(x, true).map(|y| y.reshape([b, t, h * dh]))
}

// ---------------------------------------------------------------------------------------
// Embedding lookup

/// The ids of a CPU int tensor in logical order, or the tensor back for another backend.
fn ids_of<B: Backend>(
    ids: Tensor<B, 2, Int>,
) -> Result<(FlexTensor, Vec<usize>), Tensor<B, 2, Int>> {
    let f: FlexTensor = cast(ids.into_primitive()).map_err(Tensor::from_primitive)?;
    let c = f.to_contiguous();
    let span = c.layout().start_offset()..c.layout().start_offset() + c.layout().num_elements();
    let list = match c.dtype() {
        burn::tensor::DType::I32 => c.storage::<i32>()[span.clone()]
            .iter()
            .map(|&i| i as usize)
            .collect(),
        burn::tensor::DType::I64 => c.storage::<i64>()[span]
            .iter()
            .map(|&i| i as usize)
            .collect(),
        _ => return Err(tensor_from_int(f)),
    };
    Ok((f, list))
}

/// The inverse of [`ids_of`]'s downcast.
fn tensor_from_int<B: Backend>(f: FlexTensor) -> Tensor<B, 2, Int> {
    Tensor::from_primitive(cast(f).unwrap_or_else(|_| panic!("a CPU int tensor")))
}

#[derive(Debug)]
struct EmbeddingOp;

impl Backward<Inner, 1> for EmbeddingOp {
    /// The ids in order, and the table's `[rows, width]`.
    type State = (Vec<usize>, [usize; 2]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (ids, [rows, d]) = ops.state;
        unary::<Inner, _>(ops.parents, ops.node, grads, |g| {
            let g = contiguous(&g);
            // Rows added in the ids' order, one after another: the order burn-flex's
            // `select_add` uses, so the bits are its bits, without its four passes over
            // the table (zeros, an aligned copy, a copy to add into, the result).
            let mut out = vec![0f32; rows * d];
            for (&i, row) in ids.iter().zip(values(&g).chunks_exact(d)) {
                for (o, &v) in out[i * d..(i + 1) * d].iter_mut().zip(row) {
                    *o += v;
                }
            }
            FlexTensor::from_data(TensorData::new(out, [rows, d]))
        });
    }
}

/// An embedding lookup's inputs, handed back to burn.
pub type TableAndIds<B> = (Tensor<B, 2>, Tensor<B, 2, Int>);

/// `weight[ids]` (`[batch, seq]` → `[batch, seq, width]`) under autodiff on the CPU
/// backend, with a gradient that writes the table once; `Err` hands both back for any
/// other backend.
pub fn embedding<B: Backend>(
    weight: Tensor<B, 2>,
    ids: Tensor<B, 2, Int>,
) -> Result<Tensor<B, 3>, TableAndIds<B>> {
    let w = match as_train(weight) {
        Ok(w) => w,
        Err(w) => return Err((w, ids)),
    };
    let (flex_ids, list) = match ids_of(ids) {
        Ok(x) => x,
        Err(ids) => return Err((from_train(w), ids)),
    };
    let [rows, d] = w.primitive.layout().shape().dims();
    if list.iter().any(|&i| i >= rows) {
        // Out of range: burn's own lookup reports it.
        return Err((from_train(w), tensor_from_int(flex_ids)));
    }
    use burn::tensor::ops::ModuleOps;
    let y = Inner::embedding(w.primitive.clone(), flex_ids);
    let y = match EmbeddingOp
        .prepare::<NoCheckpointing>([w.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((list, [rows, d]), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Ok(from_train(y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation;
    type AD = Train;

    use crate::models::cpu::tests::{values as values_of, vec, worst};

    fn param<const D: usize>(v: Vec<f32>, shape: [usize; D]) -> Tensor<AD, D> {
        Tensor::<AD, D>::from_data(TensorData::new(v, shape), &Default::default()).require_grad()
    }

    /// Value and input gradient of `f` (fused) against `g` (composed), for a weighted sum
    /// of the output (so every output's gradient differs).
    fn compare(
        fused: impl Fn(Tensor<AD, 3>) -> Tensor<AD, 3>,
        composed: impl Fn(Tensor<AD, 3>) -> Tensor<AD, 3>,
        shape: [usize; 3],
        scale: f32,
    ) -> (f32, f32) {
        let n = shape.iter().product();
        let xv = values_of(n, 1, scale);
        let wv = values_of(n, 2, 1.0);
        let run = |f: &dyn Fn(Tensor<AD, 3>) -> Tensor<AD, 3>| {
            let x = param(xv.clone(), shape);
            let y = f(x.clone());
            let loss = (y.clone() * param(wv.clone(), shape).detach()).sum();
            let g = loss.backward();
            (vec(y.inner()), vec(x.grad(&g).unwrap()))
        };
        let (yf, gf) = run(&fused);
        let (yc, gc) = run(&composed);
        (worst(&yf, &yc), worst(&gf, &gc))
    }

    #[test]
    fn fused_training_ops_match_the_composed_ones_in_value_and_gradient() {
        let shape = [3, 5, 70];
        for act in [Act::QuickGelu, Act::GeluNew] {
            let composed = move |x: Tensor<AD, 3>| match act {
                Act::QuickGelu => x.clone() * activation::sigmoid(x * 1.702),
                _ => activation::gelu_approximate(x),
            };
            let (dv, dg) = compare(
                |x| activation(x, act).unwrap_or_else(|_| panic!("fused")),
                composed,
                shape,
                5.0,
            );
            assert!(dv < 2e-6 && dg < 2e-5, "{act:?}: value {dv}, gradient {dg}");
        }
        let (dv, dg) = compare(
            |x| softmax_last(x).unwrap_or_else(|_| panic!("fused")),
            |x| activation::softmax(x, 2),
            shape,
            8.0,
        );
        assert!(dv < 1e-6 && dg < 1e-6, "softmax: value {dv}, gradient {dg}");
    }

    #[test]
    fn target_log_probs_match_log_softmax_and_gather_with_ignored_rows() {
        let (rows, v) = (7, 300);
        // Large logits (scale 30) so that a missing max-subtraction would overflow.
        let xv = values_of(rows * v, 5, 30.0);
        let targets = [Some(3), None, Some(299), Some(0), None, Some(150), Some(3)];
        let gv = values_of(rows, 6, 1.0);
        let run = |fused: bool| {
            let x = param(xv.clone(), [rows, v]);
            let lp = if fused {
                target_log_probs(x.clone(), &targets).unwrap_or_else(|_| panic!("fused"))
            } else {
                let ids: Vec<i32> = targets.iter().map(|t| t.unwrap_or(0) as i32).collect();
                let keep: Vec<f32> = targets.iter().map(|t| t.map_or(0.0, |_| 1.0)).collect();
                let idx = Tensor::<AD, 2, Int>::from_data(
                    TensorData::new(ids, [rows, 1]),
                    &Default::default(),
                );
                activation::log_softmax(x.clone(), 1)
                    .gather(1, idx)
                    .reshape([rows])
                    * param(keep, [rows]).detach()
            };
            let g = (lp.clone() * param(gv.clone(), [rows]).detach())
                .sum()
                .backward();
            (vec(lp.inner()), vec(x.grad(&g).unwrap()))
        };
        let ((lf, gf), (lc, gc)) = (run(true), run(false));
        assert!(worst(&lf, &lc) < 1e-6, "values {lf:?} against {lc:?}");
        assert!(
            worst(&gf, &gc) < 1e-6,
            "gradients differ by {}",
            worst(&gf, &gc)
        );
        // Ignored rows: 0, and no gradient.
        assert_eq!((lf[1], lf[4]), (0.0, 0.0));
        assert!(gf[v..2 * v].iter().all(|&g| g == 0.0));
        // A target past the vocabulary goes back to burn.
        let x = param(xv.clone(), [rows, v]);
        assert!(target_log_probs(x, &[Some(300); 7]).is_err());
    }

    #[test]
    fn head_splits_and_merges_are_burns_in_value_and_gradient() {
        let (b, t, h, dh) = (2, 5, 3, 4);
        let xv = values_of(b * t * h * dh, 7, 1.0);
        let wv = values_of(b * t * h * dh, 8, 1.0);
        let run = |fused: bool| {
            let x = param(xv.clone(), [b, t, h * dh]);
            // Split, a strided view in between (as attention's products see it), merge.
            let heads = if fused {
                split_heads(x.clone(), h).unwrap_or_else(|_| panic!("fused"))
            } else {
                x.clone().reshape([b, t, h, dh]).swap_dims(1, 2)
            };
            let heads = heads * 2.0;
            let y = if fused {
                merge_heads(heads).unwrap_or_else(|_| panic!("fused"))
            } else {
                heads.swap_dims(1, 2).reshape([b, t, h * dh])
            };
            let g = (y.clone() * param(wv.clone(), [b, t, h * dh]).detach())
                .sum()
                .backward();
            (vec(y.inner()), vec(x.grad(&g).unwrap()))
        };
        assert_eq!(run(true), run(false));
    }

    #[test]
    fn embedding_gradients_are_burns_bit_for_bit_with_repeated_ids() {
        let (rows, d) = (11, 6);
        let table = values_of(rows * d, 3, 1.0);
        // Ids repeat (their rows' gradients add up) and some rows are never used.
        let ids = vec![3i32, 7, 3, 0, 10, 3, 7, 1];
        let gv = values_of(ids.len() * d, 4, 1.0);
        let run = |fused: bool| {
            let w = param(table.clone(), [rows, d]);
            let idx = Tensor::<AD, 2, Int>::from_data(
                TensorData::new(ids.clone(), [2, 4]),
                &Default::default(),
            );
            let y = if fused {
                embedding(w.clone(), idx).unwrap_or_else(|_| panic!("fused"))
            } else {
                burn::tensor::module::embedding(w.clone(), idx)
            };
            let g = (y.clone() * param(gv.clone(), [2, 4, d]).detach())
                .sum()
                .backward();
            let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            (bits(vec(y.inner())), bits(vec(w.grad(&g).unwrap())))
        };
        assert_eq!(run(true), run(false));
        // An id past the table is left to burn, which reports it.
        let w = param(table.clone(), [rows, d]);
        let bad = Tensor::<AD, 2, Int>::from_data(
            TensorData::new(vec![11i32], [1, 1]),
            &Default::default(),
        );
        assert!(embedding(w, bad).is_err());
    }

    #[test]
    fn norm_gradients_match_the_composed_norms_for_input_weight_and_bias() {
        let (shape, d) = ([3, 5, 70], 70);
        let xv = values_of(3 * 5 * d, 1, 4.0);
        let gv = values_of(3 * 5 * d, 2, 1.0);
        for center in [true, false] {
            let run = |fused: bool| {
                let x = param(xv.clone(), shape);
                let w = param(values_of(d, 3, 1.5), [d]);
                let b = param(values_of(d, 4, 0.5), [d]);
                let y = if fused && center {
                    layer_norm(x.clone(), w.clone(), b.clone(), 1e-5)
                        .ok()
                        .unwrap()
                } else if fused {
                    rms_norm(x.clone(), w.clone(), 1e-6).ok().unwrap()
                } else if center {
                    let mean = x.clone().mean_dim(2);
                    let c = x.clone() - mean;
                    let var = c.clone().powi_scalar(2).mean_dim(2);
                    c / (var + 1e-5).sqrt() * w.clone().unsqueeze::<3>()
                        + b.clone().unsqueeze::<3>()
                } else {
                    let var = x.clone().powi_scalar(2).mean_dim(2);
                    x.clone() / (var + 1e-6).sqrt() * w.clone().unsqueeze::<3>()
                };
                let loss = (y.clone() * param(gv.clone(), shape).detach()).sum();
                let g = loss.backward();
                let db = if center {
                    vec(b.grad(&g).unwrap())
                } else {
                    vec![]
                };
                (
                    vec(y.inner()),
                    vec(x.grad(&g).unwrap()),
                    vec(w.grad(&g).unwrap()),
                    db,
                )
            };
            let (f, c) = (run(true), run(false));
            assert!(worst(&f.0, &c.0) < 1e-5, "value");
            assert!(worst(&f.1, &c.1) < 1e-4, "dx {}", worst(&f.1, &c.1));
            assert!(worst(&f.2, &c.2) < 1e-4, "dw {}", worst(&f.2, &c.2));
            assert!(worst(&f.3, &c.3) < 1e-4, "db");
        }
    }

    #[test]
    fn plain_tensors_and_other_backends_get_their_tensor_back() {
        let x = Tensor::<super::Inner, 2>::ones([2, 3], &Default::default());
        assert!(softmax_last(x).is_err());
    }
}
