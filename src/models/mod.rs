//! Model architectures on burn, one file each, with parameter names that follow the
//! Hugging Face checkpoint keys so real checkpoints load and our own open in
//! `transformers`.

pub mod bart;
pub mod bleurt;
pub mod captioner;
pub mod clip;
pub mod cpu;
pub mod cpu_matmul;
mod cpu_train;
pub mod few_rows;
pub mod generate;
pub mod gpt2;
pub mod gpt_neo;
pub mod init;
pub mod matvec;
pub mod nn;
mod select;
pub mod t5;
pub mod train;
pub mod weights;

use burn::prelude::*;

/// The CPU backend: burn-flex (gemm kernels chosen at run time, rayon threads).
pub type Cpu = burn::backend::Flex<f32, i32>;
/// burn-ndarray: the former CPU backend, kept as `backend = "ndarray"` to compare against.
pub type NdArray = burn::backend::NdArray<f32>;
/// The CPU backend with autodiff, for training.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;

/// Cached keys and values of a decoder's self-attention, one entry per layer, each
/// `[batch, heads, positions, head_dim]`.
#[derive(Clone, Debug)]
pub struct KvCache<B: Backend> {
    layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    /// Per layer, the batch rows a beam reorder asked for and the layer has not taken yet:
    /// they are taken at its next append, so that the cache is copied once per step
    /// instead of twice (see `cpu::gather_append`).
    pending: Vec<Option<Tensor<B, 1, Int>>>,
}

impl<B: Backend> KvCache<B> {
    pub fn new(layers: usize) -> Self {
        KvCache {
            layers: vec![None; layers],
            pending: vec![None; layers],
        }
    }

    /// Positions already cached.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map(|(k, _)| k.dims()[2])
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends this step's keys and values to layer `i` and returns the full ones.
    pub fn append(
        &mut self,
        i: usize,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let (k, v) = match (self.layers[i].take(), self.pending[i].take()) {
            (Some((pk, pv)), Some(rows)) => (gather_cat(pk, &rows, k), gather_cat(pv, &rows, v)),
            (Some((pk, pv)), None) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            (None, _) => (k, v),
        };
        self.layers[i] = Some((k.clone(), v.clone()));
        (k, v)
    }

    /// Keeps batch rows `rows` in that order (beam search reordering). Applied lazily, by
    /// each layer's next append.
    pub fn select(&mut self, rows: Tensor<B, 1, Int>) {
        for (layer, pending) in self.layers.iter().zip(&mut self.pending) {
            if layer.is_some() {
                *pending = Some(match pending.take() {
                    Some(earlier) => earlier.select(0, rows.clone()),
                    None => rows.clone(),
                });
            }
        }
    }
}

/// `cat([past.select(0, rows), new], 2)`, in one copy on the CPU backend.
fn gather_cat<B: Backend>(
    past: Tensor<B, 4>,
    rows: &Tensor<B, 1, Int>,
    new: Tensor<B, 4>,
) -> Tensor<B, 4> {
    cpu::gather_append(past, rows, new)
        .unwrap_or_else(|(past, new)| Tensor::cat(vec![past.select(0, rows.clone()), new], 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(shape: [usize; 4], from: f32) -> Tensor<Cpu, 4> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| from + i as f32 * 0.25).collect();
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    fn ids(v: &[i64]) -> Tensor<Cpu, 1, Int> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
    }

    /// Reorders taken at the next append (two in a row, one dropping a row) give what
    /// selecting and concatenating eagerly gives, for keys and values, on the CPU
    /// backend's one-copy path; and a layer with no reorder is a plain concatenation.
    #[test]
    fn lazy_reorders_equal_eager_select_then_cat() {
        // The prompt's keys arrive as a permuted view, as `split_heads` makes them.
        let (k0, v0) = (
            ramp([4, 3, 2, 5], 0.0).swap_dims(1, 2),
            ramp([4, 2, 3, 5], 100.0),
        );
        let mut cache = KvCache::<Cpu>::new(2);
        cache.append(0, k0.clone(), v0.clone());
        cache.append(1, k0.clone(), v0.clone());
        cache.select(ids(&[2, 2, 0, 1]));
        cache.select(ids(&[3, 0, 1]));
        let (k1, v1) = (ramp([3, 2, 1, 5], -50.0), ramp([3, 2, 1, 5], 50.0));
        let (k, v) = cache.append(0, k1.clone(), v1.clone());
        let eager = |past: Tensor<Cpu, 4>, new: Tensor<Cpu, 4>| {
            let past = past
                .select(0, ids(&[2, 2, 0, 1]))
                .select(0, ids(&[3, 0, 1]));
            Tensor::cat(vec![past, new], 2).into_data()
        };
        assert_eq!(k.into_data(), eager(k0.clone(), k1.clone()));
        assert_eq!(v.into_data(), eager(v0.clone(), v1.clone()));
        assert_eq!(cache.len(), 4);
        // Layer 1 takes the same reorders at its own append.
        let (k, _) = cache.append(1, k1.clone(), v1);
        assert_eq!(k.into_data(), eager(k0, k1.clone()));
        // No reorder pending: plain concatenation.
        let (k2, v2) = (ramp([3, 2, 1, 5], 7.0), ramp([3, 2, 1, 5], 9.0));
        let (k, _) = cache.append(0, k2.clone(), v2);
        assert_eq!(k.dims(), [3, 2, 5, 5]);
        assert_eq!(
            k.slice([0..3, 0..2, 4..5, 0..5]).into_data(),
            k2.into_data()
        );
    }
}
