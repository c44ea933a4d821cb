//! Products of 5 to 64 rows by a weight matrix on the CPU backend, outside training: a step
//! of batched generation or of a beam search (beam 32 is 32 rows), where the `gemm` crate
//! reaches a third to a half of what it does on large products.
//!
//! Written here because `gemm` 0.19 (through burn-flex) picks its blocking for large
//! products: on 32 rows it measured 92–141 GFLOP/s against PyTorch's 200–257 on the
//! GPT-2 shapes (2-core Xeon), and 32×768·768×3072 fell to 56–92, its weight rows 12 KiB
//! apart landing on the same cache sets. This module packs each block of the weight into
//! a contiguous buffer and runs a register-blocked kernel over it; the tied LM head is read
//! as it lies, its rows broadcast against xᵀ (measurements: docs/benchmarks.md, "Batched
//! decoding on the CPU").
//!
//! Every output is one fused multiply-add chain over `k` in order, starting from zero, so
//! the bits do not depend on the thread count, the tiling, nor the instruction set (the
//! AVX-512 and AVX2 kernels give the same bits, and so does [`reference`]).

use rayon::prelude::*;

/// Batches of more rows go to `gemm`, which is faster there (measured: 128 rows).
pub const MAX_ROWS: usize = 64;
/// Rows of the weight multiplied per pass over the packed panel, kept in the first-level
/// cache while every row group of `x` goes over them.
const KC: usize = 128;
/// Output columns per parallel task of the row-major product (a multiple of both tiles).
const TASK_COLUMNS: usize = 128;
/// Weight rows of the tied-head product handed to each parallel task.
const HEAD_ROWS_PER_TASK: usize = 240;

/// The instruction set the kernels run with on this CPU, if any of theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
}

impl Isa {
    pub fn detect() -> Option<Isa> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Some(Isa::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Some(Isa::Avx2);
            }
        }
        None
    }
}

/// `out[r, j] = Σ_i x[r, i] · w[i, j]` for `x` `[rows, k]` and `w` `[k, n]`, both
/// row-major; `None` where this CPU has neither kernel's instruction set, or where a slice
/// is shorter than its shape says.
pub fn times_matrix(
    x: &[f32],
    w: &[f32],
    rows: usize,
    k: usize,
    n: usize,
    isa: Option<Isa>,
) -> Option<Vec<f32>> {
    let isa = isa.or_else(Isa::detect)?;
    if x.len() < rows * k || w.len() < k * n {
        return None; // operands shorter than their shape
    }
    if k == 0 || n == 0 {
        return Some(vec![0f32; rows * n]);
    }
    let tile = match isa {
        Isa::Avx512 => x86::AVX512_TILE,
        Isa::Avx2 => x86::AVX2_TILE,
    };
    // Tasks own TASK_COLUMNS-wide column blocks, read from the weight as 512-byte runs of
    // its rows. Per block of KC weight rows, a task packs its block as tiles
    // `[tile][KC][tile width]`, then multiplies every tile into its `[tile][rows][width]`
    // accumulators. Each output belongs to one task, so the bits do not depend on threads.
    let results: Vec<(usize, Vec<f32>)> = (0..n.div_ceil(TASK_COLUMNS))
        .into_par_iter()
        .map_init(
            || vec![0f32; KC * TASK_COLUMNS],
            |panel, t| {
                let c0 = t * TASK_COLUMNS;
                let cols = (n - c0).min(TASK_COLUMNS);
                let tiles = cols.div_ceil(tile);
                let mut acc = vec![0f32; tiles * rows * tile];
                for i0 in (0..k).step_by(KC) {
                    let kc = (k - i0).min(KC);
                    for i in 0..kc {
                        let src = &w[(i0 + i) * n + c0..][..cols];
                        for (s, part) in src.chunks(tile).enumerate() {
                            let dst = &mut panel[(s * kc + i) * tile..][..tile];
                            dst[..part.len()].copy_from_slice(part);
                            dst[part.len()..].fill(0.0);
                        }
                    }
                    for s in 0..tiles {
                        let p = &panel[s * kc * tile..(s + 1) * kc * tile];
                        let a = &mut acc[s * rows * tile..(s + 1) * rows * tile];
                        // SAFETY: `isa` was detected on this CPU (or named by a test that
                        // checked it); `x` holds rows·k values, `p` kc·tile, `a` rows·tile.
                        unsafe {
                            match isa {
                                Isa::Avx512 => x86::panel_avx512(x, rows, k, i0, p, a),
                                Isa::Avx2 => x86::panel_avx2(x, rows, k, i0, p, a),
                            }
                        }
                    }
                }
                (c0, acc)
            },
        )
        .collect();
    let mut out = vec![0f32; rows * n];
    out.par_chunks_mut(n).enumerate().for_each(|(r, row)| {
        for (c0, acc) in &results {
            for (s, a) in acc.chunks(rows * tile).enumerate() {
                let at = c0 + s * tile;
                let width = (n - at).min(tile);
                row[at..at + width].copy_from_slice(&a[r * tile..r * tile + width]);
            }
        }
    });
    Some(out)
}

/// `out[r, j] = Σ_i x[r, i] · wt[j, i]` for `x` `[rows, k]` and `wt` `[n, k]` (a tied LM
/// head), both row-major; `None` as for [`times_matrix`]. The weight is read as it lies,
/// in one pass, its rows broadcast against `xᵀ`.
pub fn times_transposed(
    x: &[f32],
    wt: &[f32],
    rows: usize,
    k: usize,
    n: usize,
    isa: Option<Isa>,
) -> Option<Vec<f32>> {
    let isa = isa.or_else(Isa::detect)?;
    if x.len() < rows * k || wt.len() < k * n {
        return None; // operands shorter than their shape
    }
    if k == 0 || n == 0 {
        // An empty sum (the kernels divide by k to find their row counts).
        return Some(vec![0f32; rows * n]);
    }
    // Rows of `x` per pass (four vectors), and the vector width.
    let (per_pass, lanes) = match isa {
        Isa::Avx512 => (64, 16),
        Isa::Avx2 => (32, 8),
    };
    let mut out = vec![0f32; rows * n];
    for r0 in (0..rows).step_by(per_pass) {
        let chunk = (rows - r0).min(per_pass);
        let width = chunk.div_ceil(lanes) * lanes;
        // xᵀ, padded with zero columns to whole vectors.
        let mut xt = vec![0f32; k * width];
        for r in 0..chunk {
            for i in 0..k {
                xt[i * width + r] = x[(r0 + r) * k + i];
            }
        }
        // Each task fills `out`'s columns j0..j1 of this chunk's rows, in its own buffer
        // (column-major within the task: `[j][r]`).
        let parts: Vec<(usize, Vec<f32>)> = (0..n.div_ceil(HEAD_ROWS_PER_TASK))
            .into_par_iter()
            .map(|t| {
                let j0 = t * HEAD_ROWS_PER_TASK;
                let j1 = (j0 + HEAD_ROWS_PER_TASK).min(n);
                let mut part = vec![0f32; (j1 - j0) * width];
                // SAFETY: as in `times_matrix`; `wt` holds rows j0..j1 of k values.
                unsafe {
                    match isa {
                        Isa::Avx512 => x86::head_avx512(&wt[j0 * k..j1 * k], k, &xt, &mut part),
                        Isa::Avx2 => x86::head_avx2(&wt[j0 * k..j1 * k], k, &xt, &mut part),
                    }
                }
                (j0, part)
            })
            .collect();
        // Back to rows, one output row per task.
        out[r0 * n..(r0 + chunk) * n]
            .par_chunks_mut(n)
            .enumerate()
            .for_each(|(r, row)| {
                for (j0, part) in &parts {
                    for (o, col) in row[*j0..].iter_mut().zip(part.chunks(width)) {
                        *o = col[r];
                    }
                }
            });
    }
    Some(out)
}

/// The rule both kernels follow, one output at a time: `fma(x[r, i], w[i, j], acc)` for i
/// in order from acc = 0. Slow; for tests.
pub fn reference(
    x: &[f32],
    w_at: impl Fn(usize, usize) -> f32,
    rows: usize,
    k: usize,
    n: usize,
) -> Vec<f32> {
    let mut out = vec![0f32; rows * n];
    for r in 0..rows {
        for j in 0..n {
            let mut acc = 0f32;
            for i in 0..k {
                acc = x[r * k + i].mul_add(w_at(i, j), acc);
            }
            out[r * n + j] = acc;
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Output columns per packed panel: four vectors (AVX-512) or two (AVX2), so that six
    /// rows' accumulators fit the registers (24 of 32, or 12 of 16).
    pub const AVX512_TILE: usize = 64;
    pub const AVX2_TILE: usize = 16;
    /// Row groups of `x` hold at most this many rows.
    const GROUP: usize = 6;

    /// The handful of vector operations the kernels are written in.
    trait Simd {
        type V: Copy;
        const LANES: usize;
        unsafe fn zero() -> Self::V;
        unsafe fn load(p: *const f32) -> Self::V;
        unsafe fn splat(p: *const f32) -> Self::V;
        /// `a · b + c`, rounded once.
        unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
        unsafe fn store(p: *mut f32, v: Self::V);
    }

    /// One `Simd` implementation per instruction set, from its intrinsics.
    macro_rules! simd {
        ($name:ident, $v:ty, $lanes:expr, $zero:ident, $load:ident, $splat:ident, $fma:ident, $store:ident) => {
            struct $name;
            impl Simd for $name {
                type V = $v;
                const LANES: usize = $lanes;
                #[inline(always)]
                unsafe fn zero() -> $v {
                    unsafe { $zero() }
                }
                #[inline(always)]
                unsafe fn load(p: *const f32) -> $v {
                    unsafe { $load(p) }
                }
                #[inline(always)]
                unsafe fn splat(p: *const f32) -> $v {
                    unsafe { $splat(*p) }
                }
                #[inline(always)]
                unsafe fn fma(a: $v, b: $v, c: $v) -> $v {
                    unsafe { $fma(a, b, c) }
                }
                #[inline(always)]
                unsafe fn store(p: *mut f32, v: $v) {
                    unsafe { $store(p, v) }
                }
            }
        };
    }
    simd!(
        Avx512,
        __m512,
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_storeu_ps
    );
    simd!(
        Avx2,
        __m256,
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_storeu_ps
    );

    /// `acc[r][v] += Σ_{i < kc} b[r·bs + i] · panel[i·ps + v·LANES ..]`, one fused
    /// multiply-add per term in order of `i`. `acc` is loaded from and stored to `dst`
    /// (`[R][NV·LANES]`, row stride `ds`) unless `fresh`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<S: Simd, const R: usize, const NV: usize>(
        b: *const f32,
        bs: usize,
        panel: *const f32,
        ps: usize,
        kc: usize,
        dst: *mut f32,
        ds: usize,
        fresh: bool,
    ) {
        unsafe {
            let mut acc = [[S::zero(); NV]; R];
            if !fresh {
                for (r, row) in acc.iter_mut().enumerate() {
                    for (v, a) in row.iter_mut().enumerate() {
                        *a = S::load(dst.add(r * ds + v * S::LANES));
                    }
                }
            }
            for i in 0..kc {
                let p = panel.add(i * ps);
                let mut w = [S::zero(); NV];
                for (v, wv) in w.iter_mut().enumerate() {
                    *wv = S::load(p.add(v * S::LANES));
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let x = S::splat(b.add(r * bs + i));
                    for (a, wv) in row.iter_mut().zip(w) {
                        *a = S::fma(x, wv, *a);
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                for (v, a) in row.iter().enumerate() {
                    S::store(dst.add(r * ds + v * S::LANES), *a);
                }
            }
        }
    }

    /// `acc` (`[rows][NV·LANES]`) += `x[.., i0..i0 + kc]` · `panel` (`[kc][NV·LANES]`),
    /// or = where `i0` is 0: the rows in groups of at most six, as even as they split, all
    /// going over the same block of the panel while it is in the first-level cache.
    #[inline(always)]
    unsafe fn panel<S: Simd, const NV: usize>(
        x: &[f32],
        rows: usize,
        k: usize,
        i0: usize,
        panel: &[f32],
        acc: &mut [f32],
    ) {
        let tile = NV * S::LANES;
        let kc = panel.len() / tile;
        let groups = rows.div_ceil(GROUP);
        let (xp, pp, ap) = (x.as_ptr(), panel.as_ptr(), acc.as_mut_ptr());
        let fresh = i0 == 0;
        let mut r0 = 0;
        for g in 0..groups {
            let r = rows / groups + usize::from(g < rows % groups);
            // SAFETY (for the caller): rows r0..r0+r of x (columns i0..i0+kc) and of acc.
            unsafe {
                let (b, d) = (xp.add(r0 * k + i0), ap.add(r0 * tile));
                match r {
                    6 => block::<S, 6, NV>(b, k, pp, tile, kc, d, tile, fresh),
                    5 => block::<S, 5, NV>(b, k, pp, tile, kc, d, tile, fresh),
                    4 => block::<S, 4, NV>(b, k, pp, tile, kc, d, tile, fresh),
                    3 => block::<S, 3, NV>(b, k, pp, tile, kc, d, tile, fresh),
                    2 => block::<S, 2, NV>(b, k, pp, tile, kc, d, tile, fresh),
                    _ => block::<S, 1, NV>(b, k, pp, tile, kc, d, tile, fresh),
                }
            }
            r0 += r;
        }
    }

    /// `part` (`[nj][NV·LANES]`) = `wt` (`[nj][k]`) · `xt` (`[k][NV·LANES]`): weight rows
    /// `R` at a time broadcast against the vectors of `xᵀ`. No blocking of `k`: each
    /// weight row is read once, from memory, while `xᵀ` stays in the second-level cache
    /// (blocking `k` by `KC` measured 124 GFLOP/s instead of 172 on 32×768·768×50257).
    #[inline(always)]
    unsafe fn head<S: Simd, const NV: usize, const R: usize>(
        wt: &[f32],
        k: usize,
        xt: &[f32],
        part: &mut [f32],
    ) {
        let width = NV * S::LANES;
        let nj = wt.len() / k;
        let (wp, xp, op) = (wt.as_ptr(), xt.as_ptr(), part.as_mut_ptr());
        let mut j = 0;
        // SAFETY (for the caller): rows j.. of wt and part.
        unsafe {
            while j + R <= nj {
                block::<S, R, NV>(
                    wp.add(j * k),
                    k,
                    xp,
                    width,
                    k,
                    op.add(j * width),
                    width,
                    true,
                );
                j += R;
            }
            while j < nj {
                block::<S, 1, NV>(
                    wp.add(j * k),
                    k,
                    xp,
                    width,
                    k,
                    op.add(j * width),
                    width,
                    true,
                );
                j += 1;
            }
        }
    }

    /// # Safety
    /// The CPU has AVX-512F; `x` holds rows·k values, `p` kc·64 with i0 + kc ≤ k, `acc`
    /// rows·64.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn panel_avx512(
        x: &[f32],
        rows: usize,
        k: usize,
        i0: usize,
        p: &[f32],
        acc: &mut [f32],
    ) {
        unsafe { panel::<Avx512, 4>(x, rows, k, i0, p, acc) }
    }

    /// # Safety
    /// The CPU has AVX2 and FMA; `x` holds rows·k values, `p` kc·16 with i0 + kc ≤ k, `acc`
    /// rows·16.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn panel_avx2(
        x: &[f32],
        rows: usize,
        k: usize,
        i0: usize,
        p: &[f32],
        acc: &mut [f32],
    ) {
        unsafe { panel::<Avx2, 2>(x, rows, k, i0, p, acc) }
    }

    /// # Safety
    /// The CPU has AVX-512F; `xt` is `[k][w]` with w a multiple of 16 up to 64, `part`
    /// holds (wt.len() / k)·w values.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn head_avx512(wt: &[f32], k: usize, xt: &[f32], part: &mut [f32]) {
        // As many weight rows per block as leave the accumulators within 24 registers.
        unsafe {
            match xt.len() / k / 16 {
                1 => head::<Avx512, 1, 12>(wt, k, xt, part),
                2 => head::<Avx512, 2, 12>(wt, k, xt, part),
                3 => head::<Avx512, 3, 8>(wt, k, xt, part),
                _ => head::<Avx512, 4, 6>(wt, k, xt, part),
            }
        }
    }

    /// # Safety
    /// The CPU has AVX2 and FMA; `xt` is `[k][w]` with w a multiple of 8 up to 32, `part`
    /// holds (wt.len() / k)·w values.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn head_avx2(wt: &[f32], k: usize, xt: &[f32], part: &mut [f32]) {
        // Accumulators within 12 of the 16 registers.
        unsafe {
            match xt.len() / k / 8 {
                1 => head::<Avx2, 1, 6>(wt, k, xt, part),
                2 => head::<Avx2, 2, 6>(wt, k, xt, part),
                3 => head::<Avx2, 3, 4>(wt, k, xt, part),
                _ => head::<Avx2, 4, 3>(wt, k, xt, part),
            }
        }
    }
}

/// Other architectures have no kernel here: `Isa::detect` gives `None` and callers use
/// `gemm`, so these are never called.
#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    pub const AVX512_TILE: usize = 64;
    pub const AVX2_TILE: usize = 16;
    pub unsafe fn panel_avx512(_: &[f32], _: usize, _: usize, _: usize, _: &[f32], _: &mut [f32]) {
        unreachable!("no x86 kernels on this architecture")
    }
    pub unsafe fn panel_avx2(_: &[f32], _: usize, _: usize, _: usize, _: &[f32], _: &mut [f32]) {
        unreachable!("no x86 kernels on this architecture")
    }
    pub unsafe fn head_avx512(_: &[f32], _: usize, _: &[f32], _: &mut [f32]) {
        unreachable!("no x86 kernels on this architecture")
    }
    pub unsafe fn head_avx2(_: &[f32], _: usize, _: &[f32], _: &mut [f32]) {
        unreachable!("no x86 kernels on this architecture")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::cpu::tests::with_threads;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        crate::models::cpu::tests::values(n, seed, 1.0)
    }

    fn isas() -> Vec<Isa> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(Isa::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                v.push(Isa::Avx2);
            }
        }
        v
    }

    #[test]
    fn both_layouts_give_the_reference_bits_on_every_instruction_set() {
        let found = isas();
        if Isa::detect().is_some() {
            assert!(!found.is_empty());
        }
        // Ragged shapes: rows not a multiple of the group or the vector, k not a multiple
        // of KC, n not a multiple of the tile nor of the task size.
        for (rows, k, n) in [
            (5, 7, 3),
            (6, 130, 65),
            (13, 300, 250),
            (32, 257, 481),
            (64, 129, 17),
            (33, 40, 600),
            (7, 0, 9),
            (9, 5, 0),
        ] {
            let x = values(rows * k, 1);
            let w = values(k * n, 2);
            let wt = values(n * k, 3);
            let want = reference(&x, |i, j| w[i * n + j], rows, k, n);
            let want_t = reference(&x, |i, j| wt[j * k + i], rows, k, n);
            for &isa in &found {
                let got = times_matrix(&x, &w, rows, k, n, Some(isa)).unwrap();
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{isa:?} {rows}x{k}x{n}"
                );
                let got = times_transposed(&x, &wt, rows, k, n, Some(isa)).unwrap();
                assert!(
                    got.iter()
                        .zip(&want_t)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{isa:?} {rows}x{k}x{n} transposed"
                );
            }
        }
    }

    #[test]
    fn the_bits_do_not_depend_on_the_thread_count() {
        let (rows, k, n) = (32, 300, 3000);
        let x = values(rows * k, 5);
        let w = values(k * n, 6);
        let run = |threads: usize| {
            with_threads(threads, || {
                (
                    times_matrix(&x, &w, rows, k, n, None),
                    times_transposed(&x, &w, rows, k, n, None),
                )
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(4));
    }
}
