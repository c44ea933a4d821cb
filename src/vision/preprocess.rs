//! CLIP's image preprocessing, equal to `CLIPImageProcessor` with its PIL backend: convert
//! to RGB (transparency composited onto white, as transformers does), resize the shortest
//! side with PIL's bicubic filter, centre-crop, rescale by 1/255, normalise with CLIP's
//! mean and std.
//!
//! The resampler is a port of Pillow's `ImagingResample` (fixed-point, two passes,
//! horizontal first, rounding to 8 bits between them) rather than the `image` crate's
//! resize, and JPEGs are decoded with libjpeg-turbo's code (mozjpeg) rather than
//! zune-jpeg, because the pixel values must match Pillow's to the last level.

use anyhow::Context;
use image::{DynamicImage, RgbImage, Rgba};
use std::path::Path;

pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

#[derive(Debug, Clone)]
pub struct ClipImageConfig {
    pub shortest_edge: u32,
    pub crop_height: u32,
    pub crop_width: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl ClipImageConfig {
    /// CLIP's preprocessing at a square input of `size` (a toy CLIP's `image_size`).
    pub fn square(size: usize) -> Self {
        let size = size as u32;
        ClipImageConfig {
            shortest_edge: size,
            crop_height: size,
            crop_width: size,
            ..Default::default()
        }
    }
}

impl Default for ClipImageConfig {
    /// openai/clip-vit-base-patch32's settings.
    fn default() -> Self {
        ClipImageConfig {
            shortest_edge: 224,
            crop_height: 224,
            crop_width: 224,
            mean: CLIP_MEAN,
            std: CLIP_STD,
        }
    }
}

/// Decodes a JPEG or PNG file. A corrupt or unsupported file is an error naming it.
pub fn open(path: &Path) -> anyhow::Result<DynamicImage> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot open image {}", path.display()))?;
    if bytes.starts_with(&[0xFF, 0xD8]) {
        return decode_jpeg(&bytes).with_context(|| {
            format!(
                "{} is not a readable JPEG image (corrupt or truncated?)",
                path.display()
            )
        });
    }
    let reader = image::ImageReader::open(path)
        .with_context(|| format!("cannot open image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read image {}", path.display()))?;
    reader.decode().with_context(|| {
        format!(
            "{} is not a readable JPEG or PNG image (corrupt or truncated?)",
            path.display()
        )
    })
}

/// JPEG through libjpeg-turbo's decoder, as Pillow does. CMYK files are read as Pillow
/// reads them (Adobe-inverted, the only kind Photoshop and Pillow write) and converted with
/// Pillow's integer CMYK → RGB formula.
fn decode_jpeg(bytes: &[u8]) -> anyhow::Result<DynamicImage> {
    use mozjpeg::ColorSpace;
    let d = mozjpeg::Decompress::new_mem(bytes)?;
    let (w, h) = (d.width() as u32, d.height() as u32);
    let bad = || anyhow::anyhow!("decoded pixel count does not match {w}×{h}");
    Ok(match d.color_space() {
        ColorSpace::JCS_GRAYSCALE => {
            let mut s = d.grayscale()?;
            let px: Vec<u8> = s.read_scanlines()?;
            s.finish()?;
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, px).ok_or_else(bad)?)
        }
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => {
            let mut s = d.to_colorspace(ColorSpace::JCS_CMYK)?;
            let px: Vec<[u8; 4]> = s.read_scanlines()?;
            s.finish()?;
            let muldiv255 = |a: i32, b: i32| {
                let t = a * b + 128;
                ((t >> 8) + t) >> 8
            };
            let mut rgb = Vec::with_capacity(px.len() * 3);
            for p in px {
                let [c, m, y, k] = p.map(|v| 255 - v as i32);
                let nk = 255 - k;
                rgb.extend([c, m, y].map(|v| (nk - muldiv255(v, nk)).clamp(0, 255) as u8));
            }
            DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, rgb).ok_or_else(bad)?)
        }
        _ => {
            let mut s = d.rgb()?;
            let px: Vec<[u8; 3]> = s.read_scanlines()?;
            s.finish()?;
            DynamicImage::ImageRgb8(
                RgbImage::from_raw(w, h, px.into_iter().flatten().collect()).ok_or_else(bad)?,
            )
        }
    })
}

/// Pillow's `alpha_composite(white, image)` for images with transparency, else the plain
/// conversion to RGB (greyscale replicated; CMYK already converted by the decoder).
pub fn to_rgb(img: &DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (x, y, Rgba([r, g, b, a])) in rgba.enumerate_pixels() {
        let px = if *a == 0 {
            [255, 255, 255]
        } else {
            // Pillow's integer compositing over an opaque white background.
            const BITS: u32 = 7;
            let a = *a as u32;
            let blend = 255 * (255 - a);
            let outa255 = a * 255 + blend;
            let coef1 = a * 255 * 255 * (1 << BITS) / outa255;
            let coef2 = 255 * (1 << BITS) - coef1;
            let mix = |c: u8| {
                let t = c as u32 * coef1 + 255 * coef2 + (0x80 << BITS);
                ((((t >> 8) + t) >> 8) >> BITS) as u8
            };
            [mix(*r), mix(*g), mix(*b)]
        };
        out.put_pixel(x, y, image::Rgb(px));
    }
    out
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`: for each output index, the first
/// input index and the fixed-point weights.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let w: Vec<f64> = (xmin..xmax)
                .map(|x| bicubic((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = w.iter().sum();
            let k = w
                .iter()
                .map(|&v| {
                    let v = if total != 0.0 { v / total } else { v };
                    let f = v * (1u32 << PRECISION_BITS) as f64;
                    if v < 0.0 {
                        (-0.5 + f) as i32
                    } else {
                        (0.5 + f) as i32
                    }
                })
                .collect();
            (xmin, k)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `Image.resize(size, Image.BICUBIC)` for an RGB image.
pub fn resize_bicubic(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (w0, h0) = (img.width() as usize, img.height() as usize);
    let (w1, h1) = (width as usize, height as usize);
    let half = 1i64 << (PRECISION_BITS - 1);
    // Horizontal pass first, rounded to 8 bits, as Pillow does.
    let tmp = if w1 != w0 {
        let cx = coefficients(w0, w1);
        let mut t = RgbImage::new(width, h0 as u32);
        for y in 0..h0 {
            for (x, (xmin, k)) in cx.iter().enumerate() {
                let mut acc = [half; 3];
                for (i, &kk) in k.iter().enumerate() {
                    let p = img.get_pixel((xmin + i) as u32, y as u32).0;
                    for c in 0..3 {
                        acc[c] += p[c] as i64 * kk as i64;
                    }
                }
                t.put_pixel(
                    x as u32,
                    y as u32,
                    image::Rgb([clip8(acc[0]), clip8(acc[1]), clip8(acc[2])]),
                );
            }
        }
        t
    } else {
        img.clone()
    };
    if h1 == h0 {
        return tmp;
    }
    let cy = coefficients(h0, h1);
    let mut out = RgbImage::new(width, height);
    for (y, (ymin, k)) in cy.iter().enumerate() {
        for x in 0..w1 {
            let mut acc = [half; 3];
            for (i, &kk) in k.iter().enumerate() {
                let p = tmp.get_pixel(x as u32, (ymin + i) as u32).0;
                for c in 0..3 {
                    acc[c] += p[c] as i64 * kk as i64;
                }
            }
            out.put_pixel(
                x as u32,
                y as u32,
                image::Rgb([clip8(acc[0]), clip8(acc[1]), clip8(acc[2])]),
            );
        }
    }
    out
}

/// Resize (shortest side), centre crop, rescale and normalise: `[3, crop_h, crop_w]` floats,
/// channel-major, as `CLIPImageProcessor` returns them.
pub fn preprocess(img: &DynamicImage, cfg: &ClipImageConfig) -> Vec<f32> {
    let rgb = to_rgb(img);
    let (w, h) = (rgb.width(), rgb.height());
    // transformers' get_resize_output_image_size: the long side is truncated, not rounded.
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = (cfg.shortest_edge as u64 * long as u64 / short as u64) as u32;
    let (nw, nh) = if w <= h {
        (cfg.shortest_edge, new_long)
    } else {
        (new_long, cfg.shortest_edge)
    };
    let resized = resize_bicubic(&rgb, nw, nh);
    let top = (nh as i64 - cfg.crop_height as i64) / 2;
    let left = (nw as i64 - cfg.crop_width as i64) / 2;
    let (ch, cw) = (cfg.crop_height as usize, cfg.crop_width as usize);
    let mut out = vec![0f32; 3 * ch * cw];
    for y in 0..ch {
        for x in 0..cw {
            let (sy, sx) = (top + y as i64, left + x as i64);
            // A crop larger than the image is padded with zeros, as transformers does.
            let p = if sy >= 0 && sx >= 0 && (sy as u32) < nh && (sx as u32) < nw {
                resized.get_pixel(sx as u32, sy as u32).0
            } else {
                [0, 0, 0]
            };
            for c in 0..3 {
                let v = (p[c] as f64 * (1.0 / 255.0)) as f32;
                out[c * ch * cw + y * cw + x] = (v - cfg.mean[c]) / cfg.std[c];
            }
        }
    }
    out
}
