//! GPT-2 against transformers: logits (plain, with a ClipCap prefix, with cross-attention),
//! the KV cache, saving, and loading errors.
mod support;
use burn::prelude::*;
use hhi::models::Cpu;
use hhi::models::gpt2::Gpt2;
use support::*;

fn load(name: &str) -> Gpt2<Cpu> {
    Gpt2::load(&dir(name), &dev()).unwrap().0
}

#[test]
fn logits_match_transformers() {
    let e = expected("gpt2");
    let m = load("gpt2");
    let logits = m.forward(ints(&e["input_ids"]), None);
    let d = max_abs_diff(logits, floats(&e["logits"]));
    assert!(d <= TOL, "max |Δ| = {d}");
}

#[test]
fn prefix_logits_match_transformers() {
    let e = &expected("gpt2")["prefix"];
    let m = load("gpt2");
    let x = Tensor::cat(
        vec![floats::<3>(&e["embeds"]), m.embed(ints(&e["input_ids"]))],
        1,
    );
    let d = max_abs_diff(m.forward_embeds(x, None, None), floats(&e["logits"]));
    assert!(d <= TOL, "max |Δ| = {d}");
}

#[test]
fn cross_attention_logits_match_transformers() {
    let e = expected("gpt2_cross");
    let m = load("gpt2_cross");
    let enc = floats::<3>(&e["encoder_hidden_states"]);
    let x = m.embed(ints(&e["input_ids"]));
    let d = max_abs_diff(m.forward_embeds(x, Some(&enc), None), floats(&e["logits"]));
    assert!(d <= TOL, "max |Δ| = {d}");
}

#[test]
fn kv_cache_gives_the_same_logits_as_a_full_pass() {
    let e = expected("gpt2");
    let m = load("gpt2");
    let ids = ints::<2>(&e["input_ids"]);
    let full = m.forward(ids.clone(), None);
    let mut cache = m.new_cache();
    let first = m.forward(ids.clone().narrow(1, 0, 5), Some(&mut cache));
    let mut parts = vec![first];
    for t in 5..9 {
        parts.push(m.forward(ids.clone().narrow(1, t, 1), Some(&mut cache)));
    }
    let d = max_abs_diff(Tensor::cat(parts, 1), full);
    assert!(d <= 1e-5, "max |Δ| = {d}");
}

#[test]
fn saved_weights_reload_identically_and_deterministically() {
    let m = load("gpt2");
    let tmp = save_twice("gpt2", || m.export());
    let again = Gpt2::<Cpu>::load(tmp.path(), &dev()).unwrap().0;
    let ids = ints::<2>(&expected("gpt2")["input_ids"]);
    assert_eq!(
        max_abs_diff(m.forward(ids.clone(), None), again.forward(ids, None)),
        0.0
    );
}

fn broken_copy(edit: impl FnOnce(&std::path::Path)) -> String {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(dir("gpt2").join(f), tmp.path().join(f)).unwrap();
    }
    edit(tmp.path());
    match Gpt2::<Cpu>::load(tmp.path(), &dev()) {
        Ok(_) => panic!("a broken checkpoint loaded"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn truncated_file_is_a_clear_error() {
    let err = broken_copy(|d| {
        let p = d.join("model.safetensors");
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    });
    assert!(
        err.contains("is not a valid safetensors file") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn wrong_shape_and_missing_keys_are_listed_by_name() {
    let err = broken_copy(|d| {
        let p = d.join("config.json");
        let cfg = std::fs::read_to_string(&p)
            .unwrap()
            .replace("\"n_positions\": 64", "\"n_positions\": 128");
        std::fs::write(&p, cfg).unwrap();
    });
    assert!(
        err.contains("wrong shape (1)")
            && err.contains("transformer.wpe.weight: expected [128, 32], found [64, 32]"),
        "{err}"
    );

    let err = broken_copy(|d| {
        let m = Gpt2::<Cpu>::load(&dir("gpt2"), &dev()).unwrap().0;
        let mut ex = m.export();
        ex.tensors.remove("transformer.h.1.ln_2.bias");
        ex.tensors
            .insert("transformer.h.9.extra".into(), (vec![2], vec![0.0, 0.0]));
        ex.save(&d.join("model.safetensors")).unwrap();
    });
    assert!(
        err.contains("missing (1):\n    transformer.h.1.ln_2.bias [32]"),
        "{err}"
    );
    assert!(
        err.contains("unexpected (1):\n    transformer.h.9.extra [2]"),
        "{err}"
    );
}

/// Writes every model's export to `target/exported/<name>/` so that
/// `tools/check_exports.py` can open them with transformers (a developer-machine check).
#[test]
fn exports_for_transformers() {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/exported");
    for name in [
        "gpt2",
        "gpt2_cross",
        "gpt_neo",
        "t5_v1_0",
        "t5_v1_1",
        "bart_mnli",
        "clip",
    ] {
        let d = out.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(dir(name).join("config.json"), d.join("config.json")).unwrap();
        let ex = match name {
            "clip" => hhi::models::clip::Clip::<Cpu>::load(&dir(name), &dev())
                .unwrap()
                .0
                .export(),
            "bart_mnli" => hhi::models::bart::BartClassifier::<Cpu>::load(&dir(name), &dev())
                .unwrap()
                .0
                .export(),
            "gpt_neo" => hhi::models::gpt_neo::GptNeo::<Cpu>::load(&dir(name), &dev())
                .unwrap()
                .0
                .export(),
            n if n.starts_with("t5") => hhi::models::t5::T5::<Cpu>::load(&dir(name), &dev())
                .unwrap()
                .0
                .export(),
            _ => Gpt2::<Cpu>::load(&dir(name), &dev()).unwrap().0.export(),
        };
        ex.save(&d.join("model.safetensors")).unwrap();
    }
}

/// A checkpoint split into shards with an index, stored as f16 and bf16, loads and
/// computes what the f32 original computes, to half precision.
#[test]
fn sharded_half_precision_checkpoints_load() {
    use safetensors::{Dtype, tensor::TensorView};
    let m = load("gpt2");
    let ex = m.export();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir("gpt2").join("config.json"),
        tmp.path().join("config.json"),
    )
    .unwrap();
    let names: Vec<&String> = ex.tensors.keys().collect();
    let (first, second) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (i, (part, dtype)) in [(first, Dtype::F16), (second, Dtype::BF16)]
        .into_iter()
        .enumerate()
    {
        let file = format!("model-0000{}-of-00002.safetensors", i + 1);
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = part
            .iter()
            .map(|k| {
                let (shape, vals) = &ex.tensors[*k];
                let b: Vec<u8> = match dtype {
                    Dtype::F16 => vals
                        .iter()
                        .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                        .collect(),
                    _ => vals
                        .iter()
                        .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                        .collect(),
                };
                ((*k).clone(), shape.clone(), b)
            })
            .collect();
        let views: Vec<(String, TensorView)> = bytes
            .iter()
            .map(|(k, s, b)| (k.clone(), TensorView::new(dtype, s.clone(), b).unwrap()))
            .collect();
        std::fs::write(
            tmp.path().join(&file),
            safetensors::serialize(views, None).unwrap(),
        )
        .unwrap();
        for k in part {
            weight_map.insert((*k).clone(), serde_json::Value::String(file.clone()));
        }
    }
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    std::fs::write(
        tmp.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let half_model = Gpt2::<Cpu>::load(tmp.path(), &dev()).unwrap().0;
    let ids = ints::<2>(&expected("gpt2")["input_ids"]);
    let d = max_abs_diff(m.forward(ids.clone(), None), half_model.forward(ids, None));
    assert!(
        d > 0.0 && d < 0.5,
        "half-precision weights should change logits a little: {d}"
    );
}

/// Max |Δ| over the positions where `mask` is 1 (padding positions hold no prediction).
fn masked_diff(a: Tensor<Cpu, 3>, b: Tensor<Cpu, 3>, mask: &[Vec<u32>]) -> f32 {
    let [_, t, v] = a.dims();
    let (a, b): (Vec<f32>, Vec<f32>) = (
        a.into_data().to_vec().unwrap(),
        b.into_data().to_vec().unwrap(),
    );
    let mut worst = 0f32;
    for (i, row) in mask.iter().enumerate() {
        for (j, &keep) in row.iter().enumerate() {
            if keep == 1 {
                let o = (i * t + j) * v;
                for k in o..o + v {
                    worst = worst.max((a[k] - b[k]).abs());
                }
            }
        }
    }
    worst
}

#[test]
fn left_padded_logits_match_transformers() {
    for name in ["gpt2", "gpt_neo"] {
        let e = &expected("padded")[name];
        let mask = id_rows(&e["attention_mask"]);
        let want = floats::<3>(&e["logits"]);
        let (ids, am, pos) = (
            ints::<2>(&e["input_ids"]),
            ints::<2>(&e["attention_mask"]),
            ints::<2>(&e["position_ids"]),
        );
        let (given, derived) = if name == "gpt2" {
            let m = load("gpt2");
            (
                m.forward_masked(ids.clone(), Some(am.clone()), Some(pos), None),
                m.forward_masked(ids, Some(am), None, None),
            )
        } else {
            let m = hhi::models::gpt_neo::GptNeo::<Cpu>::load(&dir(name), &dev())
                .unwrap()
                .0;
            (
                m.forward_masked(ids.clone(), Some(am.clone()), Some(pos), None),
                m.forward_masked(ids, Some(am), None, None),
            )
        };
        let d = masked_diff(given, want.clone(), &mask);
        println!("{name}: left-padded logits max |Δ| = {d:e}");
        assert!(d <= TOL, "{name}: max |Δ| = {d}");
        // Position ids derived from the mask are the ones generate() passes.
        let d = masked_diff(derived, want, &mask);
        assert!(d <= TOL, "{name}: derived positions: max |Δ| = {d}");
    }
}

#[test]
fn left_padded_cached_steps_match_a_full_masked_pass() {
    let e = &expected("padded")["gpt2"];
    let m = load("gpt2");
    let ids = ints::<2>(&e["input_ids"]);
    let am = ints::<2>(&e["attention_mask"]);
    let mask = id_rows(&e["attention_mask"]);
    let full = m.forward_masked(ids.clone(), Some(am.clone()), None, None);
    let mut cache = m.new_cache();
    let mut parts = vec![m.forward_masked(
        ids.clone().narrow(1, 0, 6),
        Some(am.clone().narrow(1, 0, 6)),
        None,
        Some(&mut cache),
    )];
    for t in 6..9 {
        parts.push(m.forward_masked(
            ids.clone().narrow(1, t, 1),
            Some(am.clone().narrow(1, 0, t + 1)),
            None,
            Some(&mut cache),
        ));
    }
    let d = masked_diff(Tensor::cat(parts, 1), full, &mask);
    assert!(d <= 1e-5, "max |Δ| = {d}");
}
