//! BLEURT against `bleurt-pytorch` on a tiny random checkpoint (tools/make_bleurt_fixtures.py,
//! run in a venv with transformers 4.44.2): the pair encoding (ids and token types, with
//! the longer side trimmed first) and the scores, to 1e-4, for pairs of different lengths
//! in one padded batch and for a pair longer than the model's maximum length.
use hhi::models::bleurt::Scorer;
use std::path::{Path, PathBuf};

type B = hhi::models::Cpu;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bleurt")
}

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap()).unwrap()
}

fn pairs(e: &serde_json::Value) -> Vec<(String, String)> {
    e["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
        .collect()
}

#[test]
fn pair_encoding_matches_the_reference_tokenizer() {
    let dev = Default::default();
    let s = Scorer::<B>::load(&dir(), &dev).unwrap();
    let e = expected();
    let max = e["max_length"].as_u64().unwrap() as usize;
    for (i, (r, c)) in pairs(&e).iter().enumerate() {
        let (ids, types) = s.encode(r, c).unwrap();
        let mask: Vec<u64> = e["attention_mask"][i]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let n = mask.iter().sum::<u64>() as usize;
        let want_ids: Vec<u32> = e["input_ids"][i].as_array().unwrap()[..n]
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let want_types: Vec<u32> = e["token_type_ids"][i].as_array().unwrap()[..n]
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(ids, want_ids, "pair {i}");
        assert_eq!(types, want_types, "pair {i}");
        assert!(ids.len() <= max);
    }
    // The last pair is longer than the model's length, and was cut to it.
    let (r, c) = pairs(&e).pop().unwrap();
    assert_eq!(s.encode(&r, &c).unwrap().0.len(), max);
}

#[test]
fn scores_match_bleurt_pytorch_in_a_padded_batch_and_alone() {
    let dev = Default::default();
    let s = Scorer::<B>::load(&dir(), &dev).unwrap();
    let e = expected();
    let p = pairs(&e);
    let refs: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let want: Vec<f64> = e["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for batch in [refs.len(), 2, 1] {
        let got = s.scores(&refs, batch).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (*g as f64 - w).abs() < 1e-4,
                "batch {batch}, pair {i}: {g} vs bleurt-pytorch {w}"
            );
        }
    }
}

#[test]
fn a_missing_or_wrong_checkpoint_is_an_error_naming_it() {
    let dev = Default::default();
    let tmp = tempfile::tempdir().unwrap();
    let err = Scorer::<B>::load(&tmp.path().join("nope"), &dev)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("nope") && err.contains("not a folder"),
        "{err}"
    );
    // Config and tokenizer, no weights.
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(dir().join(f), tmp.path().join(f)).unwrap();
    }
    let err = format!("{:#}", Scorer::<B>::load(tmp.path(), &dev).err().unwrap());
    assert!(err.contains(&tmp.path().display().to_string()), "{err}");
    // A checkpoint of another shape: the weights do not fit the config.
    std::fs::copy(
        dir().join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    let cfg = std::fs::read_to_string(dir().join("config.json"))
        .unwrap()
        .replace("\"hidden_size\": 16", "\"hidden_size\": 32");
    std::fs::write(tmp.path().join("config.json"), cfg).unwrap();
    let err = format!("{:#}", Scorer::<B>::load(tmp.path(), &dev).err().unwrap());
    assert!(err.contains("bleurt.") || err.contains("shape"), "{err}");
    // No tokenizer.json: say how to make it.
    std::fs::remove_file(tmp.path().join("tokenizer.json")).unwrap();
    let err = format!("{:#}", Scorer::<B>::load(tmp.path(), &dev).err().unwrap());
    assert!(err.contains("tools/convert_bleurt.py"), "{err}");
}
