//! Matrix products on the CPU backend, plain and under autodiff, through the same `gemm`
//! calls burn-flex makes, into output buffers that are neither zeroed nor copied.
//!
//! Written here because burn-flex 0.21 builds every product's output with
//! `FlexTensor::empty`, which zero-fills a `Vec<u8>` and then copies it whole into a
//! 16-byte-aligned allocation (`Bytes::from_bytes_vec`): two passes over memory that
//! `gemm` then overwrites. In a T5-small training step (`models_check --bench --only t5`)
//! that `memset` + `memcpy` took about 11% of the samples. The calls to `gemm` here are
//! the ones burn-flex makes (same strides, same thresholds for splitting work between
//! threads), so the values are bit for bit the ones burn-flex computes; a test checks it.

use super::cpu::{primitive_as, tensor_from};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::ops::{FloatTensor, FloatTensorOps};
use burn_flex::{FlexTensor, Layout};
use rayon::prelude::*;
use std::mem::MaybeUninit;

type Inner = super::Cpu;
type TrainTensor = FloatTensor<super::CpuTrain>;

/// burn-flex's thresholds (`ops/matmul.rs`), kept equal so the work is split the same way.
const PARALLEL_THRESHOLD: usize = 192 * 192 * 192;
const BATCH_PARALLEL_THRESHOLD: usize = 128 * 128 * 128;

/// `a · b` over the last two dimensions, batch dimensions broadcast where one side has 1.
/// On the CPU backend (plain or autodiff) it runs here; on any other backend it is
/// `a.matmul(b)`.
pub fn matmul<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    // The clones share storage; they only let the tensors go back to burn unchanged.
    let flex = |t: &Tensor<B, D>| primitive_as::<FlexTensor, B, D>(t.clone()).ok();
    if let (Some(x), Some(y)) = (flex(&a), flex(&b)) {
        if let Some(p) = forward_product(&x, &y) {
            return tensor_from(p);
        }
    } else {
        let train = |t: &Tensor<B, D>| primitive_as::<TrainTensor, B, D>(t.clone()).ok();
        if let (Some(x), Some(y)) = (train(&a), train(&b))
            && let Some(p) = train_product(x, y)
        {
            return tensor_from(p);
        }
    }
    a.matmul(b)
}

/// The batch shape of `a · b` and each side's element stride per batch dimension (0 where
/// it broadcasts); `None` when the shapes do not fit or a dimension is empty, which the
/// caller leaves to burn (and its error messages).
fn plan(a: &Layout, b: &Layout) -> Option<(Vec<usize>, Vec<isize>, Vec<isize>)> {
    let (sa, sb) = (a.shape(), b.shape());
    let d = sa.num_dims();
    if d < 2 || sb.num_dims() != d || sa[d - 1] != sb[d - 2] {
        return None;
    }
    if [sa[d - 2], sa[d - 1], sb[d - 1]].contains(&0) {
        return None;
    }
    let mut batch = Vec::with_capacity(d - 2);
    let (mut ba, mut bb) = (Vec::with_capacity(d - 2), Vec::with_capacity(d - 2));
    for i in 0..d - 2 {
        let (x, y) = (sa[i], sb[i]);
        if x != y && x != 1 && y != 1 {
            return None;
        }
        batch.push(x.max(y));
        ba.push(if x == 1 { 0 } else { a.strides()[i] });
        bb.push(if y == 1 { 0 } else { b.strides()[i] });
    }
    Some((batch, ba, bb))
}

/// Whether the last two dimensions of `l` are a transposed view (a column-major matrix).
fn column_major(l: &Layout) -> bool {
    let d = l.num_dims();
    d >= 2 && l.strides()[d - 2] == 1 && l.shape()[d - 2] > 1 && l.shape()[d - 1] > 1
}

/// `a · b` for f32 CPU tensors of equal rank; `None` where [`plan`] declines. With
/// `transposed_out` the result is stored column-major and returned as a transposed view:
/// `gemm` runs at 1.3–2.6× the speed when the output's layout matches its operands'
/// (measured on the T5 and GPT-2 training shapes, e.g. 128×512·512×512 from two
/// transposed views: 114 GFLOP/s into a row-major output, 293 into a column-major one).
fn product(a: &FlexTensor, b: &FlexTensor, transposed_out: bool) -> Option<FlexTensor> {
    let (la, lb) = (a.layout(), b.layout());
    let (batch, bsa, bsb) = plan(la, lb)?;
    let d = la.num_dims();
    let (m, k, n) = (la.shape()[d - 2], la.shape()[d - 1], lb.shape()[d - 1]);
    let (ars, acs) = (la.strides()[d - 2], la.strides()[d - 1]);
    let (brs, bcs) = (lb.strides()[d - 2], lb.strides()[d - 1]);
    let count: usize = batch.iter().product();
    let per = m.checked_mul(n)?;

    // Slices rather than pointers, so the closure below can cross threads.
    let (da, db) = (a.storage::<f32>(), b.storage::<f32>());
    let (oa, ob) = (la.start_offset() as isize, lb.start_offset() as isize);
    // The offset of batch element `i` on a side with strides `s`.
    let offset = |mut i: usize, s: &[isize]| -> isize {
        let mut off = 0;
        for j in (0..batch.len()).rev() {
            off += (i % batch[j]) as isize * s[j];
            i /= batch[j];
        }
        off
    };
    let (dst_rs, dst_cs) = if transposed_out {
        (1, m as isize)
    } else {
        (n as isize, 1)
    };
    let one = |out: &mut [MaybeUninit<f32>], i: usize, par: gemm::Parallelism| {
        // SAFETY: the offsets and strides come from the tensors' own layouts, so every
        // element `gemm` reads lies in their storage; `out` holds exactly m·n elements,
        // which `gemm` writes all of (`read_dst` is false) before anything reads them.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.as_mut_ptr().cast::<f32>(),
                dst_cs,
                dst_rs,
                false,
                da.as_ptr().offset(oa + offset(i, &bsa)),
                acs,
                ars,
                db.as_ptr().offset(ob + offset(i, &bsb)),
                bcs,
                brs,
                0.0,
                1.0,
                false,
                false,
                false,
                par,
            )
        }
    };

    let mut out: Vec<f32> = Vec::with_capacity(count.checked_mul(per)?);
    let spare = &mut out.spare_capacity_mut()[..count * per];
    let ops = per.saturating_mul(k);
    let total = count.saturating_mul(ops);
    let batch_parallel = count >= 4 && total >= BATCH_PARALLEL_THRESHOLD;
    if ops >= PARALLEL_THRESHOLD && !batch_parallel {
        for (i, o) in spare.chunks_mut(per).enumerate() {
            one(o, i, gemm::Parallelism::Rayon(0));
        }
    } else if total >= BATCH_PARALLEL_THRESHOLD && count > 1 {
        spare
            .par_chunks_mut(per)
            .enumerate()
            .for_each(|(i, o)| one(o, i, gemm::Parallelism::None));
    } else {
        for (i, o) in spare.chunks_mut(per).enumerate() {
            one(o, i, gemm::Parallelism::None);
        }
    }
    // SAFETY: `gemm` has written all count·m·n elements above.
    unsafe { out.set_len(count * per) };
    let mut shape = batch;
    if transposed_out {
        shape.extend([n, m]);
        Some(transposed(&FlexTensor::from_data(TensorData::new(
            out, shape,
        ))))
    } else {
        shape.extend([m, n]);
        Some(FlexTensor::from_data(TensorData::new(out, shape)))
    }
}

/// A forward product: column-major only when both operands are (`gemm`'s fast case for
/// them, and the LM head's shape); otherwise row-major, which the ops after it expect.
fn forward_product(a: &FlexTensor, b: &FlexTensor) -> Option<FlexTensor> {
    product(a, b, column_major(a.layout()) && column_major(b.layout()))
}

/// `t` with its last two dimensions swapped: a view, no copy.
fn transposed(t: &FlexTensor) -> FlexTensor {
    let d = t.layout().num_dims();
    t.transpose(d - 2, d - 1)
}

/// Sums `g` over the batch dimensions where the operand had 1 (it was broadcast), as
/// burn's autodiff does.
fn reduce_to(mut g: FlexTensor, like: &[usize]) -> FlexTensor {
    let shape = g.layout().shape().to_vec();
    for (i, (&s, &l)) in shape.iter().zip(like).enumerate() {
        if s != l {
            g = Inner::float_sum_dim(g, i);
        }
    }
    g
}

#[derive(Debug)]
struct MatmulOp;

/// What the backward pass needs of one operand: its values (kept only if the other side
/// needs a gradient), its shape, and whether it is a transposed view.
#[derive(Clone, Debug)]
struct Side {
    values: Option<FlexTensor>,
    shape: Vec<usize>,
    column_major: bool,
}

impl Side {
    fn of(t: &FlexTensor, keep: bool) -> Side {
        Side {
            values: keep.then(|| t.clone()),
            shape: t.layout().shape().to_vec(),
            column_major: column_major(t.layout()),
        }
    }
}

type State = (Side, Side);

impl Backward<Inner, 2> for MatmulOp {
    type State = State;

    fn backward(self, ops: Ops<State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (a, b) = ops.state;
        let g = grads.consume::<Inner>(&ops.node);
        let [pa, pb] = ops.parents;
        // Each gradient in its operand's layout: a transposed view's gradient goes back
        // through the transpose as a row-major tensor, with no copy.
        let product = |x: &FlexTensor, y: &FlexTensor, like: &Side| {
            product(x, y, like.column_major)
                .unwrap_or_else(|| Inner::float_matmul(x.clone(), y.clone()))
        };
        if let (Some(p), Some(bv)) = (pa, &b.values) {
            let ga = product(&g, &transposed(bv), &a);
            grads.register::<Inner>(p.id, reduce_to(ga, &a.shape));
        }
        if let (Some(p), Some(av)) = (pb, &a.values) {
            let gb = product(&transposed(av), &g, &b);
            grads.register::<Inner>(p.id, reduce_to(gb, &b.shape));
        }
    }
}

fn train_product(a: TrainTensor, b: TrainTensor) -> Option<TrainTensor> {
    let y = forward_product(&a.primitive, &b.primitive)?;
    let (a_tracked, b_tracked) = (a.is_tracked(), b.is_tracked());
    Some(
        match MatmulOp
            .prepare::<NoCheckpointing>([a.node.clone(), b.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let sides = (
                    Side::of(&a.primitive, b_tracked),
                    Side::of(&b.primitive, a_tracked),
                );
                prep.finish(sides, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::cpu::tests::values;
    type AD = super::super::CpuTrain;

    fn t<B: Backend, const D: usize>(shape: [usize; D], seed: u32) -> Tensor<B, D> {
        let v = values(shape.iter().product(), seed, 2.0);
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    fn bits<B: Backend, const D: usize>(x: Tensor<B, D>) -> Vec<u32> {
        x.into_data()
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    #[test]
    fn products_are_burn_flex_products_bit_for_bit() {
        // 2-D, a transposed view, a broadcast batch, a permuted (strided) operand, and a
        // product large enough for `gemm` to split between threads.
        let a = t::<Inner, 2>([37, 50], 1);
        let b = t::<Inner, 2>([50, 29], 2);
        assert_eq!(
            bits(matmul(a.clone(), b.clone())),
            bits(a.clone().matmul(b))
        );
        let bt = t::<Inner, 2>([29, 50], 3).transpose();
        assert_eq!(
            bits(matmul(a.clone(), bt.clone())),
            bits(a.matmul(bt.clone()))
        );
        // Both transposed: the result is a column-major view, with the same values.
        let at = t::<Inner, 2>([50, 37], 10).transpose();
        let y = matmul(at.clone(), bt.clone());
        assert_eq!(bits(y.clone()), bits(at.matmul(bt)));
        assert_eq!(y.dims(), [37, 29]);
        let a = t::<Inner, 4>([2, 3, 16, 8], 4);
        let b = t::<Inner, 4>([1, 3, 8, 16], 5);
        assert_eq!(
            bits(matmul(a.clone(), b.clone())),
            bits(a.clone().matmul(b))
        );
        let p = t::<Inner, 4>([2, 16, 3, 8], 6)
            .swap_dims(1, 2)
            .swap_dims(2, 3);
        assert_eq!(bits(matmul(a.clone(), p.clone())), bits(a.matmul(p)));
        let a = t::<Inner, 2>([300, 256], 7);
        let b = t::<Inner, 2>([256, 300], 8);
        assert_eq!(bits(matmul(a.clone(), b.clone())), bits(a.matmul(b)));
        // Empty and mismatched shapes go to burn.
        let e = t::<Inner, 2>([0, 4], 9);
        assert_eq!(matmul(e, t::<Inner, 2>([4, 3], 1)).dims(), [0, 3]);
    }

    #[test]
    fn gradients_are_burn_autodiff_gradients_bit_for_bit() {
        for (sa, sb) in [([3, 2, 5, 7], [3, 2, 7, 4]), ([3, 2, 5, 7], [1, 2, 7, 4])] {
            let run = |ours: bool| {
                let a = t::<AD, 4>(sa, 10).require_grad();
                let b = t::<AD, 4>(sb, 11).require_grad();
                let y = if ours {
                    matmul(a.clone(), b.clone())
                } else {
                    a.clone().matmul(b.clone())
                };
                let w = t::<AD, 4>(y.dims(), 12);
                let g = (y.clone() * w).sum().backward();
                let (ga, gb) = (a.grad(&g).unwrap(), b.grad(&g).unwrap());
                (bits(y.inner()), bits(ga), bits(gb))
            };
            assert_eq!(run(true), run(false), "shapes {sa:?} · {sb:?}");
        }
        // Transposed views (an HF `Linear` weight, the tied LM head's `W·hᵀ`): their
        // gradients come out column-major and must still be burn's, bit for bit.
        for (ta, tb) in [(false, true), (true, false), (true, true)] {
            let run = |ours: bool| {
                let (m, k, n) = (33, 70, 45);
                let pa = t::<AD, 2>(if ta { [k, m] } else { [m, k] }, 13).require_grad();
                let pb = t::<AD, 2>(if tb { [n, k] } else { [k, n] }, 14).require_grad();
                let a = if ta {
                    pa.clone().transpose()
                } else {
                    pa.clone()
                };
                let b = if tb {
                    pb.clone().transpose()
                } else {
                    pb.clone()
                };
                let y = if ours { matmul(a, b) } else { a.matmul(b) };
                let w = t::<AD, 2>(y.dims(), 15);
                let g = (y.clone() * w).sum().backward();
                let (ga, gb) = (pa.grad(&g).unwrap(), pb.grad(&g).unwrap());
                (bits(y.inner()), bits(ga), bits(gb))
            };
            assert_eq!(run(true), run(false), "transposed: {ta} {tb}");
        }
        // Only one side tracked: the other gets no gradient and nothing breaks.
        let a = t::<AD, 2>([4, 3], 1).require_grad();
        let b = t::<AD, 2>([3, 2], 2);
        let g = matmul(a.clone(), b.clone()).sum().backward();
        assert_eq!(a.grad(&g).unwrap().dims(), [4, 3]);
        assert!(b.grad(&g).is_none());
    }
}
