//! CLIP against transformers: image and text embeddings, logits, padding, the tokenizer,
//! saving; and a toy CLIP trained from scratch that learns to match images to captions.
mod support;
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use hhi::models::clip::{Clip, ClipConfig, contrastive_loss};
use hhi::models::train::{AdamWOptions, adamw};
use hhi::models::weights::Weights;
use hhi::models::{Cpu, CpuTrain};
use support::*;

fn load() -> Clip<Cpu> {
    Clip::load(&dir("clip"), &dev()).unwrap().0
}

#[test]
fn image_embeds_match_transformers() {
    let e = expected("clip");
    let m = load();
    let d = max_abs_diff(
        m.image_embeds(floats(&e["pixel_values"])),
        floats(&e["image_embeds"]),
    );
    eprintln!("image_embeds max |Δ| = {d}");
    assert!(d <= TOL, "max |Δ| = {d}");
}

#[test]
fn text_embeds_match_transformers() {
    let e = expected("clip");
    let m = load();
    let got = m.text_embeds(ints(&e["input_ids"]), ints(&e["attention_mask"]));
    let d = max_abs_diff(got, floats(&e["text_embeds"]));
    eprintln!("text_embeds max |Δ| = {d}");
    assert!(d <= TOL, "max |Δ| = {d}");
}

#[test]
fn logits_per_image_match_transformers() {
    let e = expected("clip");
    let m = load();
    let logits = m.logits_per_image(
        floats(&e["pixel_values"]),
        ints(&e["input_ids"]),
        ints(&e["attention_mask"]),
    );
    let d = max_abs_diff(logits, floats(&e["logits_per_image"]));
    eprintln!("logits_per_image max |Δ| = {d}");
    assert!(d <= TOL, "max |Δ| = {d}");
}

#[test]
fn padding_does_not_change_a_text_embedding() {
    let e = expected("clip");
    let m = load();
    let ids = ints::<2>(&e["input_ids"]);
    let mask = ints::<2>(&e["attention_mask"]);
    let batch = m.text_embeds(ids.clone(), mask.clone());
    // The third text ("a photo") alone, without its padding.
    let len = id_rows(&e["attention_mask"])[2]
        .iter()
        .filter(|&&x| x == 1)
        .count();
    let alone = m.text_embeds(
        ids.narrow(0, 2, 1).narrow(1, 0, len),
        mask.narrow(0, 2, 1).narrow(1, 0, len),
    );
    let d = max_abs_diff(batch.narrow(0, 2, 1), alone);
    assert!(d <= 1e-5, "max |Δ| = {d}");
}

#[test]
fn tokenizer_matches_transformers() {
    let e = expected("clip");
    let tok = hhi::text::tokenizer::Tokenizer::load(&dir("clip")).unwrap();
    let tokens = e["tokens"].as_object().unwrap();
    assert!(!tokens.is_empty());
    for (s, ids) in tokens {
        let want: Vec<u32> = ids
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(tok.encode(s).unwrap(), want, "{s:?}");
    }
    // The fixture's padded batch starts with the same ids.
    for (text, row) in e["texts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(id_rows(&e["input_ids"]))
    {
        let ids = tok.encode(text.as_str().unwrap()).unwrap();
        assert_eq!(ids[..], row[..ids.len()], "{text}");
    }
}

fn names_and_shapes(path: &std::path::Path) -> Vec<(String, Vec<usize>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<(String, Vec<usize>)> = st
        .tensors()
        .into_iter()
        .map(|(k, t)| (k, t.shape().to_vec()))
        .collect();
    v.sort();
    v
}

#[test]
fn saved_weights_reload_identically_and_deterministically() {
    let e = expected("clip");
    let m = load();
    let tmp = save_twice("clip", || m.export());
    let path = tmp.path().join("model.safetensors");
    assert_eq!(
        names_and_shapes(&path),
        names_and_shapes(&dir("clip").join("model.safetensors")),
        "the same tensors as transformers writes"
    );
    let again = Clip::<Cpu>::load(tmp.path(), &dev()).unwrap().0;
    let run = |m: &Clip<Cpu>| {
        m.logits_per_image(
            floats(&e["pixel_values"]),
            ints(&e["input_ids"]),
            ints(&e["attention_mask"]),
        )
    };
    assert_eq!(max_abs_diff(run(&m), run(&again)), 0.0);
}

#[test]
fn contrastive_loss_is_the_mean_of_both_cross_entropies() {
    let l = Tensor::<Cpu, 2>::from_floats([[2.0, 0.0], [1.0, 1.0]], &dev());
    let got: f32 = contrastive_loss(l).into_scalar();
    // Rows: -log softmax picks (2 of [2,0]) and (1 of [1,1]); columns: (2 of [2,1]) and
    // (1 of [0,1]).
    let ce = |x: f32, others: &[f32]| {
        let z: f32 = others.iter().map(|o| o.exp()).sum::<f32>() + x.exp();
        z.ln() - x
    };
    let want = (ce(2.0, &[0.0]) + ce(1.0, &[1.0]) + ce(2.0, &[1.0]) + ce(1.0, &[0.0])) / 4.0;
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
}

/// Toy task: 8 classes of 16×16 images (a bright square in one of four quadrants, red or
/// blue, under Gaussian noise of standard deviation 0.5), each with its own 4-token caption.
const CLASSES: usize = 8;
const SIZE: usize = 16;

fn toy_images<B: Backend>(
    classes: &[usize],
    rng: &mut rand_chacha::ChaCha8Rng,
    dev: &B::Device,
) -> Tensor<B, 4> {
    use rand_distr::Distribution;
    let noise = rand_distr::Normal::new(0.0f32, 0.5).unwrap();
    let mut px = Vec::with_capacity(classes.len() * 3 * SIZE * SIZE);
    let half = SIZE / 2;
    for &k in classes {
        let (qy, qx, colour) = ((k % 4) / 2, k % 2, if k < 4 { 0 } else { 2 });
        for c in 0..3 {
            for y in 0..SIZE {
                for x in 0..SIZE {
                    let inside = y / half == qy && x / half == qx;
                    let base = if inside && c == colour { 1.0 } else { -0.5 };
                    px.push(base + noise.sample(rng));
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(px, [classes.len(), 3, SIZE, SIZE]), dev)
}

/// Caption `k`: bos, two class words, eos (ids 0 and 1 as in CLIP's tokenizer).
fn toy_captions<B: Backend>(dev: &B::Device) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
    let ids: Vec<i64> = (0..CLASSES as i64)
        .flat_map(|k| [0, 2 + k, 2 + CLASSES as i64 + (k * 3) % CLASSES as i64, 1])
        .collect();
    let ids = Tensor::from_data(TensorData::new(ids, [CLASSES, 4]), dev);
    let mask = Tensor::<B, 2, Int>::ones([CLASSES, 4], dev);
    (ids, mask)
}

#[test]
fn toy_clip_learns_to_retrieve_captions() {
    use rand::SeedableRng;
    let start = std::time::Instant::now();
    let dev = dev();
    let cfg_json = serde_json::json!({
        "projection_dim": 16,
        "text_config": {
            "vocab_size": 2 + 2 * CLASSES, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 1, "num_attention_heads": 4, "max_position_embeddings": 8,
            "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1
        },
        "vision_config": {
            "image_size": SIZE, "patch_size": 4, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 1, "num_attention_heads": 4
        }
    });
    let cfg: ClipConfig = serde_json::from_value(cfg_json.clone()).unwrap();
    // std 0.1 rather than transformers' 0.02: with near-zero position embeddings the
    // class token cannot tell the quadrants apart and training stalls at ln 4.
    let mut model = Clip::<CpuTrain>::from_weights(&cfg, Weights::random(7, 0.1), &dev).unwrap();
    let mut optim = adamw::<CpuTrain, Clip<CpuTrain>>(AdamWOptions::default());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let (ids, mask) = toy_captions::<CpuTrain>(&dev);
    let all: Vec<usize> = (0..CLASSES).collect();
    let steps = 400;
    let mut first_loss = None;
    let mut last_loss = 0.0;
    for _ in 0..steps {
        let images = toy_images::<CpuTrain>(&all, &mut rng, &dev);
        let loss = contrastive_loss(model.logits_per_image(images, ids.clone(), mask.clone()));
        last_loss = loss.clone().into_scalar();
        first_loss.get_or_insert(last_loss);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(2e-3, model, grads);
    }
    let first_loss = first_loss.unwrap();

    // Retrieval on fresh images: 4 per class, each should pick its own caption among the 8.
    let model = model.valid();
    let per_class = 4;
    let classes: Vec<usize> = (0..CLASSES)
        .flat_map(|k| std::iter::repeat_n(k, per_class))
        .collect();
    let images = toy_images::<Cpu>(&classes, &mut rng, &dev);
    let (ids, mask) = toy_captions::<Cpu>(&dev);
    let logits = model.logits_per_image(images.clone(), ids.clone(), mask.clone());
    // The trained model (logit_scale included) survives saving and loading.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.json"), cfg_json.to_string()).unwrap();
    model
        .export()
        .save(&tmp.path().join("model.safetensors"))
        .unwrap();
    let twice = model.logits_per_image(images.clone(), ids.clone(), mask.clone());
    let d = max_abs_diff(logits.clone(), twice);
    assert_eq!(d, 0.0, "the same model gave logits differing by {d}");
    let again = Clip::<Cpu>::load(tmp.path(), &dev).unwrap().0;
    let d = max_abs_diff(logits.clone(), again.logits_per_image(images, ids, mask));
    // Not bit-equal: trained parameters can be strided views that burn-flex multiplies
    // with a different gemm kernel than the contiguous tensors a load creates.
    assert!(d < 1e-5, "reloaded logits differ by {d}");
    let pred: Vec<i64> = logits
        .argmax(1)
        .to_data()
        .convert::<i64>()
        .to_vec()
        .unwrap();
    let correct = pred
        .iter()
        .zip(&classes)
        .filter(|(p, k)| **p == **k as i64)
        .count();
    let secs = start.elapsed().as_secs_f32();
    eprintln!(
        "toy CLIP: loss {first_loss:.3} → {last_loss:.3} in {steps} steps, retrieval {correct}/{} ({secs:.1}s)",
        classes.len()
    );
    // Threshold: at least 7 of every 8 fresh images retrieve their own caption.
    assert!(
        correct * 8 >= classes.len() * 7,
        "retrieval {correct}/{}",
        classes.len()
    );
    assert!(last_loss < first_loss / 4.0, "{first_loss} → {last_loss}");
}

#[test]
fn a_checkpoint_without_logit_scale_or_of_another_size_is_a_clear_error() {
    let m = load();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir("clip").join("config.json"),
        tmp.path().join("config.json"),
    )
    .unwrap();
    let mut ex = m.export();
    ex.tensors.remove("logit_scale");
    ex.save(&tmp.path().join("model.safetensors")).unwrap();
    let err = format!("{:#}", Clip::<Cpu>::load(tmp.path(), &dev()).unwrap_err());
    assert!(
        err.contains("missing (1)") && err.contains("logit_scale"),
        "{err}"
    );

    let cfg = std::fs::read_to_string(dir("clip").join("config.json"))
        .unwrap()
        .replace("\"image_size\": 32", "\"image_size\": 64");
    std::fs::write(tmp.path().join("config.json"), cfg).unwrap();
    m.export()
        .save(&tmp.path().join("model.safetensors"))
        .unwrap();
    let err = format!("{:#}", Clip::<Cpu>::load(tmp.path(), &dev()).unwrap_err());
    assert!(
        err.contains(
            "vision_model.embeddings.position_embedding.weight: expected [65, 32], found [17, 32]"
        ),
        "{err}"
    );
}
