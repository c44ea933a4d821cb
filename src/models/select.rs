//! Token selection where the logits are: top-p sampling, top-k, n-gram bans and the
//! paper's beam search as tensor ops, so that a GPU backend reads back nothing per token
//! (see [`super::generate::Selection::Device`]).
//!
//! burn-cubecl 0.21 has no sort kernel (`sort*` and `topk_with_indices` read the tensor
//! back, sort on the host and upload it), and its `cumsum` sums every prefix afresh (one
//! thread per output element: quadratic in the row length). So nothing here sorts or
//! cumulates a vocabulary-long row: top-p finds its threshold by a search over
//! probability values with masked sums, the draw cumulates block sums and then one block,
//! and beam search takes its best candidates with the `argtopk` reduction. Each function
//! gives the host path's choice up to f32 rounding (the host sums in f64).

use super::generate::{Decoder, Hypothesis};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};

/// Whether `B` runs on the CPU, where reading a tensor is free and `argtopk` is not
/// implemented (burn-flex 0.21 panics on it).
pub(crate) fn on_host<B: Backend>(dev: &B::Device) -> bool {
    matches!(B::name(dev).as_str(), "flex" | "ndarray")
}

/// Candidate thresholds per round of [`nucleus_floor`].
const GRID: usize = 15;
/// Rounds spaced geometrically: from [2⁻¹²⁶, 2] (127 octaves) to a few ulps needs
/// log₁₆(127 · 2²³) ≈ 7.4 rounds; one more absorbs `ln`/`exp` rounding.
const GEOMETRIC_ROUNDS: usize = 8;
/// Rounds spaced linearly, which resolve the last few ulps exactly (`hi − lo` is exact
/// there), so the bracket ends on adjacent floats.
const LINEAR_ROUNDS: usize = 2;

/// The smallest probability top-p keeps, per row `[rows, 1]`: the largest value `v` with
/// Σ p·[p ≥ v] ≥ `top_p`. Keeping `p ≥ v` keeps the smallest set of most probable tokens
/// with mass ≥ `top_p`, plus any token tied with the least probable of them.
///
/// A bracketing search instead of a sort: `lo` always has mass ≥ `top_p` above it and
/// `hi` less, and each round tests [`GRID`] thresholds between them at once
/// (`[rows, GRID, vocab]` masked sums). The invariants hold whatever the rounding of the
/// thresholds, since each is judged by its own mass.
pub(crate) fn nucleus_floor<B: Backend>(p: Tensor<B, 2>, top_p: f32) -> Tensor<B, 2> {
    let [rows, vocab] = p.dims();
    let dev = p.device();
    let frac: Vec<f32> = (1..=GRID).map(|i| i as f32 / (GRID + 1) as f32).collect();
    let frac = Tensor::<B, 1>::from_data(TensorData::new(frac, [GRID]), &dev)
        .unsqueeze::<2>()
        .expand([rows, GRID]);
    let p3 = p.unsqueeze_dim::<3>(1).expand([rows, GRID, vocab]);
    let mut lo = Tensor::<B, 2>::full([rows, 1], f32::MIN_POSITIVE, &dev);
    let mut hi = Tensor::<B, 2>::full([rows, 1], 2.0, &dev);
    for round in 0..GEOMETRIC_ROUNDS + LINEAR_ROUNDS {
        let l = lo.clone().expand([rows, GRID]);
        let h = hi.clone().expand([rows, GRID]);
        let thr = if round < GEOMETRIC_ROUNDS {
            let ll = l.clone().log();
            (ll.clone() + (h.clone().log() - ll) * frac.clone()).exp()
        } else {
            l.clone() + (h.clone() - l.clone()) * frac.clone()
        };
        let thr = thr.max_pair(l).min_pair(h);
        let below = p3.clone().lower(
            thr.clone()
                .unsqueeze_dim::<3>(2)
                .expand([rows, GRID, vocab]),
        );
        let mass = p3
            .clone()
            .mask_fill(below, 0.0)
            .sum_dim(2)
            .squeeze_dim::<2>(2);
        let enough = mass.greater_equal_elem(top_p);
        lo = lo.max_pair(
            thr.clone()
                .mask_fill(enough.clone().bool_not(), 0.0)
                .max_dim(1),
        );
        hi = hi.min_pair(thr.mask_fill(enough, 2.0).min_dim(1));
    }
    lo
}

/// Per row, the first column where `mask` holds, or `n` (the row length) if none does.
fn first_true<B: Backend>(mask: Tensor<B, 2, Bool>) -> Tensor<B, 2, Int> {
    let [rows, n] = mask.dims();
    Tensor::<B, 1, Int>::arange(0..n as i64, &mask.device())
        .unsqueeze::<2>()
        .expand([rows, n])
        .mask_fill(mask.bool_not(), n as i64)
        .min_dim(1)
}

/// Per row, the last column where `mask` holds, or −1 if none does.
fn last_true<B: Backend>(mask: Tensor<B, 2, Bool>) -> Tensor<B, 2, Int> {
    let [rows, n] = mask.dims();
    Tensor::<B, 1, Int>::arange(0..n as i64, &mask.device())
        .unsqueeze::<2>()
        .expand([rows, n])
        .mask_fill(mask.bool_not(), -1)
        .max_dim(1)
}

/// Columns per block of [`pick`]'s two-level cumulation: √50257 ≈ 224 rounded up to a
/// power of two, so both levels stay short for GPT-2's vocabulary.
const BLOCK: usize = 256;

/// Per row, the first column `j` with `q[j] > 0` whose running sum `q[0] + … + q[j]`
/// exceeds `target` `[rows, 1]`; the last column with `q > 0` if rounding leaves none.
/// The running sums are block sums cumulated, then one block's columns.
fn pick<B: Backend>(q: Tensor<B, 2>, target: Tensor<B, 2>) -> Tensor<B, 2, Int> {
    let [rows, n] = q.dims();
    let dev = q.device();
    let blocks = n.div_ceil(BLOCK);
    let q = if blocks * BLOCK > n {
        Tensor::cat(vec![q, Tensor::zeros([rows, blocks * BLOCK - n], &dev)], 1)
    } else {
        q
    };
    let q3 = q.reshape([rows, blocks, BLOCK]);
    let block = q3.clone().sum_dim(2).reshape([rows, blocks]);
    let cum = block.clone().cumsum(1);
    let live = block.greater_elem(0.0);
    let b = first_true(
        cum.clone()
            .greater(target.clone().expand([rows, blocks]))
            .bool_and(live.clone()),
    )
    .min_pair(last_true(live))
    .clamp_min(0);
    // Mass before block `b` (0 for the first block).
    let before = Tensor::cat(vec![Tensor::zeros([rows, 1], &dev), cum], 1).gather(1, b.clone());
    let idx = b.clone().unsqueeze_dim::<3>(2).expand([rows, 1, BLOCK]);
    let inner = q3.gather(1, idx).reshape([rows, BLOCK]);
    let running = inner.clone().cumsum(1) + before.expand([rows, BLOCK]);
    let live = inner.greater_elem(0.0);
    let j = first_true(
        running
            .greater(target.expand([rows, BLOCK]))
            .bool_and(live.clone()),
    )
    .min_pair(last_true(live));
    b * BLOCK as i64 + j
}

/// One token per row from softmax(logits / t) restricted to the top-p nucleus
/// ([`nucleus_floor`]), chosen by the uniform numbers `r` `[rows, 1]` as the host's
/// `draw` does: the first kept token, in vocabulary order, whose running kept mass
/// exceeds `r` × the kept mass.
pub(crate) fn draw<B: Backend>(
    logits: Tensor<B, 2>,
    t: f32,
    top_p: f32,
    r: Tensor<B, 2>,
) -> Tensor<B, 2, Int> {
    let p = softmax(logits / t as f64, 1);
    let [rows, vocab] = p.dims();
    let q = if top_p < 1.0 {
        let floor = nucleus_floor(p.clone(), top_p).expand([rows, vocab]);
        p.clone().mask_fill(p.lower(floor), 0.0)
    } else {
        p
    };
    let target = r * q.clone().sum_dim(1);
    pick(q, target)
}

/// The `k` largest values of each row of `x` `[rows, n]` and their columns, best first,
/// ties to the lower column (as the host's beam bookkeeping orders them).
pub(crate) fn top_k<B: Backend>(x: Tensor<B, 2>, k: usize) -> (Tensor<B, 2>, Tensor<B, 2, Int>) {
    let [rows, n] = x.dims();
    let dev = x.device();
    if on_host::<B>(&dev) {
        let flat = x.into_data().convert::<f32>().to_vec::<f32>().expect("f32");
        let (mut vals, mut cols) = (Vec::with_capacity(rows * k), Vec::with_capacity(rows * k));
        for row in flat.chunks(n.max(1)).take(rows) {
            let mut best = super::generate::top_tokens(row, k);
            best.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            for (x, c) in best {
                vals.push(x);
                cols.push(c as i64);
            }
        }
        return (
            Tensor::from_data(TensorData::new(vals, [rows, k]), &dev),
            Tensor::from_data(TensorData::new(cols, [rows, k]), &dev),
        );
    }
    // `argtopk` needs more columns than `k`. Its empty slots hold (f32::MIN, u32::MAX), so
    // a padding column of f32::MIN wins every tie with them and is never taken over a
    // real value.
    let x = if n <= k {
        Tensor::cat(vec![x, Tensor::full([rows, k + 1 - n], f32::MIN, &dev)], 1)
    } else {
        x
    };
    let cols = x.clone().argtopk(k, 1);
    (x.gather(1, cols.clone()), cols)
}

/// −∞ at every token that would repeat an n-gram of its row (as the host's
/// `banned_by_ngram`), 0 elsewhere: the last `n − 1` tokens of each row are compared with
/// every earlier window of real (unpadded) tokens, and the token after each matching
/// window is banned.
pub(crate) fn ngram_ban<B: Backend>(
    seq: &Tensor<B, 2, Int>,
    real: &Tensor<B, 2, Bool>,
    n: usize,
    vocab: usize,
) -> Tensor<B, 2> {
    let [rows, len] = seq.dims();
    let dev = seq.device();
    let zero = Tensor::<B, 2>::zeros([rows, vocab], &dev);
    if len < n {
        return zero;
    }
    let windows = len + 1 - n;
    // Window `j` covers positions j..j+n−1; its last token is the candidate to ban.
    let mut hit = real.clone().narrow(1, 0, windows);
    for k in 0..n - 1 {
        let tail = seq.clone().narrow(1, len - (n - 1) + k, 1);
        hit = hit.bool_and(
            seq.clone()
                .narrow(1, k, windows)
                .equal(tail.expand([rows, windows])),
        );
    }
    let next = seq.clone().narrow(1, n - 1, windows);
    let values = Tensor::<B, 2>::zeros([rows, windows], &dev).mask_fill(hit, f32::NEG_INFINITY);
    zero.scatter(1, next, values, burn::tensor::IndexingUpdateOp::Add)
}

/// Stands for "no candidate" in the beam's candidate rows: far below any sum of
/// log-probabilities, yet finite, so `argtopk` ranks it above its own empty slots.
const NO_CANDIDATE: f32 = -1e30;

/// [`super::generate::paper_beam_batch`] with the bookkeeping on the device: each step
/// adds the beams' scores to their log-probabilities, takes each beam's `width` best
/// tokens and then each prompt's `width` best of those (`argtopk` twice), and reorders the
/// cache by the chosen parents, all without reading back. An ended beam competes as one
/// candidate (its score, at the `eos` column, so it keeps emitting `eos`). Every
/// [`super::generate::SYNC_EVERY`] steps one flag says whether every beam has ended; the
/// tokens, parents and scores are read once at the end and the beams traced back.
/// Prompts stay in the batch until all have ended.
pub(crate) fn paper_beam<B: Backend, M: Decoder<B>>(
    model: &M,
    ids: Tensor<B, 2, Int>,
    pads: &[usize],
    width: usize,
    max_new_tokens: usize,
    eos: u32,
    top_n: usize,
) -> anyhow::Result<Vec<Vec<Hypothesis>>> {
    let dev = ids.device();
    // An end token outside the vocabulary never ends a beam; −1 matches no token and fits
    // every backend's integer type.
    let eos_id = if (eos as usize) < model.vocab_size() {
        eos as i64
    } else {
        -1
    };
    let prompts = pads.len();
    let rows = prompts * width;
    let vocab = model.vocab_size();
    let (logits, mut cache) = model.prefill(ids, pads)?;
    let (scores, toks) = top_k(log_softmax(logits, 1), width);
    let mut scores = scores.reshape([rows, 1]);
    let mut toks = toks.reshape([rows, 1]);
    // Row `r` of each step came from row `parents[s][r]` of the step before.
    let mut steps_toks = vec![toks.clone()];
    let mut steps_parents: Vec<Tensor<B, 2, Int>> = Vec::new();
    let base = Tensor::<B, 1, Int>::arange(0..prompts as i64, &dev)
        .mul_scalar(width as i64)
        .unsqueeze_dim::<2>(1)
        .expand([prompts, width]);
    let first_rows: Vec<i64> = (0..rows).map(|r| (r / width) as i64).collect();
    let mut parents = Tensor::<B, 1, Int>::from_data(TensorData::new(first_rows, [rows]), &dev);
    let eos_col = Tensor::<B, 1, Int>::arange(0..vocab as i64, &dev)
        .equal_elem(eos_id)
        .unsqueeze::<2>()
        .expand([rows, vocab]);
    for step in 1..max_new_tokens {
        let ended = toks.clone().equal_elem(eos_id);
        if step % super::generate::SYNC_EVERY == 0 && ended.clone().all().into_scalar().to_bool() {
            break;
        }
        model.reorder(&mut cache, parents.clone());
        let lp = log_softmax(model.step(toks.clone(), &mut cache), 1);
        let ended = ended.expand([rows, vocab]);
        let cand = (lp + scores.clone().expand([rows, vocab]))
            .mask_fill(ended.clone(), NO_CANDIDATE)
            .mask_where(
                ended.bool_and(eos_col.clone()),
                scores.clone().expand([rows, vocab]),
            );
        let (best, cols) = top_k(cand, width);
        let (best, at) = top_k(best.reshape([prompts, width * width]), width);
        toks = cols
            .reshape([prompts, width * width])
            .gather(1, at.clone())
            .reshape([rows, 1]);
        parents = (at.div_scalar(width as i64) + base.clone()).reshape([rows]);
        scores = best.reshape([rows, 1]);
        steps_toks.push(toks.clone());
        steps_parents.push(parents.clone().unsqueeze_dim::<2>(1));
    }
    let n = steps_toks.len();
    let read = |t: Tensor<B, 2, Int>| -> anyhow::Result<Vec<i64>> {
        t.into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .map_err(|e| anyhow::anyhow!("reading the beams back: {e:?}"))
    };
    let toks = read(Tensor::cat(steps_toks, 1))?;
    let parents = if steps_parents.is_empty() {
        Vec::new()
    } else {
        read(Tensor::cat(steps_parents, 1))?
    };
    let scores = scores
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading the beam scores back: {e:?}"))?;
    Ok((0..prompts)
        .map(|p| {
            let mut beams: Vec<Hypothesis> = (p * width..(p + 1) * width)
                .map(|last| {
                    let mut r = last;
                    let mut seq = Vec::with_capacity(n);
                    for s in (0..n).rev() {
                        seq.push(toks[r * n + s] as u32);
                        if s > 0 {
                            r = parents[r * (n - 1) + s - 1] as usize;
                        }
                    }
                    seq.reverse();
                    if let Some(e) = seq.iter().position(|&t| t == eos) {
                        seq.truncate(e + 1);
                    }
                    Hypothesis {
                        tokens: seq,
                        score: scores[last],
                    }
                })
                .collect();
            beams.sort_by(|a, b| b.score.total_cmp(&a.score));
            beams.truncate(top_n);
            beams
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Cpu;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn dev() -> <Cpu as burn::tensor::backend::BackendTypes>::Device {
        Default::default()
    }

    fn tensor(rows: &[Vec<f32>]) -> Tensor<Cpu, 2> {
        let n = rows[0].len();
        let flat: Vec<f32> = rows.concat();
        Tensor::from_data(TensorData::new(flat, [rows.len(), n]), &dev())
    }

    fn read(t: Tensor<Cpu, 2>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    /// Logit rows of every shape the search must handle: flat (nucleus of thousands),
    /// peaked (nucleus of one), long-tailed, tied at the boundary, and GPT-2's vocabulary.
    fn rows(g: &mut ChaCha8Rng) -> Vec<(Vec<f32>, &'static str)> {
        let mut out = Vec::new();
        for &(n, scale, what) in &[
            (1000, 0.1, "flat"),
            (1000, 3.0, "spread"),
            (777, 30.0, "peaked"),
            (50257, 2.0, "GPT-2 vocabulary"),
            (50257, 0.01, "GPT-2 vocabulary, nearly uniform"),
        ] {
            for _ in 0..4 {
                out.push(((0..n).map(|_| g.random::<f32>() * scale).collect(), what));
            }
        }
        for _ in 0..6 {
            // Few distinct values: whole tie groups straddle the nucleus boundary.
            out.push((
                (0..500).map(|_| g.random_range(0..6) as f32).collect(),
                "ties",
            ));
        }
        out
    }

    #[test]
    fn the_nucleus_floor_keeps_what_sorting_keeps() {
        let mut g = ChaCha8Rng::seed_from_u64(5);
        for (row, what) in rows(&mut g) {
            for &top_p in &[0.05f32, 0.5, 0.9, 0.95, 0.999] {
                let p = read(softmax(tensor(std::slice::from_ref(&row)), 1));
                let floor = read(nucleus_floor(tensor(std::slice::from_ref(&p)), top_p))[0];
                // The same rule by sorting, summed in f64.
                let mut sorted = p.clone();
                sorted.sort_by(|a, b| b.total_cmp(a));
                let (mut mass, mut keep) = (0f64, 0);
                while keep == 0 || (keep < sorted.len() && mass < top_p as f64) {
                    mass += sorted[keep] as f64;
                    keep += 1;
                }
                let want = sorted[keep - 1];
                let kept = |f: f32| p.iter().filter(|&&x| x >= f).count();
                assert_eq!(
                    kept(floor),
                    kept(want),
                    "{what}, top_p {top_p}: floor {floor:e}, sorting gives {want:e}"
                );
            }
        }
    }

    #[test]
    fn the_device_draw_picks_the_host_draws_token() {
        let mut g = ChaCha8Rng::seed_from_u64(9);
        let (mut same, mut total) = (0, 0);
        for (row, what) in rows(&mut g) {
            for &(t, top_p) in &[(1.0f32, 0.9f32), (0.7, 1.0), (1.3, 0.5)] {
                let us: Vec<f64> = (0..6).map(|_| g.random::<f64>()).collect();
                let r: Vec<f32> = us.iter().map(|&u| u as f32).collect();
                let logits = tensor(&vec![row.clone(); us.len()]);
                let r = Tensor::<Cpu, 2>::from_data(TensorData::new(r, [us.len(), 1]), &dev());
                let got = draw(logits, t, top_p, r)
                    .into_data()
                    .convert::<i64>()
                    .to_vec::<i64>()
                    .unwrap();
                for (&u, &tok) in us.iter().zip(&got) {
                    let want = crate::models::generate::draw_at(&row, t, top_p, u);
                    total += 1;
                    if tok as u32 == want {
                        same += 1;
                        continue;
                    }
                    // f32 against f64 may disagree only where the draw falls within
                    // rounding of the boundary between two tokens' running masses, or the
                    // nucleus mass within rounding of `top_p`: in a near-uniform row of
                    // 50257 the f32 softmax's normaliser is off by ~1e-5, which moves the
                    // nucleus boundary by a token or two.
                    let d = [-1e-4, -1e-5, 0.0, 1e-5, 1e-4];
                    let explained = d.iter().any(|&du| {
                        d.iter().any(|&dp| {
                            let u = (u + du).clamp(0.0, 1.0 - 1e-12);
                            let p = top_p + dp as f32;
                            crate::models::generate::draw_at(&row, t, p, u) == tok as u32
                        })
                    });
                    assert!(
                        explained,
                        "{what}, t {t}, top_p {top_p}, u {u}: device {tok}, host {want}"
                    );
                }
            }
        }
        println!("{same} of {total} draws agree");
        // Most disagreements are in the near-uniform rows of 50257 tokens.
        assert!(same * 100 >= total * 95, "{same} of {total} draws agree");
    }

    #[test]
    fn top_k_orders_ties_by_column() {
        let x = tensor(&[
            vec![1.0, 3.0, 3.0, 2.0, 3.0],
            vec![0.0, -1.0, 5.0, 5.0, 4.0],
        ]);
        let (v, c) = top_k(x, 3);
        assert_eq!(read(v), vec![3.0, 3.0, 3.0, 5.0, 5.0, 4.0]);
        assert_eq!(
            c.into_data().convert::<i64>().to_vec::<i64>().unwrap(),
            vec![1, 2, 4, 2, 3, 4]
        );
    }
}
