//! The CPU backend trains byte-deterministically: GPT-2 training steps (AdamW, global
//! gradient-norm clipping) give the same parameter bytes in two runs and with 1, 2 and 4
//! rayon threads. The model's `wte` has more than 4 Mi elements, the size from which
//! burn-flex splits a full `sum()` across threads in a varying order; the gradient norm
//! must not depend on that.
//!
//! rayon's global pool is sized once per process, so the test runs itself again in child
//! processes with `RAYON_NUM_THREADS` set, and compares the digests they print.
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use hhi::models::CpuTrain;
use hhi::models::gpt2::{Gpt2, Gpt2Config};
use hhi::models::train::{AdamWOptions, adamw, causal_lm_loss, clip_grad_norm};
use hhi::models::weights::Weights;
use std::process::Command;

const CHILD: &str = "HHI_DETERMINISM_CHILD";

fn config() -> Gpt2Config {
    // 8448 × 512 = 4.3 Mi elements in wte (and its gradient).
    serde_json::from_value(serde_json::json!({
        "vocab_size": 8448, "n_positions": 32, "n_embd": 512, "n_layer": 1, "n_head": 8
    }))
    .unwrap()
}

/// Three clipped AdamW steps on fixed batches; the BLAKE3 digest of the parameters.
fn train_digest() -> String {
    let dev = burn::backend::flex::FlexDevice;
    let mut model: Gpt2<CpuTrain> =
        Gpt2::from_weights(&config(), Weights::random(11, 0.02), &dev).unwrap();
    let mut optim = adamw(AdamWOptions::default());
    let mut norms = Vec::new();
    for step in 0..3u32 {
        let flat: Vec<i64> = (0..4 * 24u32)
            .map(|i| ((i * 7919 + step * 104_729) % 8448) as i64)
            .collect();
        let x = Tensor::<CpuTrain, 2, Int>::from_data(TensorData::new(flat, [4, 24]), &dev);
        let loss = causal_lm_loss(model.forward(x.clone(), None), x);
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        // A small max norm, so that clipping scales every gradient by the computed norm.
        norms.push(clip_grad_norm(&model, &mut grads, 0.01));
        model = optim.step(1e-3, model, grads);
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("m.safetensors");
    use burn::module::AutodiffModule;
    model.valid().export().save(&p).unwrap();
    let mut h = blake3::Hasher::new();
    h.update(&std::fs::read(p).unwrap());
    for n in norms {
        h.update(&n.to_le_bytes());
    }
    h.finalize().to_hex().to_string()
}

#[test]
fn gpt2_training_steps_are_byte_identical_across_runs_and_thread_counts() {
    if std::env::var_os(CHILD).is_some() {
        println!("DIGEST {}", train_digest());
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let run = |threads: &str| -> String {
        let out = Command::new(&exe)
            .args([
                "--exact",
                "gpt2_training_steps_are_byte_identical_across_runs_and_thread_counts",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, "1")
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "child with {threads} threads failed: {text}"
        );
        text.lines()
            .find_map(|l| l.split_once("DIGEST ").map(|(_, d)| d))
            .unwrap_or_else(|| panic!("no digest from the child: {text}"))
            .trim()
            .to_string()
    };
    let runs: Vec<(&str, String)> = ["1", "2", "2", "4"].iter().map(|t| (*t, run(t))).collect();
    for (t, d) in &runs[1..] {
        assert_eq!(
            d, &runs[0].1,
            "parameters after training with {t} threads differ from 1 thread"
        );
    }
}
