//! T5 against transformers: logits and encoder states for the original (ReLU, scaled tied
//! head) and v1.1 (gated-gelu, unscaled head) variants, the decoder cache, the head-tying
//! rules, saving, and loading errors.
mod support;
use burn::prelude::*;
use hhi::models::Cpu;
use hhi::models::t5::{T5, relative_position_bucket};
use std::path::Path;
use support::*;

const FIXTURES: [&str; 2] = ["t5_v1_0", "t5_v1_1"];

fn load(name: &str) -> T5<Cpu> {
    T5::load(&dir(name), &dev()).unwrap().0
}

#[test]
fn logits_match_transformers() {
    for name in FIXTURES {
        let e = expected(name);
        let m = load(name);
        let logits = m.forward(ints(&e["input_ids"]), ints(&e["decoder_input_ids"]));
        let d = max_abs_diff(logits, floats(&e["logits"]));
        println!("{name}: logits max |Δ| = {d:e}");
        assert!(d <= TOL, "{name}: max |Δ| = {d}");
    }
}

#[test]
fn encoder_states_match_transformers() {
    for name in FIXTURES {
        let e = expected(name);
        let m = load(name);
        let enc = m.encode(ints(&e["input_ids"]));
        let d = max_abs_diff(enc, floats(&e["encoder_last_hidden_state"]));
        println!("{name}: encoder max |Δ| = {d:e}");
        assert!(d <= TOL, "{name}: max |Δ| = {d}");
    }
}

#[test]
fn cached_decoding_gives_the_same_logits_as_a_full_decode() {
    for name in FIXTURES {
        let e = expected(name);
        let m = load(name);
        let enc = m.encode(ints(&e["input_ids"]));
        let dec = ints::<2>(&e["decoder_input_ids"]);
        let full = m.decode(dec.clone(), &enc, None);
        let mut cache = m.new_cache();
        let mut parts = vec![m.decode(dec.clone().narrow(1, 0, 3), &enc, Some(&mut cache))];
        for t in 3..6 {
            assert_eq!(cache.len(), t);
            parts.push(m.decode(dec.clone().narrow(1, t, 1), &enc, Some(&mut cache)));
        }
        let d = max_abs_diff(Tensor::cat(parts, 1), full);
        println!("{name}: cached max |Δ| = {d:e}");
        assert!(d <= 1e-5, "{name}: max |Δ| = {d}");
    }
}

#[test]
fn cache_select_reorders_rows() {
    let e = expected("t5_v1_0");
    let m = load("t5_v1_0");
    let enc = m.encode(ints(&e["input_ids"]));
    let dec = ints::<2>(&e["decoder_input_ids"]);
    let full = m.decode(dec.clone(), &enc, None);
    let mut cache = m.new_cache();
    m.decode(dec.clone().narrow(1, 0, 4), &enc, Some(&mut cache));
    // Swap the two rows, and the encoder states and decoder inputs with them.
    let rows = Tensor::<Cpu, 1, Int>::from_data(TensorData::new(vec![1i64, 0], [2]), &dev());
    cache.select(rows.clone());
    let enc2 = enc.select(0, rows.clone());
    let step = m.decode(
        dec.narrow(1, 4, 1).select(0, rows.clone()),
        &enc2,
        Some(&mut cache),
    );
    let want = full.narrow(1, 4, 1).select(0, rows);
    let d = max_abs_diff(step, want);
    assert!(d <= 1e-5, "max |Δ| = {d}");
}

#[test]
fn relative_position_buckets_match_transformers() {
    // transformers' T5Attention._relative_position_bucket with 32 buckets, max distance 128.
    let rel = [
        -200, -129, -128, -127, -65, -64, -63, -33, -32, -31, -17, -16, -15, -9, -8, -7, -1, 0, 1,
        7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200,
    ];
    let bidirectional = [
        15, 15, 15, 15, 14, 14, 13, 12, 12, 11, 10, 10, 9, 8, 8, 7, 1, 0, 17, 23, 24, 24, 25, 26,
        26, 27, 28, 28, 29, 30, 30, 31, 31, 31, 31,
    ];
    let causal = [
        31, 31, 31, 31, 26, 26, 26, 21, 21, 21, 16, 16, 15, 9, 8, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    for (i, &r) in rel.iter().enumerate() {
        assert_eq!(
            relative_position_bucket(r, true, 32, 128),
            bidirectional[i],
            "{r}"
        );
        assert_eq!(
            relative_position_bucket(r, false, 32, 128),
            causal[i],
            "{r}"
        );
    }
}

/// A copy of fixture `name` with the exported weights edited by `edit` and config.json
/// by `config`.
fn edited_copy(
    name: &str,
    edit: impl FnOnce(&mut hhi::models::weights::Export),
    config: impl FnOnce(String) -> String,
) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let mut ex = load(name).export();
    edit(&mut ex);
    ex.save(&tmp.path().join("model.safetensors")).unwrap();
    let cfg = std::fs::read_to_string(dir(name).join("config.json")).unwrap();
    std::fs::write(tmp.path().join("config.json"), config(cfg)).unwrap();
    tmp
}

fn logits_of(m: &T5<Cpu>, name: &str) -> Tensor<Cpu, 3> {
    let e = expected(name);
    m.forward(ints(&e["input_ids"]), ints(&e["decoder_input_ids"]))
}

#[test]
fn head_is_tied_unless_the_checkpoint_holds_a_different_one() {
    // v1.1 as transformers 5 saves it: tied, unscaled. Doubling a separate lm_head
    // doubles the logits, both with the transformers 5 config (tie true, scale false) and
    // with a transformers 4 one (tie false, no scale_decoder_outputs).
    let base = logits_of(&load("t5_v1_1"), "t5_v1_1");
    let double = |ex: &mut hhi::models::weights::Export| {
        let (s, v) = ex.tensors["shared.weight"].clone();
        let v = v.into_iter().map(|x| 2.0 * x).collect();
        ex.tensors.insert("lm_head.weight".into(), (s, v));
    };
    let t4 = |c: String| {
        c.replace(
            "\"tie_word_embeddings\": true",
            "\"tie_word_embeddings\": false",
        )
        .replace("\"scale_decoder_outputs\": false,", "")
    };
    for config in [&(|c| c) as &dyn Fn(String) -> String, &t4] {
        let tmp = edited_copy("t5_v1_1", double, config);
        let m = T5::<Cpu>::load(tmp.path(), &dev()).unwrap().0;
        assert!(m.lm_head.is_some());
        let d = max_abs_diff(logits_of(&m, "t5_v1_1"), base.clone() * 2.0);
        assert!(d <= 1e-4, "max |Δ| = {d}");
        assert!(m.export().tensors.contains_key("lm_head.weight"));
    }

    // A tied checkpoint that also writes lm_head.weight (equal to shared) stays tied, as do
    // the embed_tokens aliases.
    let tmp = edited_copy(
        "t5_v1_0",
        |ex| {
            let shared = ex.tensors["shared.weight"].clone();
            for k in ["lm_head", "encoder.embed_tokens", "decoder.embed_tokens"] {
                ex.tensors.insert(format!("{k}.weight"), shared.clone());
            }
        },
        |c| c,
    );
    let m = T5::<Cpu>::load(tmp.path(), &dev()).unwrap().0;
    assert!(m.lm_head.is_none());
    let d = max_abs_diff(
        logits_of(&m, "t5_v1_0"),
        floats(&expected("t5_v1_0")["logits"]),
    );
    assert!(d <= TOL, "max |Δ| = {d}");
}

#[test]
fn saved_weights_reload_identically_and_deterministically() {
    for name in FIXTURES {
        let m = load(name);
        let tmp = save_twice(name, || m.export());
        let path = tmp.path().join("model.safetensors");
        // The same tensor names and shapes as the transformers checkpoint.
        let names = |p: &Path| {
            let bytes = std::fs::read(p).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let mut v: Vec<(String, Vec<usize>)> = st
                .tensors()
                .into_iter()
                .map(|(k, t)| (k, t.shape().to_vec()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&path), names(&dir(name).join("model.safetensors")));
        let again = T5::<Cpu>::load(tmp.path(), &dev()).unwrap().0;
        assert_eq!(
            max_abs_diff(logits_of(&m, name), logits_of(&again, name)),
            0.0
        );
    }
}

#[test]
fn wrong_d_ff_lists_the_misshaped_tensors_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(dir("t5_v1_0").join(f), tmp.path().join(f)).unwrap();
    }
    let p = tmp.path().join("config.json");
    let cfg = std::fs::read_to_string(&p)
        .unwrap()
        .replace("\"d_ff\": 64", "\"d_ff\": 128");
    std::fs::write(&p, cfg).unwrap();
    let err = match T5::<Cpu>::load(tmp.path(), &dev()) {
        Ok(_) => panic!("a mis-shaped checkpoint loaded"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("wrong shape (8)"), "{err}");
    for want in [
        "encoder.block.0.layer.1.DenseReluDense.wi.weight: expected [128, 32], found [64, 32]",
        "encoder.block.1.layer.1.DenseReluDense.wo.weight: expected [32, 128], found [32, 64]",
        "decoder.block.1.layer.2.DenseReluDense.wi.weight: expected [128, 32], found [64, 32]",
    ] {
        assert!(err.contains(want), "{want} not in {err}");
    }
    assert!(
        !err.contains("missing") && !err.contains("unexpected"),
        "{err}"
    );
}

#[test]
fn gated_checkpoint_with_a_plain_config_names_the_gated_tensors() {
    let tmp = edited_copy(
        "t5_v1_1",
        |_| {},
        |c| {
            c.replace(
                "\"feed_forward_proj\": \"gated-gelu\"",
                "\"feed_forward_proj\": \"relu\"",
            )
        },
    );
    let err = format!("{:#}", T5::<Cpu>::load(tmp.path(), &dev()).unwrap_err());
    assert!(
        err.contains("missing (4)")
            && err.contains("encoder.block.0.layer.1.DenseReluDense.wi.weight [64, 32]")
            && err.contains("unexpected (8)")
            && err.contains("decoder.block.1.layer.2.DenseReluDense.wi_1.weight [64, 32]"),
        "{err}"
    );
}

/// Max |Δ| of `[b, s, d]` values over the rows' unpadded positions.
fn masked_diff(a: Tensor<Cpu, 3>, b: Tensor<Cpu, 3>, mask: &[Vec<u32>]) -> f32 {
    let [_, s, d] = a.dims();
    let (a, b): (Vec<f32>, Vec<f32>) = (
        a.into_data().to_vec().unwrap(),
        b.into_data().to_vec().unwrap(),
    );
    let mut worst = 0f32;
    for (i, row) in mask.iter().enumerate() {
        for (j, &keep) in row.iter().enumerate() {
            if keep == 1 {
                let o = (i * s + j) * d;
                for k in o..o + d {
                    worst = worst.max((a[k] - b[k]).abs());
                }
            }
        }
    }
    worst
}

#[test]
fn padded_batch_logits_match_transformers() {
    for name in FIXTURES {
        let e = &expected("padded")[name];
        let m = load(name);
        let (ids, mask) = (ints::<2>(&e["input_ids"]), ints::<2>(&e["attention_mask"]));
        let dec = ints::<2>(&e["decoder_input_ids"]);
        // Every row of the logits (decoder positions are all real).
        let logits = m.forward_masked(ids.clone(), mask.clone(), dec.clone());
        let d = max_abs_diff(logits.clone(), floats(&e["logits"]));
        println!("{name}: padded logits max |Δ| = {d:e}");
        assert!(d <= TOL, "{name}: max |Δ| = {d}");
        let enc = m.encode_masked(ids.clone(), mask.clone());
        let d = masked_diff(
            enc,
            floats(&e["encoder_last_hidden_state"]),
            &id_rows(&e["attention_mask"]),
        );
        println!("{name}: padded encoder max |Δ| = {d:e}");
        assert!(d <= TOL, "{name}: encoder max |Δ| = {d}");
        // Each row alone (unpadded, unmasked) gives its row of the padded batch.
        for (i, src) in id_rows(&e["sources"]).iter().enumerate() {
            let one = Tensor::<Cpu, 2, Int>::from_data(
                TensorData::new(
                    src.iter().map(|&x| x as i64).collect::<Vec<_>>(),
                    [1, src.len()],
                ),
                &dev(),
            );
            let alone = m.forward(one, dec.clone().narrow(0, i, 1));
            let d = max_abs_diff(alone, logits.clone().narrow(0, i, 1));
            assert!(d <= TOL, "{name}: row {i} alone: max |Δ| = {d}");
        }
        // Without the mask the padded rows are wrong (the test would catch a lost mask).
        let unmasked = m.forward(ids, dec);
        assert!(max_abs_diff(unmasked, floats(&e["logits"])) > 1e-2);
    }
}

#[test]
fn padded_cached_decoding_matches_a_full_masked_decode() {
    let e = &expected("padded")["t5_v1_1"];
    let m = load("t5_v1_1");
    let mask = ints::<2>(&e["attention_mask"]);
    let enc = m.encode_masked(ints(&e["input_ids"]), mask.clone());
    let dec = ints::<2>(&e["decoder_input_ids"]);
    let full = m.decode_masked(dec.clone(), &enc, Some(&mask), None);
    let mut cache = m.new_cache();
    let mut parts = vec![m.decode_masked(
        dec.clone().narrow(1, 0, 2),
        &enc,
        Some(&mask),
        Some(&mut cache),
    )];
    for t in 2..6 {
        parts.push(m.decode_masked(
            dec.clone().narrow(1, t, 1),
            &enc,
            Some(&mask),
            Some(&mut cache),
        ));
    }
    let d = max_abs_diff(Tensor::cat(parts, 1), full);
    assert!(d <= 1e-5, "max |Δ| = {d}");
}

#[test]
fn padded_loss_matches_transformers() {
    for name in FIXTURES {
        let e = &expected("padded")[name];
        let (m, cfg) = T5::<Cpu>::load(&dir(name), &dev()).unwrap();
        let loss: f32 = m
            .loss(
                ints(&e["input_ids"]),
                ints(&e["attention_mask"]),
                ints(&e["labels"]),
                cfg.decoder_start(),
                cfg.pad_token_id.unwrap_or(0),
            )
            .into_scalar();
        let want = e["loss"].as_f64().unwrap() as f32;
        println!("{name}: padded loss {loss} vs {want}");
        assert!(
            (loss - want).abs() <= 1e-4 * want.abs(),
            "{name}: {loss} vs {want}"
        );
    }
}

#[test]
fn random_init_from_a_config() {
    use hhi::models::t5::T5Config;
    use hhi::models::weights::Weights;
    let cfg: T5Config = serde_json::from_value(serde_json::json!({
        "vocab_size": 64, "d_model": 16, "d_kv": 4, "d_ff": 32, "num_layers": 2, "num_heads": 4,
        "feed_forward_proj": "gated-gelu", "decoder_start_token_id": 0
    }))
    .unwrap();
    let m = T5::<Cpu>::from_weights(&cfg, Weights::random(3, 0.05), &dev()).unwrap();
    let ids =
        Tensor::<Cpu, 2, Int>::from_data(TensorData::new(vec![5i64, 6, 7, 1], [1, 4]), &dev());
    let dec = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(vec![0i64, 9], [1, 2]), &dev());
    assert_eq!(m.forward(ids, dec).dims(), [1, 2, 64]);
}
