//! GPT-Neo against transformers: logits with global and local (windowed) layers, and the
//! KV cache across the window boundary.
mod support;
use burn::prelude::*;
use hhi::models::Cpu;
use hhi::models::gpt_neo::GptNeo;
use support::*;

#[test]
fn logits_match_transformers() {
    let e = expected("gpt_neo");
    let (m, cfg) = GptNeo::<Cpu>::load(&dir("gpt_neo"), &dev()).unwrap();
    assert_eq!(cfg.attention_layers, ["global", "local"]);
    assert!(
        cfg.window_size < 9,
        "the fixture's sequences must cross the window"
    );
    let d = max_abs_diff(m.forward(ints(&e["input_ids"]), None), floats(&e["logits"]));
    assert!(d <= TOL, "max |Δ| = {d}");
}

#[test]
fn kv_cache_matches_a_full_pass_past_the_window() {
    let e = expected("gpt_neo");
    let m = GptNeo::<Cpu>::load(&dir("gpt_neo"), &dev()).unwrap().0;
    let ids = ints::<2>(&e["input_ids"]);
    let full = m.forward(ids.clone(), None);
    let mut cache = m.new_cache();
    let mut parts = vec![m.forward(ids.clone().narrow(1, 0, 2), Some(&mut cache))];
    for t in 2..9 {
        parts.push(m.forward(ids.clone().narrow(1, t, 1), Some(&mut cache)));
    }
    let d = max_abs_diff(Tensor::cat(parts, 1), full);
    assert!(d <= 1e-5, "max |Δ| = {d}");
}

#[test]
fn saves_in_hf_layout() {
    let m = GptNeo::<Cpu>::load(&dir("gpt_neo"), &dev()).unwrap().0;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir("gpt_neo").join("config.json"),
        tmp.path().join("config.json"),
    )
    .unwrap();
    m.export()
        .save(&tmp.path().join("model.safetensors"))
        .unwrap();
    let again = GptNeo::<Cpu>::load(tmp.path(), &dev()).unwrap().0;
    let ids = ints::<2>(&expected("gpt_neo")["input_ids"]);
    assert_eq!(
        max_abs_diff(m.forward(ids.clone(), None), again.forward(ids, None)),
        0.0
    );
}

#[test]
fn left_padded_cached_steps_cross_the_window_like_a_full_masked_pass() {
    let e = &expected("padded")["gpt_neo"];
    let m = GptNeo::<Cpu>::load(&dir("gpt_neo"), &dev()).unwrap().0;
    let ids = ints::<2>(&e["input_ids"]);
    let am = ints::<2>(&e["attention_mask"]);
    let full = m.forward_masked(ids.clone(), Some(am.clone()), None, None);
    let mut cache = m.new_cache();
    let mut parts = vec![m.forward_masked(
        ids.clone().narrow(1, 0, 3),
        Some(am.clone().narrow(1, 0, 3)),
        None,
        Some(&mut cache),
    )];
    for t in 3..9 {
        parts.push(m.forward_masked(
            ids.clone().narrow(1, t, 1),
            Some(am.clone().narrow(1, 0, t + 1)),
            None,
            Some(&mut cache),
        ));
    }
    // Compare the real positions of the longest row (no padding) and of the last row of
    // every other prompt: the last position, which generation reads.
    let (a, b) = (Tensor::cat(parts, 1), full);
    let d = max_abs_diff(a.clone().narrow(1, 8, 1), b.clone().narrow(1, 8, 1));
    assert!(d <= 1e-5, "max |Δ| = {d}");
    let d = max_abs_diff(a.narrow(0, 0, 1), b.narrow(0, 0, 1));
    assert!(d <= 1e-5, "max |Δ| = {d}");
}
