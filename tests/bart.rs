//! BART (`BartForSequenceClassification`) against transformers: logits and probabilities
//! of a padded batch, padding invariance, `nli_scores`, saving, and loading errors.
mod support;
use burn::prelude::*;
use burn::tensor::activation::softmax;
use hhi::models::Cpu;
use hhi::models::bart::{BartClassifier, BartConfig, nli_scores};
use support::*;

const NAME: &str = "bart_mnli";

fn load() -> (BartClassifier<Cpu>, BartConfig) {
    BartClassifier::load(&dir(NAME), &dev()).unwrap()
}

/// The fixture rows without their padding.
fn unpadded_rows(e: &serde_json::Value) -> Vec<Vec<u32>> {
    let masks = id_rows(&e["attention_mask"]);
    id_rows(&e["input_ids"])
        .into_iter()
        .zip(masks)
        .map(|(r, m)| {
            r.into_iter()
                .zip(m)
                .filter(|(_, m)| *m == 1)
                .map(|(x, _)| x)
                .collect()
        })
        .collect()
}

fn row_tensor(r: &[u32]) -> Tensor<Cpu, 2, Int> {
    let v: Vec<i64> = r.iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(v, [1, r.len()]), &dev())
}

#[test]
fn logits_and_probs_match_transformers() {
    let e = expected(NAME);
    let (m, cfg) = load();
    assert_eq!(cfg.num_labels(), 3);
    let logits = m.forward(ints(&e["input_ids"]), ints(&e["attention_mask"]));
    let dl = max_abs_diff(logits.clone(), floats(&e["logits"]));
    assert!(dl <= TOL, "logits max |Δ| = {dl}");
    let dp = max_abs_diff(softmax(logits, 1), floats(&e["probs"]));
    assert!(dp <= TOL, "probs max |Δ| = {dp}");
    eprintln!("bart: logits max |Δ| = {dl}, probs max |Δ| = {dp}");
}

#[test]
fn padding_does_not_change_a_pairs_result() {
    let e = expected(NAME);
    let (m, _) = load();
    let batch = softmax(
        m.forward(ints(&e["input_ids"]), ints(&e["attention_mask"])),
        1,
    );
    for (i, r) in unpadded_rows(&e).iter().enumerate() {
        let ids = row_tensor(r);
        let mask = ids.ones_like();
        let alone = softmax(m.forward(ids, mask), 1);
        let d = max_abs_diff(alone, batch.clone().narrow(0, i, 1));
        assert!(d <= 1e-5, "row {i}: max |Δ| = {d}");
        eprintln!("bart: row {i} alone vs batch max |Δ| = {d}");
    }
}

#[test]
fn nli_scores_follow_the_config_label_order() {
    let e = expected(NAME);
    let (m, cfg) = load();
    let labels: Vec<String> = e["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    for (i, l) in labels.iter().enumerate() {
        assert_eq!(cfg.label_index(l), Some(i));
        assert_eq!(cfg.label_index(&l.to_uppercase()), Some(i));
        assert_eq!(cfg.label(i), Some(l.as_str()));
    }
    assert_eq!(cfg.label_index("maybe"), None);
    // `<s> p </s></s> h </s>` → (p, h).
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = unpadded_rows(&e)
        .into_iter()
        .map(|r| {
            let sep = r.iter().position(|&x| x == cfg.eos_token_id).unwrap();
            (r[1..sep].to_vec(), r[sep + 2..r.len() - 1].to_vec())
        })
        .collect();
    let scores = nli_scores(&m, &cfg, &pairs, &dev());
    assert_eq!(scores.len(), 3);
    let probs = &e["probs"];
    let mut worst = 0.0f32;
    for (i, s) in scores.iter().enumerate() {
        for (name, got) in [
            ("contradiction", s.contradiction),
            ("neutral", s.neutral),
            ("entailment", s.entailment),
        ] {
            let want = probs[i][cfg.label_index(name).unwrap()].as_f64().unwrap() as f32;
            worst = worst.max((got - want).abs());
        }
        let sum = s.contradiction + s.neutral + s.entailment;
        assert!((sum - 1.0).abs() < 1e-5, "row {i} sums to {sum}");
    }
    assert!(worst <= TOL, "max |Δ| = {worst}");
    eprintln!("bart: nli_scores max |Δ| = {worst}");
    assert!(nli_scores(&m, &cfg, &[], &dev()).is_empty());
}

#[test]
fn saved_weights_reload_identically_and_deterministically() {
    let (m, _) = load();
    let tmp = save_twice(NAME, || m.export());
    let path = tmp.path().join("model.safetensors");
    // Every tensor of the original checkpoint is written back under its name.
    let original = std::fs::read(dir(NAME).join("model.safetensors")).unwrap();
    let original = safetensors::SafeTensors::deserialize(&original).unwrap();
    let saved_bytes = std::fs::read(&path).unwrap();
    let saved = safetensors::SafeTensors::deserialize(&saved_bytes).unwrap();
    let mut a = original.names();
    let mut b = saved.names();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let again = BartClassifier::<Cpu>::load(tmp.path(), &dev()).unwrap().0;
    let e = expected(NAME);
    let (ids, mask) = (ints::<2>(&e["input_ids"]), ints::<2>(&e["attention_mask"]));
    assert_eq!(
        max_abs_diff(
            m.forward(ids.clone(), mask.clone()),
            again.forward(ids, mask)
        ),
        0.0
    );
}

fn load_with_config(edit: &[(&str, &str)]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir(NAME).join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    let mut cfg = std::fs::read_to_string(dir(NAME).join("config.json")).unwrap();
    for (from, to) in edit {
        assert!(cfg.contains(from), "{from} not in the fixture config");
        cfg = cfg.replace(from, to);
    }
    std::fs::write(tmp.path().join("config.json"), cfg).unwrap();
    match BartClassifier::<Cpu>::load(tmp.path(), &dev()) {
        Ok(_) => panic!("a mismatched config loaded"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn wrong_config_lists_misshaped_tensors_by_name() {
    let err = load_with_config(&[("\"d_model\": 32", "\"d_model\": 48")]);
    assert!(
        err.contains("wrong shape")
            && err.contains("model.shared.weight: expected [400, 48], found [400, 32]"),
        "{err}"
    );
    let err = load_with_config(&[("\"encoder_ffn_dim\": 64", "\"encoder_ffn_dim\": 128")]);
    assert!(
        err.contains("wrong shape (6)")
            && err
                .contains("model.encoder.layers.0.fc1.weight: expected [128, 32], found [64, 32]")
            && err
                .contains("model.encoder.layers.1.fc2.weight: expected [32, 128], found [32, 64]"),
        "{err}"
    );
    assert!(!err.contains("model.decoder.layers.0.fc1"), "{err}");
}
