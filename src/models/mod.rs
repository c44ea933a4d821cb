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
    pub layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
}

impl<B: Backend> KvCache<B> {
    pub fn new(layers: usize) -> Self {
        KvCache {
            layers: vec![None; layers],
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
        let (k, v) = match self.layers[i].take() {
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            None => (k, v),
        };
        self.layers[i] = Some((k.clone(), v.clone()));
        (k, v)
    }

    /// Keeps batch rows `rows` in that order (beam search reordering).
    pub fn select(&mut self, rows: Tensor<B, 1, Int>) {
        for l in self.layers.iter_mut().flatten() {
            l.0 = l.0.clone().select(0, rows.clone());
            l.1 = l.1.clone().select(0, rows.clone());
        }
    }
}
