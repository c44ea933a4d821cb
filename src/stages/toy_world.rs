//! `toy_world`: generates the toy world (shared/spec/toy-world.md) in the real formats.

use crate::context::StageContext;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::stages::io::{self, Doc, StageLog};
use crate::toy::{ToyConfig, generate};
use crate::types::ArtifactType;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::io::BufRead;
use std::path::Path;

pub struct ToyWorld;

fn count(ctx: &StageContext, name: &str) -> Result<usize> {
    usize::try_from(ctx.params.int(name)).with_context(|| format!("`{name}` must not be negative"))
}

#[derive(Deserialize)]
struct TextOnly {
    text: String,
}

/// `{"text": …}` lines → Corpus records `{"id": "<prefix>-000001", "text": …}`.
fn to_corpus(from: &Path, to: &Path, prefix: &str) -> Result<usize> {
    let file = std::fs::File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let mut docs = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let t: TextOnly =
            serde_json::from_str(&line).with_context(|| format!("{}:{}", from.display(), i + 1))?;
        docs.push(Doc {
            id: format!("{prefix}-{:06}", docs.len()),
            text: t.text,
        });
    }
    io::write_jsonl(to, &docs)?;
    Ok(docs.len())
}

impl StageKind for ToyWorld {
    fn name(&self) -> &'static str {
        "toy_world"
    }
    fn version(&self) -> u32 {
        4
    }
    fn about(&self) -> &'static str {
        "generates the toy world from the seed: a Who's Waldo tree, a Waldo-and-Wenda CSV with \
         images, a CC-News-style corpus, an LM pretraining corpus and the hidden truth"
    }
    fn params(&self) -> Vec<ParamSpec> {
        let d = ToyConfig::default();
        vec![
            ParamSpec::int(
                "items",
                d.items as i64,
                "Who's Waldo items (folders), test split included",
            )
            .range(20.0, 10_000_000.0),
            ParamSpec::int(
                "test_items",
                d.test_items as i64,
                "benchmark `ww` rows (from the Who's Waldo test split); `cc` and `coco` rows are \
                 4/3 and 1 times as many, as in the real 300/400/300",
            )
            .range(1.0, 5_000_000.0),
            ParamSpec::int("image_size", d.image_size as i64, "image side")
                .range(16.0, 1024.0)
                .unit("pixels"),
            ParamSpec::int(
                "news_articles",
                d.news_articles as i64,
                "articles of the CC-News-style corpus",
            )
            .range(0.0, 10_000_000.0),
            ParamSpec::int(
                "pretrain_docs",
                d.pretrain_docs as i64,
                "documents of the language-model pretraining corpus",
            )
            .range(0.0, 10_000_000.0),
            ParamSpec::int(
                "web_pairs",
                d.web_pairs as i64,
                "web-style image-caption pairs for pretraining CLIP",
            )
            .range(0.0, 10_000_000.0),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "whos_waldo",
                ArtifactType::Dataset,
                "Who's Waldo tree: <id>/{image.jpg,caption.txt,detections.json,coreferences.json,\
                 ground_truth.json} and splits/{train,val,test}.txt",
            ),
            PortSpec::new(
                "waldo_wenda",
                ArtifactType::Dataset,
                "waldo_wenda.csv (source,id,label,caption,url) and images/<id>.jpg",
            ),
            PortSpec::new(
                "news",
                ArtifactType::Corpus,
                "news articles, JSONL {id, text}",
            ),
            PortSpec::new(
                "pretrain",
                ArtifactType::Corpus,
                "pretraining documents, JSONL {id, text}",
            ),
            PortSpec::new(
                "web",
                ArtifactType::Table,
                "web-style image-caption pairs (Table: items.jsonl {id, source: \"web\", label: \"\", caption, image}, images/) for pretraining CLIP",
            ),
            PortSpec::new(
                "truth",
                ArtifactType::Truth,
                "JSONL {id, source, label, verb, type, caption_states_interaction}",
            ),
        ]
    }

    fn run(&self, ctx: &mut StageContext) -> Result<()> {
        let cfg = ToyConfig {
            items: count(ctx, "items")?,
            test_items: count(ctx, "test_items")?,
            image_size: u32::try_from(ctx.params.int("image_size"))
                .context("`image_size` out of range")?,
            news_articles: count(ctx, "news_articles")?,
            pretrain_docs: count(ctx, "pretrain_docs")?,
            web_pairs: count(ctx, "web_pairs")?,
        };
        // Generation is quick and not resumable: a killed run's leftovers are discarded.
        let tmp = ctx.work_dir().join("world");
        if tmp.exists() {
            crate::store::fsutil::remove_all(&tmp)
                .with_context(|| format!("removing {}", tmp.display()))?;
        }
        let progress = ctx.progress().clone();
        progress.set_message("generating");
        let mut started = false;
        let report = generate(&cfg, ctx.seed, &tmp, &mut |done, total| {
            if !started {
                progress.start(total as u64, "items");
                started = true;
            }
            progress.set_position(done as u64);
        })?;

        io::move_path(&tmp.join("whos_waldo"), ctx.output("whos_waldo")?)?;
        io::move_path(&tmp.join("waldo_wenda"), ctx.output("waldo_wenda")?)?;
        io::move_path(&tmp.join("truth/truth.jsonl"), ctx.output("truth")?)?;
        io::move_path(&tmp.join("web"), ctx.output("web")?)?;
        let news = to_corpus(&tmp.join("news/cc_news.jsonl"), ctx.output("news")?, "news")?;
        let pre = to_corpus(
            &tmp.join("pretrain/corpus.jsonl"),
            ctx.output("pretrain")?,
            "doc",
        )?;
        let _ = crate::store::fsutil::remove_all(&tmp);

        let r = &report;
        for (name, v) in [
            ("items", r.items),
            ("train_items", r.train_items),
            ("val_items", r.val_items),
            ("test_split_items", r.test_split_items),
            ("items_ww", r.test_items),
            ("items_cc", r.cc_items),
            ("items_coco", r.coco_items),
            ("single_person_items", r.single_person_items),
            ("bystander_items", r.bystander_items),
            ("interaction_types", r.interaction_types),
            ("verbs", r.verbs),
            (
                "captions_stating_interaction",
                r.captions_stating_interaction,
            ),
            ("captions_silent", r.captions_silent),
            ("captions_unrelated_action", r.captions_unrelated_action),
            ("news_articles", news),
            ("news_lines", r.news_lines),
            ("news_caption_lines", r.news_caption_lines),
            (
                "news_interaction_caption_lines",
                r.news_interaction_caption_lines,
            ),
            ("pretrain_docs", pre),
            ("pretrain_chars", r.pretrain_chars),
            ("web_pairs", r.web_pairs),
            ("labels_used", r.label_counts.len()),
        ] {
            ctx.figure(name, v as f64);
        }
        ctx.figure(
            "most_frequent_label_test_share",
            r.most_frequent_label_test_share,
        );
        let mut log = StageLog::open(ctx);
        log.line(format!(
            "toy world report:\n{}",
            serde_json::to_string_pretty(&report)?
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Value;
    use crate::stages::io::testing::run_kind;

    #[test]
    fn writes_every_output_in_its_format() {
        let dir = tempfile::tempdir().unwrap();
        let params = [
            ("items", Value::Int(60)),
            ("test_items", Value::Int(10)),
            ("news_articles", Value::Int(8)),
            ("pretrain_docs", Value::Int(5)),
            ("web_pairs", Value::Int(4)),
        ];
        let (r, figures, out) = run_kind(&ToyWorld, dir.path(), &params, &[]);
        r.unwrap();
        assert!(out["whos_waldo"].join("splits/test.txt").is_file());
        assert!(out["waldo_wenda"].join("waldo_wenda.csv").is_file());
        let news: Vec<Doc> = io::read_jsonl(&out["news"]).unwrap();
        assert_eq!(news.len(), 8);
        assert_eq!(news[0].id, "news-000000");
        let pre: Vec<Doc> = io::read_jsonl(&out["pretrain"]).unwrap();
        assert_eq!(pre.len(), 5);
        let truth: Vec<io::TruthRecord> = io::read_jsonl(&out["truth"]).unwrap();
        assert_eq!(truth.len(), 60 + 13 + 10);
        assert_eq!(figures["items"], 60.0);
        assert_eq!(figures["items_cc"], 13.0);
        assert!(figures["interaction_types"] >= 20.0);
        let web: Vec<io::TableItem> = io::read_jsonl(&out["web"].join("items.jsonl")).unwrap();
        assert_eq!(web.len(), 4);
        assert!(out["web"].join(&web[0].image).is_file());
        assert!(!dir.path().join("work/world").exists());
    }
}
