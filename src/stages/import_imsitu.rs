//! `import_imsitu`: imSitu annotations (JSON keyed by `verb_N.jpg`) and the imSitu-HHI id
//! list → a `Table` whose label is the verb (imSitu-HHI is scored by verb similarity).

use crate::context::StageContext;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::stages::io::{self, Problems, StageLog, TableItem};
use crate::types::ArtifactType;
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub struct ImportImsitu;

/// `verb_N.jpg` → verb, from one JSON file or every `.json` file of a folder (imSitu ships
/// train/dev/test.json). The verb is the entry's `verb` field, else the id's prefix.
fn read_annotations(input: &Path) -> Result<BTreeMap<String, String>> {
    let files: Vec<PathBuf> = if input.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(input)
            .with_context(|| format!("reading {}", input.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
            .collect();
        v.sort();
        if v.is_empty() {
            bail!("no .json files in the `annotations` folder");
        }
        v
    } else {
        vec![input.to_path_buf()]
    };
    let mut out = BTreeMap::new();
    for f in files {
        let text = io::read_text(&f)?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", f.display()))?;
        let Some(obj) = v.as_object() else {
            bail!(
                "{}: imSitu annotations are a JSON object keyed by image id (verb_N.jpg)",
                f.display()
            );
        };
        for (id, entry) in obj {
            let verb = entry
                .get("verb")
                .and_then(|x| x.as_str())
                .map(String::from)
                .or_else(|| id.rsplit_once('_').map(|(v, _)| v.to_string()))
                .unwrap_or_default();
            out.insert(id.clone(), verb);
        }
    }
    Ok(out)
}

impl StageKind for ImportImsitu {
    fn name(&self) -> &'static str {
        "import_imsitu"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "reads imSitu annotations (JSON keyed by verb_N.jpg) and the imSitu-HHI id list into a \
         Table (label = the verb), with the images when given"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            io::on_error_param(),
            io::check_images_param(),
            io::optional_path(
                "images",
                "optional folder of imSitu images (<id>, e.g. hugging_12.jpg); with it, an id \
                 without its image is a bad item (`missing_image`)",
            ),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "annotations",
                ArtifactType::Any,
                "imSitu annotations: a JSON file keyed by verb_N.jpg, or a folder of them",
            ),
            PortSpec::new(
                "ids",
                ArtifactType::Any,
                "the imSitu-HHI ids (one per line or a JSON array; `.jpg` may be left out)",
            ),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "items",
            ArtifactType::Table,
            "folder: items.jsonl {id, source: \"imsitu\", label: verb, caption: \"\", image}, images/",
        )]
    }

    fn run(&self, ctx: &mut StageContext) -> Result<()> {
        let ann = read_annotations(ctx.input("annotations")?)?;
        let ids = io::read_id_list(ctx.input("ids")?)?;
        let images = io::optional_input(ctx, "images");
        let check = ctx.params.str("check_images").to_string();
        let mut problems = Problems::default();
        let mut log = StageLog::open(ctx);
        let out_dir = ctx.output("items")?.to_path_buf();
        std::fs::create_dir_all(out_dir.join("images"))?;
        let mut seen = BTreeSet::new();
        let mut items = Vec::new();
        for raw in ids {
            let id = if ann.contains_key(&raw) || raw.ends_with(".jpg") {
                raw.clone()
            } else {
                format!("{raw}.jpg")
            };
            let Some(verb) = ann.get(&id) else {
                problems.add("missing_item", raw);
                continue;
            };
            if verb.is_empty() {
                problems.add("no_verb", id);
                continue;
            }
            if !seen.insert(id.clone()) {
                problems.add("duplicate_id", id);
                continue;
            }
            if id.contains(['/', '\\']) || id.starts_with('.') {
                problems.add("bad_id", id);
                continue;
            }
            let mut image = String::new();
            if let Some(dir) = &images {
                let src = dir.join(&id);
                if let Some((kind, msg)) = io::image_problem(&src, &check) {
                    problems.add(
                        kind,
                        if msg.is_empty() {
                            id
                        } else {
                            format!("{id}: {msg}")
                        },
                    );
                    continue;
                }
                image = format!("images/{id}");
                crate::store::fsutil::link_or_copy_all(&src, &out_dir.join(&image))
                    .with_context(|| format!("copying {}", src.display()))?;
            }
            items.push(TableItem {
                id,
                source: "imsitu".into(),
                label: verb.clone(),
                caption: String::new(),
                image,
            });
        }
        problems.finish(ctx, &mut log, "imSitu ids")?;
        io::write_jsonl(&out_dir.join("items.jsonl"), &items)?;
        let verbs: BTreeSet<&str> = items.iter().map(|i| i.label.as_str()).collect();
        ctx.figure("items", items.len() as f64);
        ctx.figure("verbs", verbs.len() as f64);
        ctx.figure("annotated_images", ann.len() as f64);
        log.line(format!(
            "{} items of {} verbs ({} annotated images)",
            items.len(),
            verbs.len(),
            ann.len()
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::io::testing::run_kind;

    #[test]
    fn ids_become_verb_labelled_items() {
        let dir = tempfile::tempdir().unwrap();
        let ann = dir.path().join("ann.json");
        std::fs::write(
            &ann,
            r#"{"hugging_1.jpg": {"verb": "hugging", "frames": []},
                "hugging_2.jpg": {"frames": []},
                "kissing_7.jpg": {"verb": "kissing"}}"#,
        )
        .unwrap();
        let ids = dir.path().join("ids.txt");
        std::fs::write(
            &ids,
            "hugging_1.jpg\nhugging_2\nnope_3.jpg\nhugging_1.jpg\nkissing_7.jpg\n",
        )
        .unwrap();
        let imgs = dir.path().join("images");
        std::fs::create_dir_all(&imgs).unwrap();
        let img = crate::toy::write::encode_jpeg(&[9u8; 8 * 8 * 3], 8, 8).unwrap();
        std::fs::write(imgs.join("hugging_1.jpg"), &img).unwrap();
        std::fs::write(imgs.join("hugging_2.jpg"), &img).unwrap();
        let (r, fig, out) = run_kind(
            &ImportImsitu,
            dir.path(),
            &[],
            &[("annotations", ann), ("ids", ids), ("images", imgs)],
        );
        r.unwrap();
        let items: Vec<TableItem> = io::read_jsonl(&out["items"].join("items.jsonl")).unwrap();
        let got: Vec<(&str, &str)> = items
            .iter()
            .map(|i| (i.id.as_str(), i.label.as_str()))
            .collect();
        assert_eq!(
            got,
            [("hugging_1.jpg", "hugging"), ("hugging_2.jpg", "hugging")]
        );
        assert_eq!(items[0].image, "images/hugging_1.jpg");
        assert!(out["items"].join("images/hugging_2.jpg").is_file());
        assert_eq!(fig["bad_missing_item"], 1.0);
        assert_eq!(fig["bad_duplicate_id"], 1.0);
        assert_eq!(fig["bad_missing_image"], 1.0);
        assert_eq!(fig["verbs"], 1.0);
    }
}
