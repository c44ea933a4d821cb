//! The captioners (ClipCap prefix and EncDec cross-attention) against transformers, on
//! fixtures written by `tools/make_fixtures.py captioner`: teacher-forced logits, greedy
//! and beam-search generation through `EmbedsDecoder` (transformers'
//! `generate(inputs_embeds=…)` and `generate(encoder_hidden_states=…)`), the paper's batched
//! beam search, and the errors a caller can trigger.
mod support;
use hhi::models::Cpu;
use hhi::models::captioner::Captioner;
use hhi::models::generate::{
    BeamOptions, EmbedsDecoder, SampleOptions, beam_search, paper_beam, paper_beam_batch, sample,
};
use hhi::models::gpt2::Gpt2;
use hhi::models::train::weighted_token_ce;
use support::*;

use burn::prelude::*;

const TOL: f32 = 1e-4;

fn check(variant: &str) {
    let e = &expected("captioner")[variant];
    let (m, cfg) = Captioner::<Cpu>::load(&dir(&format!("captioner_{variant}")), &dev()).unwrap();
    assert_eq!(m.variant(), cfg.variant);
    let feats: Tensor<Cpu, 2> = floats(&e["features"]);
    let tokens: Tensor<Cpu, 2, Int> = ints(&e["tokens"]);
    let cond = m.conditioning(feats.clone());
    let d = max_abs_diff(cond, floats(&e["conditioning"]));
    assert!(d <= TOL, "{variant}: conditioning differs by {d}");
    let logits = m.logits(feats.clone(), tokens.clone());
    let d = max_abs_diff(logits.clone(), floats(&e["logits"]));
    assert!(d <= TOL, "{variant}: logits differ by {d}");
    assert_eq!(
        m.targets(tokens).dims()[1],
        logits.dims()[1],
        "one target per scored position"
    );

    for (i, g) in e["generate"].as_array().unwrap().iter().enumerate() {
        let row = feats.clone().narrow(0, i, 1);
        let dec = m.decoder(row).unwrap();
        let greedy = sample(
            &dec,
            &[vec![0]],
            &SampleOptions {
                max_new_tokens: 8,
                stop_tokens: vec![0],
                ..Default::default()
            },
            &dev(),
        )
        .unwrap();
        let want: Vec<u32> = id_rows(&serde_json::json!([g["greedy"]])).remove(0);
        assert_eq!(
            greedy[0][1..],
            want[..],
            "{variant} image {i}: greedy ids differ"
        );

        let opts = BeamOptions {
            num_beams: 4,
            max_new_tokens: 6,
            min_length: 0,
            length_penalty: 1.0,
            no_repeat_ngram: 0,
            early_stopping: true,
            eos: Some(0),
        };
        let hyps = beam_search(&dec, &[0], &opts, &dev()).unwrap();
        let got: Vec<Vec<u32>> = hyps.iter().map(|h| h.tokens[1..].to_vec()).collect();
        assert_eq!(
            got,
            id_rows(&g["beam"]),
            "{variant} image {i}: beam ids differ"
        );
        for (h, s) in hyps.iter().zip(g["scores"].as_array().unwrap()) {
            let s = s.as_f64().unwrap() as f32;
            assert!((h.score - s).abs() <= TOL, "beam score {} vs {s}", h.score);
        }
    }
}

#[test]
fn clipcap_logits_and_generation_match_transformers() {
    check("clipcap");
}

#[test]
fn encdec_logits_and_generation_match_transformers() {
    check("encdec");
}

#[test]
fn paper_beam_batch_equals_each_image_alone() {
    for variant in ["clipcap", "encdec"] {
        let e = &expected("captioner")[variant];
        let (m, _) = Captioner::<Cpu>::load(&dir(&format!("captioner_{variant}")), &dev()).unwrap();
        let feats: Tensor<Cpu, 2> = floats(&e["features"]);
        let both = m.decoder(feats.clone()).unwrap();
        let batch = paper_beam_batch(&both, &[vec![0], vec![0]], 5, 7, 0, 3, &dev()).unwrap();
        assert_eq!(batch.len(), 2);
        for (i, got) in batch.iter().enumerate() {
            let one = m.decoder(feats.clone().narrow(0, i, 1)).unwrap();
            let alone = paper_beam(&one, &[0], 5, 7, 0, 3, &dev()).unwrap();
            assert_eq!(got.len(), 3);
            for (a, b) in got.iter().zip(&alone) {
                assert_eq!(a.tokens, b.tokens, "{variant} image {i}");
                assert!((a.score - b.score).abs() <= 1e-5);
            }
            assert!(got.windows(2).all(|w| w[0].score >= w[1].score));
        }
    }
}

#[test]
fn export_reloads_to_the_same_model() {
    for variant in ["clipcap", "encdec"] {
        let src = dir(&format!("captioner_{variant}"));
        let (m, _) = Captioner::<Cpu>::load(&src, &dev()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(src.join("config.json"), tmp.path().join("config.json")).unwrap();
        m.export()
            .save(&tmp.path().join("model.safetensors"))
            .unwrap();
        let (back, _) = Captioner::<Cpu>::load(tmp.path(), &dev()).unwrap();
        let e = &expected("captioner")[variant];
        let f: Tensor<Cpu, 2> = floats(&e["features"]);
        let t: Tensor<Cpu, 2, Int> = ints(&e["tokens"]);
        let d = max_abs_diff(m.logits(f.clone(), t.clone()), back.logits(f, t));
        assert_eq!(d, 0.0, "{variant}: reloaded model differs");
    }
}

#[test]
fn a_cross_attention_model_without_memory_is_an_error() {
    let (cross, _) = Gpt2::<Cpu>::load(&dir("gpt2_cross"), &dev()).unwrap();
    let err = sample(&cross, &[vec![1, 2]], &SampleOptions::default(), &dev()).unwrap_err();
    assert!(err.to_string().contains("cross-attention"), "{err}");
    let prefix = Tensor::<Cpu, 3>::zeros([1, 2, 32], &dev());
    assert!(EmbedsDecoder::with_prefix(&cross, prefix).is_err());
    let (plain, _) = Gpt2::<Cpu>::load(&dir("gpt2"), &dev()).unwrap();
    let memory = Tensor::<Cpu, 3>::zeros([1, 1, 32], &dev());
    let err = EmbedsDecoder::with_memory(&plain, memory).err().unwrap();
    assert!(err.to_string().contains("no cross-attention"), "{err}");
    // One conditioning row per prompt.
    let memory = Tensor::<Cpu, 3>::zeros([2, 1, 32], &dev());
    let dec = EmbedsDecoder::with_memory(&cross, memory).unwrap();
    let err = sample(&dec, &[vec![1]], &SampleOptions::default(), &dev()).unwrap_err();
    assert!(err.to_string().contains("one per prompt"), "{err}");
}

#[test]
fn a_missing_or_wrong_checkpoint_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Captioner::<Cpu>::load(tmp.path(), &dev()).unwrap_err();
    assert!(format!("{err:#}").contains("config.json"), "{err:#}");
    // The ClipCap config with the EncDec weights: every mismatch is named.
    std::fs::copy(
        dir("captioner_clipcap").join("config.json"),
        tmp.path().join("config.json"),
    )
    .unwrap();
    std::fs::copy(
        dir("captioner_encdec").join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    let err = format!(
        "{:#}",
        Captioner::<Cpu>::load(tmp.path(), &dev()).unwrap_err()
    );
    assert!(err.contains("clip_project.model.0.weight"), "{err}");
    assert!(err.contains("crossattention"), "{err}");
}

#[test]
fn weighted_loss_matches_a_hand_computation_with_padding() {
    // Two items, three positions, vocabulary 3; item 1's last position is padding (id 2).
    let logits = [
        [[1.0f32, 0.0, 0.0], [0.0, 2.0, 0.0], [0.5, 0.5, 0.0]],
        [[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]],
    ];
    let targets = [[0i64, 1, 0], [1, 0, 2]];
    let weights = [0.5f32, 2.0];
    let pad = 2i64;
    let mut total = 0.0f64;
    for b in 0..2 {
        for t in 0..3 {
            if targets[b][t] == pad {
                continue;
            }
            let row = logits[b][t];
            let lse = row.iter().map(|&x| (x as f64).exp()).sum::<f64>().ln();
            let ce = lse - row[targets[b][t] as usize] as f64;
            total += ce * weights[b] as f64;
        }
    }
    let want = total / 6.0; // every batch × length position counts, padding as zero
    let l =
        Tensor::<Cpu, 3>::from_data(TensorData::new(logits.concat().concat(), [2, 3, 3]), &dev());
    let t = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(targets.concat(), [2, 3]), &dev());
    let w = Tensor::<Cpu, 1>::from_data(TensorData::new(weights.to_vec(), [2]), &dev());
    let got: f32 = weighted_token_ce(l, t, w, pad).into_scalar();
    assert!(
        (got as f64 - want).abs() < 1e-6,
        "loss {got} vs hand-computed {want}"
    );
}
