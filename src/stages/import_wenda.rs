//! `import_wenda`: the Waldo and Wenda benchmark CSV (`source,id,label,caption,url`) and,
//! optionally, its images → a `Table` folder `{items.jsonl, images/}`.
//!
//! The CSV is read by the `csv` crate (RFC 4180: quoted fields with commas, doubled
//! quotes and line breaks). Labels that break the paper's strict form are kept, counted
//! (`labels_bad_form`) and listed in the log with their ids: the benchmark is what it is.

use crate::context::StageContext;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::stages::io::{self, Problems, StageLog, TableItem};
use crate::text::labels::is_strict_form;
use crate::types::ArtifactType;
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub struct ImportWenda;

const COLUMNS: [&str; 4] = ["source", "id", "label", "caption"];

/// The sources of the real benchmark; their counts are always reported.
const SOURCES: [&str; 3] = ["ww", "cc", "coco"];

/// The CSV file and the images folder of the `csv` input: a CSV file, or a folder holding
/// one `.csv` file and perhaps `images/`.
fn locate(input: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    if input.is_file() {
        return Ok((input.to_path_buf(), None));
    }
    let mut csvs: Vec<PathBuf> = std::fs::read_dir(input)
        .with_context(|| format!("reading {}", input.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")))
        .collect();
    csvs.sort();
    let csv = match csvs.as_slice() {
        [one] => one.clone(),
        [] => bail!("the `csv` folder holds no .csv file"),
        many => bail!(
            "the `csv` folder holds {} .csv files; give the file itself: {}",
            many.len(),
            many.iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let images = input.join("images");
    Ok((csv, images.is_dir().then_some(images)))
}

/// An id is used as a file name: no separators, no `.`/`..`, no control characters.
fn safe_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && !id.contains(['/', '\\'])
        && !id.chars().any(char::is_control)
}

/// The image of `id` in `dir`: `<id>.jpg|.jpeg|.png`, or `<id>/image.jpg` (the Who's
/// Waldo layout, so a Who's Waldo tree serves for the `ww` rows).
fn find_image(dir: &Path, id: &str) -> Option<PathBuf> {
    ["jpg", "jpeg", "png", "JPG", "JPEG", "PNG"]
        .iter()
        .map(|e| dir.join(format!("{id}.{e}")))
        .chain(std::iter::once(dir.join(id).join("image.jpg")))
        .find(|p| p.is_file())
}

/// A parsed row before its image is looked at.
struct Row {
    line: u64,
    item: TableItem,
}

/// Reads the CSV into rows; unreadable rows are problems.
fn read_rows(path: &Path, max_chars: usize, problems: &mut Problems) -> Result<Vec<Row>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(body);
    let header = rdr
        .byte_headers()
        .with_context(|| format!("{}: unreadable header", path.display()))?
        .clone();
    let names: Vec<String> = header
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_ascii_lowercase())
        .collect();
    let mut col = BTreeMap::new();
    for c in COLUMNS {
        match names.iter().position(|n| n == c) {
            Some(i) => {
                col.insert(c, i);
            }
            None => bail!(
                "{}: no `{c}` column (the header is: {}); Waldo and Wenda has \
                 source,id,label,caption,url",
                path.display(),
                names.join(",")
            ),
        }
    }
    let mut rows = Vec::new();
    let mut rec = csv::ByteRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // A malformed quote ends the file for the reader: report, keep what came.
                problems.add("bad_row", format!("line {line}: {e}"));
                break;
            }
        }
        if rec.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        if rec.len() < names.len() {
            problems.add(
                "bad_row",
                format!(
                    "line {line}: {} fields, the header has {}",
                    rec.len(),
                    names.len()
                ),
            );
            continue;
        }
        let field = |c: &str| -> Result<String, String> {
            let b = &rec[col[c]];
            std::str::from_utf8(b)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("line {line}, column {c}: {e}"))
        };
        let parsed = (|| -> Result<TableItem, String> {
            Ok(TableItem {
                source: field("source")?.to_ascii_lowercase(),
                id: field("id")?,
                label: field("label")?,
                caption: field("caption")?,
                image: String::new(),
            })
        })();
        let item = match parsed {
            Ok(i) => i,
            Err(e) => {
                problems.add("bad_utf8", e);
                continue;
            }
        };
        if !safe_id(&item.id) {
            problems.add("bad_id", format!("line {line}: id {:?}", item.id));
            continue;
        }
        let n = item.caption.chars().count();
        if n > max_chars {
            problems.add(
                "huge_caption",
                format!("{} (line {line}): {n} characters", item.id),
            );
            continue;
        }
        rows.push(Row { line, item });
    }
    Ok(rows)
}

impl StageKind for ImportWenda {
    fn name(&self) -> &'static str {
        "import_wenda"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "reads the Waldo and Wenda CSV (source,id,label,caption,url) and optional images into a \
         Table folder {items.jsonl, images/}; counts items per source and labels off the strict form"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            io::on_error_param(),
            ParamSpec::int(
                "max_caption_chars",
                4000,
                "a longer caption is a bad row (`huge_caption`)",
            )
            .range(1.0, 10_000_000.0)
            .unit("characters"),
            io::check_images_param(),
            io::optional_path(
                "images",
                "optional folder of the benchmark's images, <id>.jpg (or .jpeg/.png) or \
                 <id>/image.jpg; when `csv` is a folder, its images/ is used by default. With \
                 images, a row without one is a bad row (`missing_image`)",
            ),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "csv",
            ArtifactType::Any,
            "the CSV file, or a folder holding it (and images/), e.g. toy_world's waldo_wenda",
        )]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "items",
            ArtifactType::Table,
            "folder: items.jsonl {id, source, label, caption, image} in CSV order, images/<id>.<ext>",
        )]
    }

    fn run(&self, ctx: &mut StageContext) -> Result<()> {
        let (csv_path, folder_images) = locate(ctx.input("csv")?)?;
        let images_dir = io::optional_input(ctx, "images").or(folder_images);
        if let Some(d) = &images_dir
            && !d.is_dir()
        {
            bail!("`images` must be a folder, got {}", d.display());
        }
        let max_chars = usize::try_from(ctx.params.int("max_caption_chars")).unwrap_or(usize::MAX);
        let check = ctx.params.str("check_images").to_string();
        let mut problems = Problems::default();
        let mut log = StageLog::open(ctx);

        let rows = read_rows(&csv_path, max_chars, &mut problems)?;
        let out_dir = ctx.output("items")?.to_path_buf();
        let out_images = out_dir.join("images");
        std::fs::create_dir_all(&out_images)
            .with_context(|| format!("creating {}", out_images.display()))?;

        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        let mut items = Vec::new();
        let mut bad_form: Vec<(String, String)> = Vec::new();
        ctx.progress().start(rows.len() as u64, "rows");
        for Row { line, mut item } in rows {
            ctx.progress().inc(1);
            if let Some(first) = seen.get(&item.id) {
                problems.add(
                    "duplicate_id",
                    format!("{} (lines {first} and {line}; the first is kept)", item.id),
                );
                continue;
            }
            if let Some(dir) = &images_dir {
                let Some(src) = find_image(dir, &item.id) else {
                    problems.add("missing_image", item.id.clone());
                    continue;
                };
                if let Some((kind, msg)) = io::image_problem(&src, &check) {
                    problems.add(kind, format!("{}: {msg}", item.id));
                    continue;
                }
                let ext = if src.file_name().is_some_and(|n| n == "image.jpg") {
                    "jpg".to_string()
                } else {
                    src.extension()
                        .map(|e| e.to_string_lossy().to_ascii_lowercase())
                        .unwrap_or_else(|| "jpg".into())
                };
                let rel = format!("images/{}.{ext}", item.id);
                crate::store::fsutil::link_or_copy_all(&src, &out_dir.join(&rel))
                    .with_context(|| format!("copying {}", src.display()))?;
                item.image = rel;
            }
            seen.insert(item.id.clone(), line);
            if !is_strict_form(&item.label) {
                bad_form.push((item.id.clone(), item.label.clone()));
            }
            items.push(item);
        }
        problems.finish(ctx, &mut log, "Waldo and Wenda rows")?;
        io::write_jsonl(&out_dir.join("items.jsonl"), &items)?;

        let mut per_source: BTreeMap<String, usize> =
            SOURCES.iter().map(|s| (s.to_string(), 0)).collect();
        for i in &items {
            *per_source.entry(i.source.clone()).or_default() += 1;
        }
        ctx.figure("items", items.len() as f64);
        for (s, n) in &per_source {
            ctx.figure(&format!("items_{s}"), *n as f64);
        }
        ctx.figure("labels_bad_form", bad_form.len() as f64);
        let distinct: BTreeSet<&str> = items.iter().map(|i| i.label.as_str()).collect();
        ctx.figure("labels_distinct", distinct.len() as f64);
        ctx.figure(
            "images",
            items.iter().filter(|i| !i.image.is_empty()).count() as f64,
        );
        log.line(format!(
            "{} items ({}) from {}",
            items.len(),
            per_source
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            csv_path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        if !bad_form.is_empty() {
            log.line(format!(
                "{} labels break the strict form ^_ [^ ]*ing [^_]*_[^_]*$ (kept):",
                bad_form.len()
            ));
            for (id, label) in &bad_form {
                log.line(format!("  {id}\t{label}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Value;
    use crate::stages::io::testing::run_kind;

    /// Quoted fields with commas and line breaks, doubled quotes, unicode quotes, a BOM,
    /// CRLF line ends, an empty url, a bad-form label, a duplicate id, bad UTF-8.
    const MESSY: &[u8] = b"\xEF\xBB\xBFsource,id,label,caption,url\r\n\
ww,000123,_ shaking hands with _,\"[NAME], the mayor, shakes hands with [NAME].\",\r\n\
cc,cc_1,_ hugging _,\"Two friends hug\nafter the \"\"big\"\" game\",http://x/1.jpg\r\n\
coco,coco_9,_ and _ talking,\xE2\x80\x9cHello\xE2\x80\x9d \xE2\x80\x94 two men talk,\r\n\
cc,cc_1,_ hugging _,duplicate,\r\n\
cc,cc_2,_ hugging _,caf\xE9 latin-1,\r\n\
ww,short\r\n";

    fn write(dir: &Path) -> PathBuf {
        let p = dir.join("ww.csv");
        std::fs::write(&p, MESSY).unwrap();
        p
    }

    #[test]
    fn messy_csv_is_read_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let csv = write(dir.path());
        let (r, fig, out) = run_kind(&ImportWenda, dir.path(), &[], &[("csv", csv)]);
        r.unwrap();
        let items: Vec<TableItem> = io::read_jsonl(&out["items"].join("items.jsonl")).unwrap();
        let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["000123", "cc_1", "coco_9"]);
        assert_eq!(
            items[0].caption,
            "[NAME], the mayor, shakes hands with [NAME]."
        );
        assert_eq!(items[1].caption, "Two friends hug\nafter the \"big\" game");
        assert_eq!(items[2].caption, "“Hello” — two men talk");
        assert_eq!(items[0].image, "");
        assert_eq!(fig["items_ww"], 1.0);
        assert_eq!(fig["items_cc"], 1.0);
        assert_eq!(fig["items_coco"], 1.0);
        assert_eq!(fig["labels_bad_form"], 1.0);
        assert_eq!(fig["bad_duplicate_id"], 1.0);
        assert_eq!(fig["bad_bad_utf8"], 1.0);
        assert_eq!(fig["bad_bad_row"], 1.0);
        let log = std::fs::read_to_string(dir.path().join("stage.log")).unwrap();
        assert!(log.contains("coco_9\t_ and _ talking"), "{log}");
    }

    #[test]
    fn fail_mode_stops_with_the_report() {
        let dir = tempfile::tempdir().unwrap();
        let csv = write(dir.path());
        let (r, _, _) = run_kind(
            &ImportWenda,
            dir.path(),
            &[("on_error", Value::Str("fail".into()))],
            &[("csv", csv)],
        );
        let e = format!("{:#}", r.unwrap_err());
        assert!(e.contains("duplicate_id: 1 (e.g. cc_1"), "{e}");
        assert!(e.contains("bad_utf8"), "{e}");
    }

    #[test]
    fn folder_input_with_images() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("wenda");
        std::fs::create_dir_all(data.join("images")).unwrap();
        std::fs::write(
            data.join("w.csv"),
            "source,id,label,caption,url\nww,a,_ hugging _,x,\ncc,b,_ hugging _,y,\ncc,c,_ hugging _,z,\ncoco,d,_ hugging _,w,\n",
        )
        .unwrap();
        let img = crate::toy::write::encode_jpeg(&[9u8; 8 * 8 * 3], 8, 8).unwrap();
        std::fs::write(data.join("images/a.jpg"), &img).unwrap();
        std::fs::create_dir_all(data.join("images/b")).unwrap();
        std::fs::write(data.join("images/b/image.jpg"), &img).unwrap();
        std::fs::write(data.join("images/c.jpg"), &img[..20]).unwrap();
        // d has no image.
        let (r, fig, out) = run_kind(&ImportWenda, dir.path(), &[], &[("csv", data)]);
        r.unwrap();
        let items: Vec<TableItem> = io::read_jsonl(&out["items"].join("items.jsonl")).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].image, "images/a.jpg");
        assert_eq!(items[1].image, "images/b.jpg");
        assert!(out["items"].join("images/b.jpg").is_file());
        assert_eq!(fig["bad_missing_image"], 1.0);
        assert_eq!(fig["bad_corrupt_image"], 1.0);
        assert_eq!(fig["images"], 2.0);
    }

    #[test]
    fn missing_column_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "source,id,caption\nww,1,x\n").unwrap();
        let (r, _, _) = run_kind(&ImportWenda, dir.path(), &[], &[("csv", p)]);
        assert!(format!("{:#}", r.unwrap_err()).contains("no `label` column"));
    }
}
