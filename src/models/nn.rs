//! The few layers the HF architectures share, with loaders that take HF names and layouts
//! and exporters that write them back the same way.

use super::cpu::{self, Act};
use super::cpu_matmul::matmul;
use super::weights::{Export, Key, Weights};
use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::activation;

/// A dense layer stored as `[in, out]`. HF's `nn.Linear` keeps `[out, in]` (transposed on
/// load and save); GPT-2's `Conv1D` already keeps `[in, out]` and must not be transposed —
/// a square weight would load silently wrong.
#[derive(Module, Debug)]
pub struct Dense<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// True for `nn.Linear` layout in the checkpoint.
    pub hf_linear: bool,
}

impl<B: Backend> Dense<B> {
    /// An `nn.Linear` named `name` (`name.weight` `[out, in]`, optional `name.bias`).
    pub fn linear(
        w: &Weights,
        name: &Key,
        d_in: usize,
        d_out: usize,
        bias: bool,
        dev: &B::Device,
    ) -> Self {
        let weight = w
            .get::<B, 2>(&name.at("weight"), [d_out, d_in], dev)
            .transpose();
        let weight = cpu::row_major_for_inference(weight);
        let bias = bias.then(|| Param::from_tensor(w.get::<B, 1>(&name.at("bias"), [d_out], dev)));
        Dense {
            weight: Param::from_tensor(weight),
            bias,
            hf_linear: true,
        }
    }

    /// A GPT-2 `Conv1D` named `name` (`name.weight` `[in, out]`, `name.bias`).
    pub fn conv1d(w: &Weights, name: &Key, d_in: usize, d_out: usize, dev: &B::Device) -> Self {
        let weight = w.get::<B, 2>(&name.at("weight"), [d_in, d_out], dev);
        let bias = w.get::<B, 1>(&name.at("bias"), [d_out], dev);
        Dense {
            weight: Param::from_tensor(weight),
            bias: Some(Param::from_tensor(bias)),
            hf_linear: false,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        // Flatten to one 2-D product: measured 2-4× faster on the CPU backend than a
        // batched 3-D matmul against a broadcast weight.
        let mut dims = x.dims();
        let d_in = dims[D - 1];
        let rows = x.shape().num_elements() / d_in.max(1);
        let w = self.weight.val();
        dims[D - 1] = w.dims()[1];
        let x = x.reshape([rows, d_in]);
        // A generation step (a few rows): the CPU backend's streaming product.
        let y = match super::matvec::small_matmul(&x, &w) {
            Some(y) => y,
            None => matmul(x, w),
        };
        let y = match &self.bias {
            Some(b) => cpu::bias_act(y, Some(b.val()), Act::Identity)
                .unwrap_or_else(|y| y + b.val().unsqueeze()),
            None => y,
        };
        y.reshape(dims)
    }

    pub fn export(&self, name: &Key, out: &mut Export) {
        let w = self.weight.val();
        if self.hf_linear {
            out.put(&name.at("weight"), &w.transpose());
        } else {
            out.put(&name.at("weight"), &w);
        }
        if let Some(b) = &self.bias {
            out.put(&name.at("bias"), &b.val());
        }
    }
}

#[derive(Module, Debug)]
pub struct LayerNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub bias: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: Backend> LayerNorm<B> {
    pub fn load(w: &Weights, name: &Key, d: usize, eps: f64, dev: &B::Device) -> Self {
        LayerNorm {
            weight: Param::from_tensor(w.get(&name.at("weight"), [d], dev)),
            bias: Param::from_tensor(w.get(&name.at("bias"), [d], dev)),
            eps,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let x = match cpu::layer_norm(x, self.weight.val(), Some(self.bias.val()), self.eps) {
            Ok(y) => return y,
            Err(x) => x,
        };
        let mean = x.clone().mean_dim(D - 1);
        let centered = x - mean;
        let var = centered.clone().powi_scalar(2).mean_dim(D - 1);
        let normed = centered / (var + self.eps).sqrt();
        normed * self.weight.val().unsqueeze() + self.bias.val().unsqueeze()
    }

    pub fn export(&self, name: &Key, out: &mut Export) {
        out.put(&name.at("weight"), &self.weight.val());
        out.put(&name.at("bias"), &self.bias.val());
    }
}

/// T5's layer norm: scale only, no mean subtraction, no bias.
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    pub fn load(w: &Weights, name: &Key, d: usize, eps: f64, dev: &B::Device) -> Self {
        RmsNorm {
            weight: Param::from_tensor(w.get(&name.at("weight"), [d], dev)),
            eps,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let x = match cpu::rms_norm(x, self.weight.val(), self.eps) {
            Ok(y) => return y,
            Err(x) => x,
        };
        let var = x.clone().powi_scalar(2).mean_dim(D - 1);
        x / (var + self.eps).sqrt() * self.weight.val().unsqueeze()
    }

    pub fn export(&self, name: &Key, out: &mut Export) {
        out.put(&name.at("weight"), &self.weight.val());
    }
}

#[derive(Module, Debug)]
pub struct Embedding<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
}

impl<B: Backend> Embedding<B> {
    pub fn load(w: &Weights, name: &Key, n: usize, d: usize, dev: &B::Device) -> Self {
        Embedding {
            weight: Param::from_tensor(w.get(&name.at("weight"), [n, d], dev)),
        }
    }

    /// `[batch, seq]` ids → `[batch, seq, d]`.
    pub fn forward(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        super::cpu_train::embedding(self.weight.val(), ids)
            .unwrap_or_else(|(w, ids)| burn::tensor::module::embedding(w, ids))
    }

    pub fn export(&self, name: &Key, out: &mut Export) {
        out.put(&name.at("weight"), &self.weight.val());
    }
}

/// Position ids `[b, t]` for `t` new tokens after `past` cached ones.
pub fn positions<B: Backend>(
    past: usize,
    b: usize,
    t: usize,
    dev: &B::Device,
) -> Tensor<B, 2, Int> {
    Tensor::<B, 1, Int>::arange(past as i64..(past + t) as i64, dev)
        .unsqueeze::<2>()
        .expand([b, t])
}

/// Vocabulary logits: through `head` if the model has its own, else through the token
/// embeddings (a tied head).
pub fn lm_logits<B: Backend>(
    h: Tensor<B, 3>,
    wte: &Embedding<B>,
    head: &Option<Dense<B>>,
) -> Tensor<B, 3> {
    match head {
        Some(l) => l.forward(h),
        None => {
            // (W · hᵀ)ᵀ: the CPU backend copies a transposed right operand in full
            // (vocab × d per call); transposing the small activations instead is 4× faster.
            let [b, t, d] = h.dims();
            let w = wte.weight.val();
            let v = w.dims()[0];
            let h = h.reshape([b * t, d]);
            if let Some(y) = super::matvec::small_matmul(&h, &w.clone().transpose()) {
                return y.reshape([b, t, v]);
            }
            matmul(w, h.transpose()).transpose().reshape([b, t, v])
        }
    }
}

/// Multi-head attention with `q_proj`, `k_proj`, `v_proj`, `out_proj` (HF `nn.Linear`s
/// with biases) and queries scaled by head_dim^-0.5: BART's and CLIP's layout.
#[derive(Module, Debug)]
pub struct MultiHeadAttention<B: Backend> {
    pub q_proj: Dense<B>,
    pub k_proj: Dense<B>,
    pub v_proj: Dense<B>,
    pub out_proj: Dense<B>,
    pub n_heads: usize,
    pub scale: f64,
}

impl<B: Backend> MultiHeadAttention<B> {
    pub fn load(w: &Weights, name: &Key, d: usize, heads: usize, dev: &B::Device) -> Self {
        let lin = |n: &str| Dense::linear(w, &name.at(n), d, d, true, dev);
        MultiHeadAttention {
            q_proj: lin("q_proj"),
            k_proj: lin("k_proj"),
            v_proj: lin("v_proj"),
            out_proj: lin("out_proj"),
            n_heads: heads,
            scale: ((d / heads.max(1)) as f64).powf(-0.5),
        }
    }

    /// Queries from `x` `[b, t, d]` attending to `kv` `[b, s, d]`; `mask` `[b, h, t, s]`
    /// true = blocked.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        kv: Tensor<B, 3>,
        mask: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let q = split_heads(self.q_proj.forward(x), self.n_heads);
        let k = split_heads(self.k_proj.forward(kv.clone()), self.n_heads);
        let v = split_heads(self.v_proj.forward(kv), self.n_heads);
        self.out_proj.forward(merge_heads(attention(
            q,
            k,
            v,
            Some(self.scale),
            mask,
            None,
        )))
    }

    pub fn export(&self, name: &Key, out: &mut Export) {
        for (l, n) in [
            (&self.q_proj, "q_proj"),
            (&self.k_proj, "k_proj"),
            (&self.v_proj, "v_proj"),
            (&self.out_proj, "out_proj"),
        ] {
            l.export(&name.at(n), out);
        }
    }
}

/// `[b, t, h*dh]` → `[b, h, t, dh]`.
pub fn split_heads<B: Backend>(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
    super::cpu_train::split_heads(x, heads).unwrap_or_else(|x| {
        let [b, t, d] = x.dims();
        x.reshape([b, t, heads, d / heads]).swap_dims(1, 2)
    })
}

/// `[b, h, t, dh]` → `[b, t, h*dh]`.
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    cpu::merge_heads(x)
        .or_else(super::cpu_train::merge_heads)
        .unwrap_or_else(|x| {
            let [b, h, t, dh] = x.dims();
            x.swap_dims(1, 2).reshape([b, t, h * dh])
        })
}

/// Scaled (or not) dot-product attention with an optional boolean mask (true = blocked)
/// and an optional additive bias (T5's relative positions).
pub fn attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    scale: Option<f64>,
    mask: Option<Tensor<B, 4, Bool>>,
    bias: Option<Tensor<B, 4>>,
) -> Tensor<B, 4> {
    let mut scores = matmul(q, k.swap_dims(2, 3));
    if let Some(s) = scale {
        scores = scores * s;
    }
    if let Some(b) = bias {
        scores = scores + b;
    }
    if let Some(m) = mask {
        scores = scores.mask_fill(m, f32::MIN);
    }
    let probs = cpu::softmax_last(scores).unwrap_or_else(|s| activation::softmax(s, 3));
    matmul(probs, v)
}

/// `[1, 1, q, k]` mask blocking keys after each query, for `q` new queries that follow
/// `k - q` cached positions.
pub fn causal_mask<B: Backend>(q: usize, k: usize, dev: &B::Device) -> Tensor<B, 4, Bool> {
    // tril_mask is true above the (shifted) diagonal: exactly the future keys.
    Tensor::<B, 2, Bool>::tril_mask([q, k], (k - q) as i64, dev).unsqueeze()
}

/// `[b, 1, 1, k]` mask blocking the padding keys of an HF `attention_mask` `[b, k]`
/// (1 = token, 0 = padding).
pub fn key_padding_mask<B: Backend>(attention_mask: Tensor<B, 2, Int>) -> Tensor<B, 4, Bool> {
    let [b, k] = attention_mask.dims();
    attention_mask.equal_elem(0).reshape([b, 1, 1, k])
}

/// Blocked where either mask blocks; masks broadcast over their size-1 dimensions.
pub fn mask_or<B: Backend>(a: Tensor<B, 4, Bool>, b: Tensor<B, 4, Bool>) -> Tensor<B, 4, Bool> {
    let (da, db) = (a.dims(), b.dims());
    let dims: [usize; 4] = std::array::from_fn(|i| da[i].max(db[i]));
    a.expand(dims).bool_or(b.expand(dims))
}

/// Position ids `[b, t]` of the last `t` columns of an HF `attention_mask` `[b, k]`, as
/// transformers' `generate` derives them for left padding: `cumsum(mask) - 1`, and 1 at
/// padding.
pub fn positions_from_mask<B: Backend>(
    attention_mask: Tensor<B, 2, Int>,
    t: usize,
) -> Tensor<B, 2, Int> {
    let k = attention_mask.dims()[1];
    let pos = attention_mask.clone().cumsum(1) - 1;
    let pad = attention_mask.equal_elem(0);
    pos.mask_fill(pad, 1).narrow(1, k - t, t)
}

/// The tanh approximation of GELU (`gelu_new`), written as `x·σ(2u)` with
/// `u = √(2/π)(x + 0.044715x³)`: the same function as `0.5x(1 + tanh u)`, but the CPU
/// backend evaluates `σ` with one `exp` where `tanhf` costs several, and `x³` as two
/// products instead of `powf`. The activation took 28% of a toy GPT-Neo training step.
pub fn gelu_new<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let x = match cpu::activation(x, Act::GeluNew) {
        Ok(y) => return y,
        Err(x) => x,
    };
    const TWO_SQRT_2_OVER_PI: f64 =
        2.0 * core::f64::consts::FRAC_2_SQRT_PI * core::f64::consts::FRAC_1_SQRT_2;
    let cube = x.clone() * x.clone() * x.clone();
    let u = (x.clone() + cube * 0.044715) * TWO_SQRT_2_OVER_PI;
    x * activation::sigmoid(u)
}

/// The activation named in an HF config (`activation_function`, `dense_act_fn`).
pub fn activation_by_name<B: Backend, const D: usize>(name: &str, x: Tensor<B, D>) -> Tensor<B, D> {
    match name {
        "relu" => activation::relu(x),
        "gelu" => activation::gelu(x),
        "tanh" => x.tanh(),
        _ => gelu_new(x), // gelu_new, gelu_pytorch_tanh, gelu_fast: the tanh approximation
    }
}
