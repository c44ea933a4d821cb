//! `import_whos_waldo`: a Who's Waldo folder tree → `Captions`.
//!
//! The tree has one folder per item (`<id>/{image.jpg, caption.txt, detections.json, …}`,
//! possibly grouped in sub-folders) and the official splits as `splits/<split>.txt`.
//! `persons` is the number of detections; items with fewer than `min_persons` are left
//! out (the paper pseudo-labels items with more than one detected person).

use crate::context::StageContext;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::stages::io::{self, Caption, Problems, StageLog};
use crate::types::ArtifactType;
use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub struct ImportWhosWaldo;

/// Folders below the root that are searched for item folders (`<root>/<shard>/<id>/`).
const MAX_DEPTH: usize = 3;

/// Item folders: those holding a `caption.txt` or an `image.jpg`, found at most
/// `MAX_DEPTH` levels down, in path order; `splits/` is not searched.
pub(crate) fn item_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        entries.sort();
        for p in entries.into_iter().rev() {
            if depth == 0 && p.file_name().is_some_and(|n| n == "splits") {
                continue;
            }
            if p.join("caption.txt").exists() || p.join("image.jpg").exists() {
                found.push(p);
            } else if depth + 1 < MAX_DEPTH {
                stack.push((p, depth + 1));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// `splits/<name>.txt` → id → split names (an id may wrongly be in several).
fn read_splits(root: &Path) -> Result<BTreeMap<String, Vec<String>>> {
    let mut of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let dir = root.join("splits");
    if !dir.is_dir() {
        return Ok(of);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for f in files {
        let Some(name) = f.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let name = name.to_string();
        for id in io::read_id_list(&f)? {
            of.entry(id).or_default().push(name.clone());
        }
    }
    Ok(of)
}

/// What reading one item folder gave.
enum Item {
    Ok { caption: String, persons: u32 },
    Bad(&'static str, String),
}

/// Number of detections: a JSON array, or an object holding one under a usual key.
fn count_detections(text: &str) -> Result<u32, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let n = match &v {
        serde_json::Value::Array(a) => a.len(),
        serde_json::Value::Object(o) => ["detections", "boxes", "bboxes", "instances"]
            .iter()
            .find_map(|k| o.get(*k).and_then(|x| x.as_array()).map(Vec::len))
            .ok_or("an object without a list of detections")?,
        _ => return Err("neither a list nor an object".into()),
    };
    u32::try_from(n).map_err(|_| "too many detections".into())
}

fn read_item(dir: &Path, max_chars: usize, images: &str) -> Item {
    let bytes = match std::fs::read(dir.join("caption.txt")) {
        Ok(b) => b,
        Err(e) => return Item::Bad("missing_caption", e.to_string()),
    };
    let caption = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => return Item::Bad("bad_utf8", e.utf8_error().to_string()),
    };
    // One caption per item: line breaks inside it are folded to spaces.
    let caption = caption
        .trim_start_matches('\u{feff}')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if caption.is_empty() {
        return Item::Bad("empty_caption", String::new());
    }
    let n = caption.chars().count();
    if n > max_chars {
        return Item::Bad("huge_caption", format!("{n} characters"));
    }
    let persons = match std::fs::read_to_string(dir.join("detections.json")) {
        Ok(t) => match count_detections(&t) {
            Ok(n) => n,
            Err(e) => return Item::Bad("bad_detections", e),
        },
        Err(e) => return Item::Bad("missing_detections", e.to_string()),
    };
    if let Some((kind, msg)) = io::image_problem(&dir.join("image.jpg"), images) {
        return Item::Bad(kind, msg);
    }
    Item::Ok { caption, persons }
}

impl StageKind for ImportWhosWaldo {
    fn name(&self) -> &'static str {
        "import_whos_waldo"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "reads a Who's Waldo folder tree (one folder per id, splits/) into Captions JSONL; \
         persons = detections; bad items counted and skipped or fatal (`on_error`)"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            io::on_error_param(),
            ParamSpec::int(
                "min_persons",
                2,
                "items with fewer detected persons are left out (the paper: more than one)",
            )
            .range(0.0, 1000.0),
            ParamSpec::list(
                "splits",
                &[],
                "keep only items of these splits (splits/<name>.txt); empty: all items",
            ),
            ParamSpec::int(
                "max_caption_chars",
                4000,
                "a longer caption is a bad item (`huge_caption`)",
            )
            .range(1.0, 10_000_000.0)
            .unit("characters"),
            io::check_images_param(),
            io::optional_path(
                "ids",
                "optional list of ids to import (one per line, or a JSON array); an id \
                 without a folder is a bad item (`missing_item`)",
            ),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "data",
            ArtifactType::Dataset,
            "the Who's Waldo folder tree",
        )]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "captions",
            ArtifactType::Captions,
            "JSONL {id, caption, persons, source: \"ww\", split}, sorted by id",
        )]
    }

    fn run(&self, ctx: &mut StageContext) -> Result<()> {
        let root = ctx.input("data")?.to_path_buf();
        if !root.is_dir() {
            bail!("`data` must be a Who's Waldo folder, got a file");
        }
        let min_persons = ctx.params.int("min_persons");
        let max_chars = usize::try_from(ctx.params.int("max_caption_chars")).unwrap_or(usize::MAX);
        let images = ctx.params.str("check_images").to_string();
        let wanted_splits: BTreeSet<String> = ctx.params.list("splits").iter().cloned().collect();
        let mut problems = Problems::default();
        let mut log = StageLog::open(ctx);

        let splits = read_splits(&root)?;
        // An id listed in two splits would leak between training and test: dropped.
        let mut ambiguous: BTreeSet<String> = BTreeSet::new();
        for (id, s) in &splits {
            if s.len() > 1 {
                problems.add("duplicate_id", format!("{id}: in splits {}", s.join(", ")));
                ambiguous.insert(id.clone());
            }
        }
        let mut by_id: BTreeMap<String, PathBuf> = BTreeMap::new();
        for dir in item_dirs(&root)? {
            let Some(id) = dir.file_name().and_then(|n| n.to_str()).map(String::from) else {
                problems.add("bad_id", dir.display().to_string());
                continue;
            };
            if let Some(first) = by_id.get(&id) {
                let rel = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
                problems.add(
                    "duplicate_id",
                    format!("{id}: {} and {} (the first is kept)", rel(first), rel(&dir)),
                );
                continue;
            }
            by_id.insert(id, dir);
        }
        ctx.figure("items_found", by_id.len() as f64);

        let selected: Vec<(String, PathBuf)> = match io::optional_input(ctx, "ids") {
            Some(p) => {
                let mut seen = BTreeSet::new();
                let mut out = Vec::new();
                for id in io::read_id_list(&p)? {
                    if !seen.insert(id.clone()) {
                        continue;
                    }
                    match by_id.get(&id) {
                        Some(d) => out.push((id, d.clone())),
                        None => problems.add("missing_item", id),
                    }
                }
                out.sort();
                out
            }
            None => by_id.into_iter().collect(),
        };
        let selected: Vec<(String, PathBuf)> = selected
            .into_iter()
            .filter(|(id, _)| !ambiguous.contains(id))
            .collect();
        let selected: Vec<(String, PathBuf)> = if wanted_splits.is_empty() {
            selected
        } else {
            selected
                .into_iter()
                .filter(|(id, _)| {
                    splits
                        .get(id)
                        .is_some_and(|s| s.iter().any(|x| wanted_splits.contains(x)))
                })
                .collect()
        };

        let progress = ctx.progress().clone();
        progress.start(selected.len() as u64, "items");
        let read: Vec<Item> = selected
            .par_iter()
            .map(|(_, dir)| {
                let it = read_item(dir, max_chars, &images);
                progress.inc(1);
                it
            })
            .collect();

        let mut out = Vec::new();
        let mut below = 0usize;
        let mut per_split: BTreeMap<String, usize> = BTreeMap::new();
        for ((id, _), item) in selected.iter().zip(read) {
            match item {
                Item::Bad(kind, msg) => problems.add(
                    kind,
                    if msg.is_empty() {
                        id.clone()
                    } else {
                        format!("{id}: {msg}")
                    },
                ),
                Item::Ok { caption, persons } => {
                    if i64::from(persons) < min_persons {
                        below += 1;
                        continue;
                    }
                    let split = splits
                        .get(id)
                        .and_then(|s| s.first())
                        .cloned()
                        .unwrap_or_default();
                    *per_split.entry(split.clone()).or_default() += 1;
                    out.push(Caption {
                        id: id.clone(),
                        caption,
                        persons,
                        source: "ww".into(),
                        split,
                    });
                }
            }
        }
        problems.finish(ctx, &mut log, "Who's Waldo items")?;
        io::write_jsonl(ctx.output("captions")?, &out)?;
        ctx.figure("items_selected", selected.len() as f64);
        ctx.figure("below_min_persons", below as f64);
        ctx.figure("captions", out.len() as f64);
        for (s, n) in per_split {
            let name = if s.is_empty() { "none".into() } else { s };
            ctx.figure(&format!("split_{name}"), n as f64);
        }
        log.line(format!(
            "{} captions from {} items ({} below min_persons = {min_persons})",
            out.len(),
            selected.len(),
            below
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Value;
    use crate::stages::io::testing::run_kind;

    fn jpeg() -> Vec<u8> {
        crate::toy::write::encode_jpeg(&[128u8; 16 * 16 * 3], 16, 16).unwrap()
    }

    fn item(root: &Path, rel: &str, caption: &[u8], dets: &str, image: Option<&[u8]>) {
        let d = root.join(rel);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("caption.txt"), caption).unwrap();
        std::fs::write(d.join("detections.json"), dets).unwrap();
        if let Some(img) = image {
            std::fs::write(d.join("image.jpg"), img).unwrap();
        }
    }

    const TWO: &str = r#"[{"bbox":[0,0,1,1],"score":0.9},{"bbox":[1,1,2,2],"score":0.8}]"#;

    /// A tree with good items and one of each kind of trouble.
    fn messy_tree(root: &Path) {
        let img = jpeg();
        item(root, "a/000001", b"[NAME] hugs [NAME].\n", TWO, Some(&img));
        item(
            root,
            "a/000002",
            b"[NAME] (left)\nmeets [NAME].",
            TWO,
            Some(&img),
        );
        item(
            root,
            "a/000003",
            b"[NAME] waves.",
            r#"[{"bbox":[0,0,1,1]}]"#,
            Some(&img),
        );
        // No image.
        item(root, "a/000004", b"[NAME] and [NAME] talk.", TWO, None);
        // The same id in another shard.
        item(root, "b/000001", b"[NAME] again.", TWO, Some(&img));
        // Latin-1, not UTF-8.
        item(root, "b/000005", b"[NAME] caf\xe9 [NAME]", TWO, Some(&img));
        // Truncated image.
        item(
            root,
            "b/000006",
            b"[NAME] greets [NAME].",
            TWO,
            Some(&img[..img.len() / 2]),
        );
        // Huge caption.
        let huge = format!("[NAME] {} [NAME]", "word ".repeat(2000));
        item(root, "b/000007", huge.as_bytes(), TWO, Some(&img));
        item(
            root,
            "b/000008",
            b"[NAME] meets [NAME].",
            "{oops",
            Some(&img),
        );
        item(
            root,
            "b/000009",
            "“[NAME]” — [NAME]".as_bytes(),
            r#"{"boxes":[[0,0,1,1],[1,1,2,2],[2,2,3,3]]}"#,
            Some(&img),
        );
        // Listed in two splits.
        item(root, "b/000010", b"[NAME] hugs [NAME].", TWO, Some(&img));
        std::fs::create_dir_all(root.join("splits")).unwrap();
        std::fs::write(
            root.join("splits/train.txt"),
            "000001\n000002\n000003\n000010\n",
        )
        .unwrap();
        std::fs::write(root.join("splits/test.txt"), "000004\n000009\n000010\n").unwrap();
    }

    #[test]
    fn messy_tree_is_reported_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ww");
        messy_tree(&root);
        let (r, fig, out) = run_kind(&ImportWhosWaldo, dir.path(), &[], &[("data", root.clone())]);
        r.unwrap();
        let caps: Vec<Caption> = io::read_jsonl(&out["captions"]).unwrap();
        let ids: Vec<&str> = caps.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["000001", "000002", "000009"]);
        assert_eq!(caps[0].caption, "[NAME] hugs [NAME].");
        assert_eq!(caps[0].split, "train");
        assert_eq!(caps[1].caption, "[NAME] (left) meets [NAME].");
        assert_eq!(caps[2].persons, 3);
        assert_eq!(caps[2].caption, "“[NAME]” — [NAME]");
        assert_eq!(fig["bad_missing_image"], 1.0);
        assert_eq!(fig["bad_duplicate_id"], 2.0); // b/000001, and 000010 in two splits
        assert_eq!(fig["bad_bad_utf8"], 1.0);
        assert_eq!(fig["bad_corrupt_image"], 1.0);
        assert_eq!(fig["bad_huge_caption"], 1.0);
        assert_eq!(fig["bad_bad_detections"], 1.0);
        assert_eq!(fig["below_min_persons"], 1.0);
        assert_eq!(fig["captions"], 3.0);
        let log = std::fs::read_to_string(dir.path().join("stage.log")).unwrap();
        assert!(log.contains("missing_image: 1 (e.g. 000004"), "{log}");
        assert!(log.contains("000001: a/000001 and b/000001"), "{log}");
    }

    #[test]
    fn fail_mode_names_every_kind_of_problem() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ww");
        messy_tree(&root);
        let (r, _, out) = run_kind(
            &ImportWhosWaldo,
            dir.path(),
            &[("on_error", Value::Str("fail".into()))],
            &[("data", root)],
        );
        let e = format!("{:#}", r.unwrap_err());
        for k in [
            "missing_image",
            "bad_utf8",
            "duplicate_id",
            "huge_caption",
            "corrupt_image",
        ] {
            assert!(e.contains(k), "{k} in {e}");
        }
        assert!(!out["captions"].exists());
    }

    #[test]
    fn id_list_and_split_selection() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ww");
        messy_tree(&root);
        let ids = dir.path().join("ids.txt");
        std::fs::write(&ids, "000002\n000009\n000002\nnope\n000010\n").unwrap();
        let (r, fig, out) = run_kind(
            &ImportWhosWaldo,
            dir.path(),
            &[("min_persons", Value::Int(0))],
            &[("data", root.clone()), ("ids", ids)],
        );
        r.unwrap();
        let caps: Vec<Caption> = io::read_jsonl(&out["captions"]).unwrap();
        assert_eq!(caps.len(), 2);
        assert_eq!(fig["bad_missing_item"], 1.0);

        let dir2 = tempfile::tempdir().unwrap();
        let (r, _, out) = run_kind(
            &ImportWhosWaldo,
            dir2.path(),
            &[
                ("splits", Value::List(vec!["test".into()])),
                ("min_persons", Value::Int(0)),
            ],
            &[("data", root)],
        );
        r.unwrap();
        let caps: Vec<Caption> = io::read_jsonl(&out["captions"]).unwrap();
        let ids: Vec<&str> = caps.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["000009"]);
    }
}
