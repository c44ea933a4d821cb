//! Fused elementwise and row kernels for inference on the CPU backend: bias-add,
//! activations and layer norms, each one pass over the data, vectorised and split between
//! threads.
//!
//! Written here because burn-flex runs elementwise maps on one thread with a scalar
//! `expf` per element, and composes a layer norm from nine separate passes: in the CLIP
//! image tower (`models_check --bench --only clip`) those maps took about a third of the
//! forward pass while the matrix products ran at PyTorch's speed.
//!
//! Every kernel is a function of one element (or of one row, summed in a fixed order), so
//! the bits do not depend on the thread count. The exponential is a fixed polynomial
//! evaluated with separate multiplies and adds (Rust never fuses them), so the bits are
//! also the same with AVX2, AVX-512 or no SIMD at all; `expf` from libm is scalar, and the
//! SIMD math crates use fused multiply-add where the CPU has it.
//!
//! The kernels only see plain CPU tensors: under autodiff (training) the primitive is not
//! a `FlexTensor`, and every function here hands its input back for the composed path.

use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use burn_flex::FlexTensor;
use rayon::prelude::*;
use std::any::{Any, TypeId};

/// Elements per parallel task of an elementwise kernel.
const ELEMS_PER_TASK: usize = 1 << 15;

/// An activation the kernels evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Identity,
    /// CLIP's `x·σ(1.702x)`.
    QuickGelu,
    /// The tanh approximation of GELU, as `x·σ(2u)`, `u = √(2/π)(x + 0.044715x³)`.
    GeluNew,
}

/// `x` as the type `U` when `T` is `U` (a backend's primitive seen as the concrete CPU
/// type), else `x` back: the one downcast behind every CPU fast path.
pub(crate) fn cast<T: 'static, U: 'static>(x: T) -> Result<U, T> {
    if TypeId::of::<T>() != TypeId::of::<U>() {
        return Err(x);
    }
    let b: Box<dyn Any> = Box::new(x);
    Ok(*b.downcast::<U>().expect("checked by TypeId"))
}

/// The backend's float primitive as the concrete type `P` (e.g. the CPU backend's
/// `FlexTensor`), or the tensor back if the backend's primitive is another type or the
/// element type is not f32.
pub(crate) fn primitive_as<P: 'static, B: Backend, const D: usize>(
    t: Tensor<B, D>,
) -> Result<P, Tensor<B, D>> {
    if TypeId::of::<B::FloatTensorPrimitive>() != TypeId::of::<P>()
        || t.dtype() != burn::tensor::DType::F32
    {
        return Err(t);
    }
    Ok(cast(t.into_primitive().tensor()).unwrap_or_else(|_| unreachable!("checked above")))
}

/// The inverse of [`primitive_as`].
pub(crate) fn tensor_from<P: 'static, B: Backend, const D: usize>(p: P) -> Tensor<B, D> {
    let p = cast::<P, B::FloatTensorPrimitive>(p)
        .unwrap_or_else(|_| panic!("only called with a primitive_as result"));
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

fn as_flex<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<FlexTensor, Tensor<B, D>> {
    primitive_as(t)
}

fn from_flex<B: Backend, const D: usize>(f: FlexTensor) -> Tensor<B, D> {
    tensor_from(f)
}

/// A contiguous tensor this function owns alone, so its storage can be written in place.
fn owned_contiguous(f: FlexTensor) -> FlexTensor {
    let whole = f.layout().contiguous_offsets() == Some((0, f.layout().num_elements()))
        && f.bytes().len() == f.layout().num_elements() * 4;
    if whole && f.is_unique() {
        f
    } else {
        let c = f.to_contiguous();
        if c.is_unique() {
            c
        } else {
            // `to_contiguous` returns a view of shared storage when it is already whole.
            FlexTensor::from_data(c.into_data())
        }
    }
}

/// `cat([past.select(0, rows), new], 2)` for a cache `[batch, heads, positions, head_dim]`
/// on the CPU backend, in one copy; `Err` gives the tensors back on any other backend.
/// A beam search reorders its cache and appends to it at every step: burn-flex copies the
/// whole cache for each (72 MB a step for GPT-2-small at beam 32 and 20 positions, a third
/// of the decode's samples); here each output row is its parent's positions then its new
/// one.
#[allow(clippy::type_complexity)]
pub(crate) fn gather_append<B: Backend>(
    past: Tensor<B, 4>,
    rows: &Tensor<B, 1, Int>,
    new: Tensor<B, 4>,
) -> Result<Tensor<B, 4>, (Tensor<B, 4>, Tensor<B, 4>)> {
    let [b, h, t, d] = past.dims();
    let [nb, nh, one, nd] = new.dims();
    if TypeId::of::<B::FloatTensorPrimitive>() != TypeId::of::<FlexTensor>()
        || rows.dims()[0] != nb
        || (nh, one, nd) != (h, 1, d)
    {
        return Err((past, new));
    }
    // On the CPU backend reading the indices is a copy, not a device round trip.
    let rows: Vec<usize> = match rows.clone().into_data().convert::<i64>().into_vec::<i64>() {
        Ok(r) if r.iter().all(|&r| r >= 0 && (r as usize) < b) => {
            r.into_iter().map(|r| r as usize).collect()
        }
        _ => return Err((past, new)),
    };
    let (p, n) = match (as_flex(past), as_flex(new)) {
        (Ok(p), Ok(n)) => (p.to_contiguous(), n.to_contiguous()),
        (p, n) => {
            let back = |x: Result<FlexTensor, Tensor<B, 4>>| x.map_or_else(|t| t, from_flex);
            return Err((back(p), back(n)));
        }
    };
    let ps: &[f32] = &p.storage::<f32>()[p.layout().start_offset()..][..b * h * t * d];
    let ns: &[f32] = &n.storage::<f32>()[n.layout().start_offset()..][..nb * h * d];
    let run = (t + 1) * d;
    let mut out: Vec<f32> = Vec::with_capacity(nb * h * run);
    out.spare_capacity_mut()[..nb * h * run]
        .par_chunks_mut(run)
        .enumerate()
        .for_each(|(i, dst)| {
            let (row, head) = (i / h, i % h);
            let src = &ps[(rows[row] * h + head) * t * d..][..t * d];
            for (o, &x) in dst
                .iter_mut()
                .zip(src.iter().chain(&ns[i * d..(i + 1) * d]))
            {
                o.write(x);
            }
        });
    // SAFETY: every chunk above wrote all of its (t + 1)·d elements.
    unsafe { out.set_len(nb * h * run) };
    Ok(from_flex(FlexTensor::from_data(TensorData::new(
        out,
        [nb, h, t + 1, d],
    ))))
}

/// `w` stored row-major when the backend is the plain CPU one, which only inference uses.
/// HF's `nn.Linear` weights load as transposed views; the CPU backend's `gemm` multiplies by
/// a transposed `[3072, 768]` view at 0.67× the speed of a row-major one (196 against 291
/// GFLOP/s), and the CLIP image tower ran 11% faster with row-major weights. Under autodiff
/// the view stays: the backward products then favour it (T5-small fwd+bwd 481 against 443
/// tokens/s).
pub fn row_major_for_inference<B: Backend>(w: Tensor<B, 2>) -> Tensor<B, 2> {
    match as_flex(w) {
        Ok(f) if f.is_contiguous() => from_flex(f),
        Ok(f) => from_flex(transpose_copy(&f).unwrap_or_else(|| f.to_contiguous())),
        Err(w) => w,
    }
}

/// A row-major copy of `f` when it is the transposed view of a whole row-major matrix
/// (how an HF `Linear` weight loads), in cache-sized tiles split between threads; `None`
/// for any other layout. burn-flex's `to_contiguous` walks such a view one element at a
/// time at ~0.6 GB/s, which made loading GPT-Neo 1.3B take 11 s instead of 3.
fn transpose_copy(f: &FlexTensor) -> Option<FlexTensor> {
    const TILE: usize = 32;
    let l = f.layout();
    if l.num_dims() != 2 {
        return None;
    }
    let (rows, cols) = (l.shape()[0], l.shape()[1]);
    if l.strides() != [1, rows as isize] || f.dtype() != burn::tensor::DType::F32 {
        return None;
    }
    // The source is `cols × rows`, row-major, from the layout's start.
    let src = f
        .storage::<f32>()
        .get(l.start_offset()..)?
        .get(..rows * cols)?;
    let mut out = vec![0f32; rows * cols];
    out.par_chunks_mut(TILE * cols)
        .enumerate()
        .for_each(|(bi, block)| {
            let r0 = bi * TILE;
            let nr = block.len() / cols;
            for c0 in (0..cols).step_by(TILE) {
                for c in c0..(c0 + TILE).min(cols) {
                    let from = &src[c * rows + r0..][..nr];
                    for (r, &v) in from.iter().enumerate() {
                        block[r * cols + c] = v;
                    }
                }
            }
        });
    Some(FlexTensor::from_data(TensorData::new(out, [rows, cols])))
}

/// `[b, x, y, d]` → `[b, y, x, d]`, contiguous: the copy that splits or merges attention
/// heads, as one `copy_from_slice` per `d`-long run, split between threads. `None` unless
/// `f` is 4-D f32 with a contiguous last dimension. burn-flex's general copy visits one
/// element at a time through a strided iterator; in the toy CLIP pre-training (the
/// critical path of `full.toml`) those copies were 18% of the samples.
pub(crate) fn swap_middle_copy(f: &FlexTensor) -> Option<FlexTensor> {
    let l = f.layout();
    if l.num_dims() != 4 || l.strides()[3] != 1 || f.dtype() != burn::tensor::DType::F32 {
        return None;
    }
    let [b, x, y, d] = [l.shape()[0], l.shape()[1], l.shape()[2], l.shape()[3]];
    let s = l.strides();
    if s[..3].iter().any(|&v| v < 0) || d == 0 {
        return None;
    }
    let src = f.storage::<f32>();
    let start = l.start_offset();
    let mut out = vec![0f32; b * x * y * d];
    // One task per output row block `[bi, yi]`: x runs of d values.
    out.par_chunks_mut(x * d)
        .enumerate()
        .for_each(|(row, block)| {
            let (bi, yi) = (row / y, row % y);
            for (xi, run) in block.chunks_exact_mut(d).enumerate() {
                let at = start + bi * s[0] as usize + xi * s[1] as usize + yi * s[2] as usize;
                run.copy_from_slice(&src[at..at + d]);
            }
        });
    Some(FlexTensor::from_data(TensorData::new(out, [b, y, x, d])))
}

/// `[b, h, t, dh]` → `[b, t, h·dh]` on the plain CPU backend, by [`swap_middle_copy`];
/// `Err(x)` for any other backend.
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Result<Tensor<B, 3>, Tensor<B, 4>> {
    let [b, h, t, dh] = x.dims();
    let f = as_flex(x)?;
    match swap_middle_copy(&f) {
        Some(c) => Ok(from_flex::<B, 4>(c).reshape([b, t, h * dh])),
        None => Err(from_flex(f)),
    }
}

/// `act(y + bias)`, with `bias` broadcast over the last dimension; `Err(y)` when the
/// backend is not the CPU one.
pub fn bias_act<B: Backend, const D: usize>(
    y: Tensor<B, D>,
    bias: Option<Tensor<B, 1>>,
    act: Act,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let n = y.dims()[D - 1];
    let b = match bias {
        Some(b) => match as_flex(b) {
            Ok(b) => Some(b.to_contiguous()),
            Err(_) => return Err(y),
        },
        None => None,
    };
    let mut f = owned_contiguous(as_flex(y)?);
    let bs: Option<&[f32]> = match &b {
        Some(b) => Some(&b.storage::<f32>()[b.layout().start_offset()..][..n]),
        None => None,
    };
    let data = f.storage_mut::<f32>();
    match bs {
        // Tasks of whole rows, so each row meets the bias from its start.
        Some(bs) if n > 0 => {
            let rows_per_task = (ELEMS_PER_TASK / n).max(1);
            data.par_chunks_mut(rows_per_task * n).for_each(|chunk| {
                for row in chunk.chunks_mut(n) {
                    add_then(row, bs, act);
                }
            });
        }
        _ => data
            .par_chunks_mut(ELEMS_PER_TASK)
            .for_each(|chunk| apply(chunk, act)),
    }
    Ok(from_flex(f))
}

/// `act(x)` elementwise, with its gradient under autodiff; `Err(x)` when the backend is
/// not the CPU one.
pub fn activation<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    act: Act,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    match bias_act(x, None, act) {
        Ok(y) => Ok(y),
        Err(x) => super::cpu_train::activation(x, act),
    }
}

/// Softmax over the last dimension under autodiff (burn-flex's own softmax is already one
/// fused pass for inference); `Err(x)` otherwise.
pub fn softmax_last<B: Backend, const D: usize>(
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    super::cpu_train::softmax_last(x)
}

/// `(x − mean) / √(var + eps) · weight + bias` over the last dimension (two passes per row:
/// the mean, then the squared deviations); `Err(x)` when the backend is not the CPU one.
pub fn layer_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    bias: Option<Tensor<B, 1>>,
    eps: f64,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    match (norm(x, weight.clone(), bias.clone(), eps, true), bias) {
        (Ok(y), _) => Ok(y),
        (Err(x), Some(b)) => super::cpu_train::layer_norm(x, weight, b, eps),
        (Err(x), None) => Err(x),
    }
}

/// T5's norm: `x / √(mean(x²) + eps) · weight`; `Err(x)` when the backend is not the CPU one.
pub fn rms_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    eps: f64,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    match norm(x, weight.clone(), None, eps, false) {
        Ok(y) => Ok(y),
        Err(x) => super::cpu_train::rms_norm(x, weight, eps),
    }
}

fn norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    bias: Option<Tensor<B, 1>>,
    eps: f64,
    center: bool,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let d = x.dims()[D - 1];
    let Ok(w) = as_flex(weight) else {
        return Err(x);
    };
    let b = match bias.map(as_flex) {
        Some(Ok(b)) => Some(b.to_contiguous()),
        Some(Err(_)) => return Err(x),
        None => None,
    };
    let mut f = owned_contiguous(as_flex(x)?);
    if d == 0 {
        return Ok(from_flex(f));
    }
    let w = w.to_contiguous();
    let ws = &w.storage::<f32>()[w.layout().start_offset()..][..d];
    let bs = b
        .as_ref()
        .map(|b| &b.storage::<f32>()[b.layout().start_offset()..][..d]);
    let eps = eps as f32;
    let rows_per_task = (ELEMS_PER_TASK / d).max(1);
    f.storage_mut::<f32>()
        .par_chunks_mut(rows_per_task * d)
        .for_each(|chunk| {
            for row in chunk.chunks_mut(d) {
                norm_row(row, ws, bs, eps, center);
            }
        });
    Ok(from_flex(f))
}

const LANES: usize = 16;

/// `Σ f(x)` in a fixed order: sixteen running sums, the remainder, then the lanes in order.
#[inline(always)]
pub(crate) fn sum_fixed(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.len() / LANES;
    for c in 0..chunks {
        let cx = &x[c * LANES..][..LANES];
        for l in 0..LANES {
            acc[l] += f(cx[l]);
        }
    }
    let mut tail = 0f32;
    for &v in &x[chunks * LANES..] {
        tail += f(v);
    }
    let mut s = 0f32;
    for v in acc {
        s += v;
    }
    s + tail
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn norm_row(row: &mut [f32], w: &[f32], b: Option<&[f32]>, eps: f32, center: bool) {
    let n = row.len() as f32;
    let mean = if center {
        sum_fixed(row, |v| v) / n
    } else {
        0.0
    };
    let var = sum_fixed(row, |v| (v - mean) * (v - mean)) / n;
    let denom = (var + eps).sqrt();
    match b {
        Some(b) => {
            for ((v, &wi), &bi) in row.iter_mut().zip(w).zip(b) {
                *v = (*v - mean) / denom * wi + bi;
            }
        }
        None => {
            for (v, &wi) in row.iter_mut().zip(w) {
                *v = (*v - mean) / denom * wi;
            }
        }
    }
}

/// `act(x)`.
#[inline(always)]
pub(crate) fn act_value(x: f32, act: Act) -> f32 {
    match act {
        Act::Identity => x,
        Act::QuickGelu => quick_gelu(x),
        Act::GeluNew => gelu_new(x),
    }
}

/// `act'(x)`: for `x·σ(a·v(x))`, `σ + x·σ(1 − σ)·a·v'(x)`.
#[inline(always)]
pub(crate) fn act_derivative(x: f32, act: Act) -> f32 {
    match act {
        Act::Identity => 1.0,
        Act::QuickGelu => {
            let s = sigmoid(x * 1.702);
            s + x * s * (1.0 - s) * 1.702
        }
        Act::GeluNew => {
            let u = (x + x * x * x * 0.044715) * TWO_SQRT_2_OVER_PI;
            let s = sigmoid(u);
            s + x * s * (1.0 - s) * TWO_SQRT_2_OVER_PI * (1.0 + x * x * (3.0 * 0.044715))
        }
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn add_then(row: &mut [f32], bias: &[f32], act: Act) {
    match act {
        Act::Identity => row.iter_mut().zip(bias).for_each(|(v, b)| *v += b),
        Act::QuickGelu => row
            .iter_mut()
            .zip(bias)
            .for_each(|(v, b)| *v = quick_gelu(*v + b)),
        Act::GeluNew => row
            .iter_mut()
            .zip(bias)
            .for_each(|(v, b)| *v = gelu_new(*v + b)),
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn apply(xs: &mut [f32], act: Act) {
    match act {
        Act::Identity => {}
        Act::QuickGelu => xs.iter_mut().for_each(|v| *v = quick_gelu(*v)),
        Act::GeluNew => xs.iter_mut().for_each(|v| *v = gelu_new(*v)),
    }
}

#[inline(always)]
fn quick_gelu(x: f32) -> f32 {
    x * sigmoid(x * 1.702)
}

/// `2√(2/π)`: `gelu_new` is `x·σ(2u)`, `u = √(2/π)(x + 0.044715x³)`.
const TWO_SQRT_2_OVER_PI: f32 =
    (2.0 * core::f64::consts::FRAC_2_SQRT_PI * core::f64::consts::FRAC_1_SQRT_2) as f32;

#[inline(always)]
fn gelu_new(x: f32) -> f32 {
    let u = (x + x * x * x * 0.044715) * TWO_SQRT_2_OVER_PI;
    x * sigmoid(u)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    // e⁸⁰ keeps σ above the subnormals, which x86 multiplies ~100× slower.
    1.0 / (1.0 + exp((-x).min(80.0)))
}

/// `eˣ` within 2 ulp over the range where it is a normal f32 (clamped above it, 0 below
/// it: never a subnormal, which would slow every product it meets):
/// `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`, a degree-6 polynomial for `eʳ` (Cephes'
/// `expf` coefficients), and `2ⁿ` put into the exponent bits. Branch-free, so the loops
/// that call it vectorise.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    // ln 2 in two parts, so that n·LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds to the nearest integer, which lands in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let zero = x < -87.3;
    let x = x.clamp(-87.3, 88.3);
    let k = x * LOG2E + ROUND;
    let n = k - ROUND;
    let ni = (k.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    let e = er * f32::from_bits(((ni + 127) as u32) << 23);
    if zero { 0.0 } else { e }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::models::nn;
    type B = crate::models::Cpu;

    /// `n` deterministic values spread over `[-scale, scale]` (shared with `cpu_train`).
    pub(crate) fn values(n: usize, seed: u32, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let h = (i as u32).wrapping_mul(2654435761) ^ seed.wrapping_mul(40503);
                ((h % 20001) as f32 / 10000.0 - 1.0) * scale
            })
            .collect()
    }

    /// `f` run on a pool of `threads` rayon threads (to check that bits do not depend on
    /// the thread count; shared with `matvec` and `few_rows`).
    pub(crate) fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool")
            .install(f)
    }

    fn tensor<const D: usize>(v: Vec<f32>, shape: [usize; D]) -> Tensor<B, D> {
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    /// A CPU tensor's values (shared with `cpu_train`).
    pub(crate) fn vec<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    /// Largest |a − b| / max(|b|, 1) (shared with `cpu_train`).
    pub(crate) fn worst(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
            .fold(0f32, f32::max)
    }

    #[test]
    fn exp_is_within_two_ulp_of_the_exact_exponential() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp() as f32;
            let got = exp(x);
            let ulp = want.to_bits().abs_diff(got.to_bits());
            assert!(ulp <= 2, "exp({x}) = {got}, exactly {want}");
            x += 0.0137;
        }
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) >= 0.0);
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn kernels_agree_with_the_composed_tensor_ops() {
        let (rows, d) = (37, 300);
        let x = values(rows * d, 1, 6.0);
        let w = values(d, 2, 1.5);
        let b = values(d, 3, 0.5);

        let ln = nn::LayerNorm::<B> {
            weight: burn::module::Param::from_tensor(tensor(w.clone(), [d])),
            bias: burn::module::Param::from_tensor(tensor(b.clone(), [d])),
            eps: 1e-5,
        };
        let composed = {
            let x = tensor(x.clone(), [rows, d]);
            let mean = x.clone().mean_dim(1);
            let c = x - mean;
            let var = c.clone().powi_scalar(2).mean_dim(1);
            c / (var + 1e-5).sqrt() * tensor(w.clone(), [d]).unsqueeze::<2>()
                + tensor(b.clone(), [d]).unsqueeze::<2>()
        };
        let fused = ln.forward(tensor(x.clone(), [rows, d]));
        assert!(worst(&vec(fused), &vec(composed)) < 1e-5);

        let rms = layer(rms_norm(
            tensor(x.clone(), [rows, d]),
            tensor(w.clone(), [d]),
            1e-6,
        ));
        let xt = tensor(x.clone(), [rows, d]);
        let var = xt.clone().powi_scalar(2).mean_dim(1);
        let want = xt / (var + 1e-6).sqrt() * tensor(w.clone(), [d]).unsqueeze::<2>();
        assert!(worst(&vec(rms), &vec(want)) < 1e-5);

        let with_bias = |act| {
            layer(bias_act(
                tensor(x.clone(), [rows, d]),
                Some(tensor(b.clone(), [d])),
                act,
            ))
        };
        let yb = tensor(x.clone(), [rows, d]) + tensor(b.clone(), [d]).unsqueeze::<2>();
        // Adding the bias is the same IEEE operation either way: equal bits.
        assert_eq!(vec(with_bias(Act::Identity)), vec(yb.clone()));
        let sig = |t: Tensor<B, 2>| burn::tensor::activation::sigmoid(t);
        let quick = yb.clone() * sig(yb.clone() * 1.702);
        assert!(worst(&vec(with_bias(Act::QuickGelu)), &vec(quick)) < 2e-6);
        let gelu = yb.clone()
            * 0.5
            * ((yb.clone() + yb.clone().powi_scalar(3) * 0.044715)
                * (2.0 / std::f64::consts::PI).sqrt())
            .tanh()
            + yb.clone() * 0.5;
        assert!(worst(&vec(with_bias(Act::GeluNew)), &vec(gelu)) < 2e-6);
    }

    fn layer<const D: usize>(r: Result<Tensor<B, D>, Tensor<B, D>>) -> Tensor<B, D> {
        r.unwrap_or_else(|_| panic!("the CPU backend takes the fused path"))
    }

    #[test]
    fn shared_and_strided_inputs_are_not_written_in_place() {
        let x = tensor(values(6 * 8, 4, 2.0), [6, 8]);
        let before = vec(x.clone());
        let _ = layer(activation(x.clone(), Act::GeluNew));
        assert_eq!(vec(x.clone()), before, "a clone shares the storage");
        let t = x.clone().transpose();
        let got = vec(layer(bias_act(
            t.clone(),
            Some(tensor(vec![1.0; 6], [6])),
            Act::Identity,
        )));
        let want = vec(t + 1.0);
        assert_eq!(got, want);
        assert_eq!(vec(x), before);
    }

    #[test]
    fn row_major_copies_keep_the_values_of_transposed_and_sliced_views() {
        let stored = tensor(values(70 * 37, 7, 1.0), [70, 37]);
        let want = |t: Tensor<B, 2>| t.into_data().to_vec::<f32>().unwrap();
        // A whole transposed matrix (an HF `Linear` weight): the tiled copy.
        let view = stored.clone().transpose();
        assert_eq!(want(row_major_for_inference(view.clone())), want(view));
        // Part of one: burn-flex's copy.
        let part = stored.transpose().narrow(0, 3, 20).narrow(1, 5, 40);
        assert_eq!(want(row_major_for_inference(part.clone())), want(part));
    }

    #[test]
    fn merged_heads_are_the_swapped_and_reshaped_heads() {
        let x = tensor(values(2 * 3 * 5 * 4, 9, 1.0), [2, 3, 5, 4]);
        let want = x.clone().swap_dims(1, 2).reshape([2, 5, 12]);
        let got = merge_heads(x.clone()).unwrap_or_else(|_| panic!("CPU"));
        assert_eq!(got.into_data(), want.into_data());
        // From a strided view too (a swapped tensor), as attention hands it over.
        let v = x.swap_dims(1, 2);
        let want = v.clone().swap_dims(1, 2).reshape([2, 3, 20]);
        assert_eq!(
            merge_heads(v).unwrap_or_else(|_| panic!("CPU")).into_data(),
            want.into_data()
        );
    }

    #[test]
    fn other_backends_get_their_tensor_back() {
        type Nd = burn::backend::NdArray;
        let x = Tensor::<Nd, 2>::ones([2, 3], &Default::default());
        assert!(activation(x.clone(), Act::QuickGelu).is_err());
        assert!(layer_norm(x.clone(), x.clone().sum_dim(0).squeeze(), None, 1e-5).is_err());
        // Under autodiff the CPU backend takes the fused training ops (`cpu_train`).
        type AD = burn::backend::Autodiff<B>;
        let x = Tensor::<AD, 2>::ones([2, 3], &Default::default());
        assert!(activation(x, Act::QuickGelu).is_ok());
    }

    #[test]
    fn the_bits_do_not_depend_on_the_thread_count() {
        let (rows, d) = (300, 768);
        let x = values(rows * d, 5, 4.0);
        let w = values(d, 6, 1.0);
        let run = |threads: usize| {
            with_threads(threads, || {
                let a = layer(activation(tensor(x.clone(), [rows, d]), Act::QuickGelu));
                let n = layer(layer_norm(
                    tensor(x.clone(), [rows, d]),
                    tensor(w.clone(), [d]),
                    Some(tensor(w.clone(), [d])),
                    1e-5,
                ));
                (vec(a), vec(n))
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(4));
    }
}
