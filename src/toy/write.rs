//! Writers for the real formats: JPEG images, RFC-4180 CSV rows, JSON and JSON Lines.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::Path;

/// Encodes RGB pixels as a baseline JPEG. 4:4:4 chroma and high quality, because at 64×64
/// the default 4:2:0 subsampling smears the thin coloured limbs that tell poses apart.
pub fn encode_jpeg(rgb: &[u8], w: usize, h: usize) -> Result<Vec<u8>> {
    if rgb.len() != w * h * 3 || w == 0 || h == 0 {
        bail!(
            "JPEG encoder got {} bytes for a {w}×{h} RGB image",
            rgb.len()
        );
    }
    // libjpeg reports errors by unwinding; turn that into an error value.
    let out = std::panic::catch_unwind(|| -> std::io::Result<Vec<u8>> {
        let mut comp = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        comp.set_fastest_defaults();
        comp.set_size(w, h);
        comp.set_quality(92.0);
        comp.set_chroma_sampling_pixel_sizes((1, 1), (1, 1));
        let mut started = comp.start_compress(Vec::new())?;
        started.write_scanlines(rgb)?;
        started.finish()
    });
    match out {
        Ok(r) => r.context("JPEG encoding failed"),
        Err(_) => bail!("JPEG encoder aborted"),
    }
}

pub fn write_jpeg(path: &Path, rgb: &[u8], w: usize, h: usize) -> Result<()> {
    let bytes = encode_jpeg(rgb, w, h)?;
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// One CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One CSV record with its CRLF terminator, as RFC 4180 writes it.
pub fn csv_row(fields: &[&str]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// Parses RFC-4180 CSV text into records (used to check the writer; importers have their own).
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                any = false;
            }
            _ => field.push(c),
        }
    }
    if quoted {
        bail!("unterminated quoted CSV field");
    }
    if any {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

pub fn json_line<T: Serialize>(v: &T) -> Result<String> {
    let mut s = serde_json::to_string(v)?;
    s.push('\n');
    Ok(s)
}

pub fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_awkward_fields() {
        let rows = [
            vec!["source", "id", "label", "caption", "url"],
            vec![
                "ww",
                "000001",
                "_ hugging _",
                "[NAME], left, hugs \"[NAME]\"\nin Paris",
                "",
            ],
            vec![
                "cc",
                "cc_1",
                "_ giving _ a high five",
                "plain",
                "http://x/y,z",
            ],
        ];
        let text: String = rows.iter().map(|r| csv_row(r)).collect();
        let back = parse_csv(&text).unwrap();
        assert_eq!(
            back,
            rows.iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn jpeg_encodes_and_rejects_bad_sizes() {
        let px = vec![128u8; 8 * 8 * 3];
        let j = encode_jpeg(&px, 8, 8).unwrap();
        assert_eq!(&j[..2], &[0xFF, 0xD8]);
        assert!(encode_jpeg(&px, 9, 8).is_err());
    }
}
