//! CLIP preprocessing against `CLIPImageProcessor` (PIL backend) on images the fixture
//! script wrote: a colour JPEG, a greyscale JPEG, a CMYK JPEG and a PNG with alpha.
mod support;
use hhi::vision::preprocess::{ClipImageConfig, open, preprocess};
use support::dir;

fn max_diff(name: &str) -> f32 {
    let e = support::expected("images");
    let cfg = ClipImageConfig {
        shortest_edge: e["shortest_edge"].as_u64().unwrap() as u32,
        crop_height: e["crop"].as_u64().unwrap() as u32,
        crop_width: e["crop"].as_u64().unwrap() as u32,
        ..Default::default()
    };
    let img = open(&dir("images").join(name)).unwrap();
    let ours = preprocess(&img, &cfg);
    let mut want = Vec::new();
    for ch in e["pixels"][name].as_array().unwrap() {
        for row in ch.as_array().unwrap() {
            want.extend(
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32),
            );
        }
    }
    assert_eq!(ours.len(), want.len());
    ours.iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

#[test]
fn png_with_alpha_matches_clip_image_processor() {
    let d = max_diff("alpha.png");
    assert!(d <= 1e-3, "max |Δ| = {d}");
}

#[test]
fn jpegs_match_clip_image_processor() {
    for name in ["colour.jpg", "grey.jpg", "cmyk.jpg"] {
        let d = max_diff(name);
        assert!(d <= 1e-3, "{name}: max |Δ| = {d}");
    }
}

#[test]
fn corrupt_image_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("broken.jpg");
    let bytes = std::fs::read(dir("images").join("colour.jpg")).unwrap();
    std::fs::write(&p, &bytes[..64]).unwrap();
    let err = format!("{:#}", open(&p).map(|_| ()).unwrap_err());
    assert!(err.contains("broken.jpg"), "{err}");
}
