//! Training utilities: one AdamW step against torch, a tiny GPT-2 that learns a toy text
//! deterministically, and checkpoints that resume exactly.
mod support;
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use hhi::models::gpt2::{Gpt2, Gpt2Config};
use hhi::models::train::{
    AdamWOptions, LinearSchedule, adamw, causal_lm_loss, clip_grad_norm, load_checkpoint,
    save_checkpoint, weighted_token_ce,
};
use hhi::models::weights::Weights;
use hhi::models::{Cpu, CpuTrain};
use support::*;

type Dev = burn::backend::flex::FlexDevice;

fn ids<B: Backend>(rows: &[Vec<u32>], dev: &B::Device) -> Tensor<B, 2, Int> {
    let flat: Vec<i64> = rows.iter().flatten().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), rows[0].len()]), dev)
}

/// One AdamW step from a fixture's weights: loss and updated parameters against torch.
fn check_adamw<M: AutodiffModule<CpuTrain>>(
    name: &str,
    model: M,
    loss: impl Fn(&M, &serde_json::Value) -> Tensor<CpuTrain, 1>,
    export: impl Fn(&M::InnerModule) -> hhi::models::weights::Export,
) {
    let e = &expected(name)["adamw"];
    let l = loss(&model, e);
    let got: f32 = l.clone().into_scalar();
    let want = e["loss"].as_f64().unwrap() as f32;
    assert!(
        (got - want).abs() <= 1e-5 * want.abs(),
        "{name}: loss {got} vs {want}"
    );
    let grads = GradientsParams::from_grads(l.backward(), &model);
    let betas = e["betas"].as_array().unwrap();
    let opts = AdamWOptions {
        betas: (
            betas[0].as_f64().unwrap() as f32,
            betas[1].as_f64().unwrap() as f32,
        ),
        eps: e["eps"].as_f64().unwrap() as f32,
        weight_decay: e["weight_decay"].as_f64().unwrap() as f32,
    };
    let mut optim = adamw::<CpuTrain, M>(opts);
    let model = optim.step(e["lr"].as_f64().unwrap(), model, grads);
    let exported = export(&model.valid());
    for (param, vals) in e["params_after"].as_object().unwrap() {
        let got = &exported.tensors[param].1;
        for (i, v) in vals.as_array().unwrap().iter().enumerate() {
            let v = v.as_f64().unwrap() as f32;
            assert!(
                (got[i] - v).abs() <= 1e-5 * v.abs() + 1e-7,
                "{name} {param}[{i}]: {} vs {v}",
                got[i]
            );
        }
    }
}

#[test]
fn one_adamw_step_matches_torch() {
    let dev = Dev::default();
    let lm = |forward: &dyn Fn(Tensor<CpuTrain, 2, Int>) -> Tensor<CpuTrain, 3>,
              e: &serde_json::Value| {
        let x = ids::<CpuTrain>(&id_rows(&e["input_ids"]), &dev);
        causal_lm_loss(forward(x.clone()), x)
    };
    let gpt2 = Gpt2::<CpuTrain>::load(&dir("gpt2"), &dev).unwrap().0;
    check_adamw(
        "gpt2",
        gpt2,
        |m, e| lm(&|x| m.forward(x, None), e),
        |m| m.export(),
    );
    let neo = hhi::models::gpt_neo::GptNeo::<CpuTrain>::load(&dir("gpt_neo"), &dev)
        .unwrap()
        .0;
    check_adamw(
        "gpt_neo",
        neo,
        |m, e| lm(&|x| m.forward(x, None), e),
        |m| m.export(),
    );
    for name in ["t5_v1_0", "t5_v1_1"] {
        let (t5, cfg) = hhi::models::t5::T5::<CpuTrain>::load(&dir(name), &dev).unwrap();
        let start = cfg.decoder_start();
        // transformers' `labels=y`: the decoder reads y shifted right behind the start token.
        let s2s = |m: &hhi::models::t5::T5<CpuTrain>, e: &serde_json::Value| {
            let x = ids::<CpuTrain>(&id_rows(&e["input_ids"]), &dev);
            let y = id_rows(&e["labels"]);
            let shifted: Vec<Vec<u32>> = y
                .iter()
                .map(|r| {
                    std::iter::once(start)
                        .chain(r[..r.len() - 1].iter().copied())
                        .collect()
                })
                .collect();
            let logits = m.forward(x, ids::<CpuTrain>(&shifted, &dev));
            let w = Tensor::<CpuTrain, 1>::ones([y.len()], &dev);
            weighted_token_ce(logits, ids::<CpuTrain>(&y, &dev), w, -100)
        };
        check_adamw(name, t5, s2s, |m| m.export());
    }
}

#[test]
fn losses_and_schedule() {
    let dev = Dev::default();
    // Weighted CE: ignored positions count as zero but stay in the denominator.
    let logits = Tensor::<Cpu, 3>::zeros([2, 3, 4], &dev);
    let targets = ids::<Cpu>(&[vec![1, 2, 9], vec![0, 9, 9]], &dev);
    let w = Tensor::<Cpu, 1>::from_floats([1.0, 2.0], &dev);
    let l: f32 = weighted_token_ce(logits, targets, w, 9).into_scalar();
    let ln4 = 4f32.ln();
    assert!((l - (2.0 * ln4 + 2.0 * ln4) / 6.0).abs() < 1e-6, "{l}");
    let s = LinearSchedule {
        lr: 1.0,
        warmup: 10,
        total: 110,
    };
    assert_eq!(
        (s.at(0), s.at(5), s.at(10), s.at(60), s.at(110), s.at(200)),
        (0.0, 0.5, 1.0, 0.5, 0.0, 0.0)
    );
}

const TEXT: &str =
    "alex shaking hands with bailey . charlie hugging dani . erin giving frankie a high five . ";

fn tiny() -> Gpt2Config {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 64, "n_positions": 32, "n_embd": 32, "n_layer": 2, "n_head": 4
    }))
    .unwrap()
}

/// Byte-level toy corpus: ids are bytes mod 64, in windows of 17.
fn batch(step: usize) -> Vec<Vec<u32>> {
    let bytes: Vec<u32> = TEXT.bytes().map(|b| b as u32 % 64).collect();
    (0..4)
        .map(|r| {
            (0..17)
                .map(|i| bytes[(step * 7 + r * 13 + i) % bytes.len()])
                .collect()
        })
        .collect()
}

fn train(
    steps: std::ops::Range<usize>,
    model: Gpt2<CpuTrain>,
    mut optim: impl Optimizer<Gpt2<CpuTrain>, CpuTrain>,
) -> (
    Gpt2<CpuTrain>,
    impl Optimizer<Gpt2<CpuTrain>, CpuTrain>,
    Vec<f32>,
) {
    let dev = Dev::default();
    let sched = LinearSchedule {
        lr: 3e-3,
        warmup: 20,
        total: 300,
    };
    let mut model = model;
    let mut losses = Vec::new();
    for step in steps {
        let x = ids::<CpuTrain>(&batch(step), &dev);
        let loss = causal_lm_loss(model.forward(x.clone(), None), x);
        losses.push(loss.clone().into_scalar());
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        clip_grad_norm(&model, &mut grads, 1.0);
        model = optim.step(sched.at(step), model, grads);
    }
    (model, optim, losses)
}

fn fresh() -> Gpt2<CpuTrain> {
    Gpt2::from_weights(&tiny(), Weights::random(7, 0.02), &Dev::default()).unwrap()
}

fn bytes(m: &Gpt2<CpuTrain>) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("m.safetensors");
    m.valid().export().save(&p).unwrap();
    std::fs::read(p).unwrap()
}

#[test]
fn tiny_gpt2_learns_and_is_deterministic() {
    let (a, _, losses) = train(0..300, fresh(), adamw(AdamWOptions::default()));
    let window = |i: usize| losses[i * 50..(i + 1) * 50].iter().sum::<f32>() / 50.0;
    let means: Vec<f32> = (0..6).map(window).collect();
    assert!(
        means.windows(2).all(|w| w[1] < w[0]),
        "loss does not fall window by window: {means:?}"
    );
    assert!(means[5] < 0.5 * means[0], "{means:?}");
    let (b, _, losses_b) = train(0..300, fresh(), adamw(AdamWOptions::default()));
    assert!(losses == losses_b, "losses differ between two runs");
    assert!(
        bytes(&a) == bytes(&b),
        "same seed, same weights, byte for byte"
    );
}

#[test]
fn resumed_training_equals_uninterrupted() {
    let (straight, _, _) = train(0..40, fresh(), adamw(AdamWOptions::default()));
    let (half, optim, _) = train(0..20, fresh(), adamw(AdamWOptions::default()));
    let ckpt = tempfile::tempdir().unwrap();
    save_checkpoint(ckpt.path(), &half, &optim, 20).unwrap();
    drop((half, optim));
    let (model, optim, step) = load_checkpoint(
        ckpt.path(),
        fresh(),
        adamw::<CpuTrain, Gpt2<CpuTrain>>(AdamWOptions::default()),
        &Dev::default(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(step, 20);
    let (resumed, _, _) = train(20..40, model, optim);
    assert!(
        bytes(&straight) == bytes(&resumed),
        "resumed weights differ"
    );
}
