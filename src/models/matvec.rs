//! Products of a few rows with a large weight on the CPU backend: the shape of every step
//! of generation (batch 1 to a few rows, one new token each), where the weight is read
//! once per token and memory bandwidth is the limit.
//!
//! Written here because the `gemm` crate treats these as general matrix products: on
//! GPT-2-small greedy generation it reached 0.65× PyTorch's tokens/s. These loops stream
//! each weight row exactly once, split the output columns between threads, and accumulate
//! every output in a fixed order (sixteen lanes, then the lanes in order), so the bits do
//! not depend on the thread count nor on the SIMD width the CPU offers (no fused
//! multiply-add: `a * b + c` rounds twice on every target).

use super::few_rows;
use burn::prelude::*;
use burn_flex::FlexTensor;
use rayon::prelude::*;
use std::any::Any;

/// Batches up to this many rows take this path; larger ones go to `few_rows` (up to its
/// `MAX_ROWS`), then to `gemm`.
const MAX_ROWS: usize = 4;
/// Output columns per parallel task of a dot-product product.
const COLUMNS_PER_TASK: usize = 512;
/// Parts the rows of a row-major weight are split into (fixed, for determinism).
const K_PARTS: usize = 8;

/// `x · w` for `x` `[rows, k]` and `w` `[k, n]` (contiguous, or the transposed view of a
/// contiguous `[n, k]`), when the backend is the CPU one (not under autodiff) and `rows`
/// is at most `few_rows::MAX_ROWS`; `None` otherwise (the caller then uses `matmul`).
pub fn small_matmul<B: Backend>(x: &Tensor<B, 2>, w: &Tensor<B, 2>) -> Option<Tensor<B, 2>> {
    let [rows, k] = x.dims();
    let [k2, n] = w.dims();
    if rows == 0 || rows > few_rows::MAX_ROWS || k != k2 {
        return None;
    }
    let isa = few_rows::Isa::detect();
    if rows > MAX_ROWS && isa.is_none() {
        return None;
    }
    let xp = x.clone().into_primitive().tensor();
    let wp = w.clone().into_primitive().tensor();
    let xf = (&xp as &dyn Any).downcast_ref::<FlexTensor>()?;
    let wf = (&wp as &dyn Any).downcast_ref::<FlexTensor>()?;
    if xf.dtype() != burn::tensor::DType::F32 || wf.dtype() != burn::tensor::DType::F32 {
        return None;
    }
    let xc = xf.to_contiguous();
    let xs: &[f32] = &xc.storage::<f32>()[xc.layout().start_offset()..][..rows * k];
    let layout = wf.layout();
    let strides = layout.strides();
    let all: &[f32] = wf.storage::<f32>();
    let off = layout.start_offset();
    let ws = all.get(off..off + k * n)?;
    let row_major = strides == [n as isize, 1];
    if !row_major && strides != [1, k as isize] {
        return None;
    }
    let out = if rows > MAX_ROWS {
        if row_major {
            few_rows::times_matrix(xs, ws, rows, k, n, isa)?
        } else {
            few_rows::times_transposed(xs, ws, rows, k, n, isa)?
        }
    } else {
        let mut out = vec![0f32; rows * n];
        if row_major {
            rows_times_matrix(xs, ws, rows, k, n, &mut out);
        } else {
            rows_times_transposed(xs, ws, rows, k, n, &mut out);
        }
        out
    };
    let dev = x.device();
    Some(Tensor::from_data(TensorData::new(out, [rows, n]), &dev))
}

/// `out[r, j] = Σ_i x[r, i] · w[i, j]`, `w` row-major `[k, n]`. The rows of `w` are split
/// into a fixed number of parts (not one per thread, so the bits do not depend on the
/// thread count); each part streams its rows of `w` whole, four at a time, into a partial
/// sum, and the partial sums are added in part order.
fn rows_times_matrix(x: &[f32], w: &[f32], rows: usize, k: usize, n: usize, out: &mut [f32]) {
    let per = k.div_ceil(K_PARTS).max(1);
    let partials: Vec<Vec<f32>> = (0..k.div_ceil(per))
        .into_par_iter()
        .map(|p| {
            let (i0, i1) = (p * per, ((p + 1) * per).min(k));
            let mut acc = vec![0f32; rows * n];
            let mut i = i0;
            while i + 4 <= i1 {
                let ws = [
                    &w[i * n..(i + 1) * n],
                    &w[(i + 1) * n..(i + 2) * n],
                    &w[(i + 2) * n..(i + 3) * n],
                    &w[(i + 3) * n..(i + 4) * n],
                ];
                for r in 0..rows {
                    let a = [
                        x[r * k + i],
                        x[r * k + i + 1],
                        x[r * k + i + 2],
                        x[r * k + i + 3],
                    ];
                    axpy4(a, ws, &mut acc[r * n..(r + 1) * n]);
                }
                i += 4;
            }
            for i in i..i1 {
                for r in 0..rows {
                    axpy(
                        x[r * k + i],
                        &w[i * n..(i + 1) * n],
                        &mut acc[r * n..(r + 1) * n],
                    );
                }
            }
            acc
        })
        .collect();
    out.fill(0.0);
    for part in partials {
        add_into(&part, out);
    }
}

/// `out[r, j] = Σ_i x[r, i] · wt[j, i]`, `wt` row-major `[n, k]` (a tied LM head, or an HF
/// `Linear` weight): one dot product per output, columns split between tasks.
fn rows_times_transposed(x: &[f32], wt: &[f32], rows: usize, k: usize, n: usize, out: &mut [f32]) {
    let mut by_column = vec![0f32; n * rows];
    by_column
        .par_chunks_mut(COLUMNS_PER_TASK * rows)
        .enumerate()
        .for_each(|(task, chunk)| {
            let j0 = task * COLUMNS_PER_TASK;
            for (jj, cols) in chunk.chunks_mut(rows).enumerate() {
                let wrow = &wt[(j0 + jj) * k..(j0 + jj + 1) * k];
                for (r, o) in cols.iter_mut().enumerate() {
                    *o = dot(&x[r * k..(r + 1) * k], wrow);
                }
            }
        });
    for j in 0..n {
        for r in 0..rows {
            out[r * n + j] = by_column[j * rows + r];
        }
    }
}

const LANES: usize = 16;

/// `y += a · x`, elementwise (vectorised for the CPU's widest SIMD at run time).
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * *xi;
    }
}

/// `y += ((a0·w0 + a1·w1) + a2·w2) + a3·w3`, elementwise.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn axpy4(a: [f32; 4], w: [&[f32]; 4], y: &mut [f32]) {
    let n = y.len();
    let (w0, w1, w2, w3) = (&w[0][..n], &w[1][..n], &w[2][..n], &w[3][..n]);
    for j in 0..n {
        y[j] += a[0] * w0[j] + a[1] * w1[j] + a[2] * w2[j] + a[3] * w3[j];
    }
}

/// `y += x`, elementwise.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn add_into(x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += *xi;
    }
}

/// `Σ a[i] · b[i]` in a fixed order: sixteen running sums (lane `l` takes `i ≡ l mod 16`),
/// then the remainder, then the lanes added in order.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = a.len() / LANES;
    for c in 0..chunks {
        let (ca, cb) = (&a[c * LANES..][..LANES], &b[c * LANES..][..LANES]);
        for l in 0..LANES {
            acc[l] += ca[l] * cb[l];
        }
    }
    let mut tail = 0f32;
    for i in chunks * LANES..a.len() {
        tail += a[i] * b[i];
    }
    let mut s = 0f32;
    for v in acc {
        s += v;
    }
    s + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::cpu::tests::with_threads;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        crate::models::cpu::tests::values(n, seed, 1.0)
    }
    type B = crate::models::Cpu;

    #[test]
    fn small_products_match_matmul_for_both_weight_layouts() {
        let dev = Default::default();
        for (rows, k, n) in [
            (1, 768, 2304),
            (3, 70, 1030),
            (4, 33, 5),
            (5, 70, 1030),
            (32, 33, 5),
        ] {
            let x =
                Tensor::<B, 2>::from_data(TensorData::new(values(rows * k, 1), [rows, k]), &dev);
            let w = Tensor::<B, 2>::from_data(TensorData::new(values(k * n, 2), [k, n]), &dev);
            let wt = Tensor::<B, 2>::from_data(TensorData::new(values(k * n, 3), [n, k]), &dev)
                .transpose();
            for w in [w, wt] {
                let want = x
                    .clone()
                    .matmul(w.clone())
                    .into_data()
                    .to_vec::<f32>()
                    .unwrap();
                let got = small_matmul(&x, &w).expect("the CPU backend takes this path");
                let got = got.into_data().to_vec::<f32>().unwrap();
                let worst = want
                    .iter()
                    .zip(&got)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(worst < 1e-4, "{rows}x{k}x{n}: {worst}");
            }
        }
        let big = Tensor::<B, 2>::zeros([few_rows::MAX_ROWS + 1, 8], &dev);
        assert!(small_matmul(&big, &Tensor::<B, 2>::zeros([8, 8], &dev)).is_none());
    }

    #[test]
    fn the_bits_do_not_depend_on_the_thread_count() {
        let dev = Default::default();
        let x = Tensor::<B, 2>::from_data(TensorData::new(values(2 * 300, 5), [2, 300]), &dev);
        let w =
            Tensor::<B, 2>::from_data(TensorData::new(values(300 * 3000, 6), [300, 3000]), &dev);
        let wt =
            Tensor::<B, 2>::from_data(TensorData::new(values(300 * 3000, 7), [3000, 300]), &dev)
                .transpose();
        let run = |threads: usize| {
            with_threads(threads, || {
                let a = small_matmul(&x, &w)
                    .unwrap()
                    .into_data()
                    .to_vec::<f32>()
                    .unwrap();
                let b = small_matmul(&x, &wt)
                    .unwrap()
                    .into_data()
                    .to_vec::<f32>()
                    .unwrap();
                (a, b)
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(4));
    }
}
