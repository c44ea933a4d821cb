//! The toy world: a small, deterministic stand-in for Who's Waldo, Waldo and Wenda, CC-News
//! and a pretraining corpus, written in the real formats (see
//! shared/spec/toy-world.md). `generate` is the entry point.
//!
//! Layout under the output folder:
//! - `whos_waldo/<id>/{image.jpg,caption.txt,detections.json,coreferences.json,ground_truth.json}`
//!   and `whos_waldo/splits/{train,val,test}.txt`
//! - `waldo_wenda/waldo_wenda.csv` (`source,id,label,caption,url`) and
//!   `waldo_wenda/images/<id>.jpg` for every row (`ww` rows: a copy of the item's image)
//! - `news/cc_news.jsonl`, `pretrain/corpus.jsonl` (`{"text": ...}` per line)
//! - `truth/truth.jsonl`: the hidden truth, read only by evaluation and diagnostics.

pub mod captions;
pub mod corpus;
pub mod draw;
pub mod figure;
pub mod lexicon;
pub mod raster;
pub mod scenes;
pub mod world;
pub mod write;

use anyhow::{Context, Result, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ToyConfig {
    /// Who's Waldo items (folders), test split included.
    pub items: usize,
    /// Waldo-and-Wenda `ww` rows, taken from the Who's Waldo test split; the benchmark's
    /// `cc` and `coco` rows are 4/3 and 1 times as many, as in the real 300/400/300.
    pub test_items: usize,
    pub image_size: u32,
    pub news_articles: usize,
    pub pretrain_docs: usize,
    /// Image-caption pairs in the web alt-text style (Conceptual Captions and COCO
    /// phrasing) for pretraining CLIP, as OpenAI's CLIP learned from web pairs rather than
    /// from Who's Waldo.
    pub web_pairs: usize,
}

impl Default for ToyConfig {
    fn default() -> Self {
        ToyConfig {
            items: 3000,
            test_items: 300,
            image_size: 64,
            news_articles: 1500,
            pretrain_docs: 4000,
            web_pairs: 6000,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ToyReport {
    pub items: usize,
    pub train_items: usize,
    pub val_items: usize,
    pub test_split_items: usize,
    pub test_items: usize,
    pub cc_items: usize,
    pub coco_items: usize,
    pub single_person_items: usize,
    pub bystander_items: usize,
    pub interaction_types: usize,
    pub verbs: usize,
    pub captions_stating_interaction: usize,
    pub captions_silent: usize,
    pub captions_unrelated_action: usize,
    pub news_articles: usize,
    pub news_lines: usize,
    pub news_caption_lines: usize,
    pub news_interaction_caption_lines: usize,
    pub pretrain_docs: usize,
    pub pretrain_chars: usize,
    pub web_pairs: usize,
    /// Who's Waldo items per true label, most frequent first.
    pub label_counts: Vec<(String, usize)>,
    /// Share of the benchmark's rows whose label is the most frequent training label:
    /// the exact-match score of always predicting it.
    pub most_frequent_label: String,
    pub most_frequent_label_test_share: f64,
}

#[derive(Serialize)]
struct Truth<'a> {
    id: &'a str,
    source: &'a str,
    label: &'a str,
    verb: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    caption_states_interaction: bool,
}

#[derive(Serialize)]
struct WebPair<'a> {
    id: &'a str,
    source: &'a str,
    label: &'a str,
    caption: &'a str,
    image: &'a str,
}

#[derive(Serialize)]
struct Detection {
    bbox: [f32; 4],
    score: f32,
}

#[derive(Serialize)]
struct Text<'a> {
    text: &'a str,
}

/// Independent random streams, so that one part's draws never shift another's.
fn stream(seed: u64, part: u64, index: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream((part << 40) | index);
    r
}

const PART_PLAN: u64 = 1;
const PART_ITEM: u64 = 2;
const PART_SPLIT: u64 = 3;
const PART_BENCH: u64 = 4;
const PART_NEWS: u64 = 5;
const PART_PRETRAIN: u64 = 6;
const PART_WEB: u64 = 7;

const SOLO_SHARE: f64 = 0.03;

fn make_dir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))
}

pub fn generate(
    cfg: &ToyConfig,
    seed: u64,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ToyReport> {
    if cfg.items < 20 {
        bail!("toy world needs at least 20 items, got {}", cfg.items);
    }
    if cfg.test_items == 0 || cfg.test_items * 2 > cfg.items {
        bail!(
            "test_items must be between 1 and half of items ({}), got {}",
            cfg.items / 2,
            cfg.test_items
        );
    }
    if !(16..=1024).contains(&cfg.image_size) {
        bail!(
            "image_size must be between 16 and 1024, got {}",
            cfg.image_size
        );
    }
    if out.exists()
        && std::fs::read_dir(out)
            .with_context(|| format!("cannot read {}", out.display()))?
            .next()
            .is_some()
    {
        bail!(
            "output folder {} is not empty; the toy world is written into an empty folder",
            out.display()
        );
    }
    let size = cfg.image_size;
    let n = size as usize;
    let (n_cc, n_coco) = (cfg.test_items * 4 / 3, cfg.test_items);
    let total = cfg.items + n_cc + n_coco + cfg.news_articles + cfg.pretrain_docs + cfg.web_pairs;
    let mut done = 0usize;
    let mut tick = |done: &mut usize| {
        *done += 1;
        progress(*done, total);
    };

    let ww = out.join("whos_waldo");
    let bench = out.join("waldo_wenda");
    for d in [
        ww.join("splits"),
        bench.join("images"),
        out.join("news"),
        out.join("pretrain"),
        out.join("truth"),
        out.join("web").join("images"),
    ] {
        make_dir(&d)?;
    }
    let width = cfg.items.to_string().len().max(6);
    let ids: Vec<String> = (0..cfg.items).map(|i| format!("{i:0width$}")).collect();
    let weights = world::kind_weights();

    // Each item's type first, so the splits can keep single-person items out of the test set.
    let kinds: Vec<Option<usize>> = (0..cfg.items)
        .map(|i| {
            let mut r = stream(seed, PART_PLAN, i as u64);
            (!r.random_bool(SOLO_SHARE)).then(|| world::sample_weighted(&mut r, &weights))
        })
        .collect();
    let mut order: Vec<usize> = (0..cfg.items).collect();
    let mut r = stream(seed, PART_SPLIT, 0);
    for i in (1..order.len()).rev() {
        order.swap(i, r.random_range(0..=i));
    }
    let n_test_split = cfg.test_items + cfg.items / 20;
    let n_val = cfg.items / 20;
    let mut split = vec![0u8; cfg.items]; // 0 train, 1 val, 2 test
    let mut bench_ww: Vec<usize> = Vec::new();
    let mut n_test = 0;
    for &i in &order {
        if kinds[i].is_some() && n_test < n_test_split {
            split[i] = 2;
            n_test += 1;
            if bench_ww.len() < cfg.test_items {
                bench_ww.push(i);
            }
        }
    }
    if bench_ww.len() < cfg.test_items {
        bail!("too few two-person items for {} test items", cfg.test_items);
    }
    let mut n_val_done = 0;
    for &i in &order {
        if split[i] == 0 && n_val_done < n_val {
            split[i] = 1;
            n_val_done += 1;
        }
    }
    bench_ww.sort_unstable();

    let mut rep = ToyReport {
        items: cfg.items,
        test_items: cfg.test_items,
        cc_items: n_cc,
        coco_items: n_coco,
        interaction_types: world::INTERACTIONS.len(),
        verbs: world::verbs().len(),
        news_articles: cfg.news_articles,
        pretrain_docs: cfg.pretrain_docs,
        ..Default::default()
    };
    let mut truth = String::new();
    let mut captions_of: Vec<String> = vec![String::new(); cfg.items];
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let nz = draw::Nuisance {
        bystander: 0.25,
        occlusion: 0.08,
    };
    for i in 0..cfg.items {
        let mut r = stream(seed, PART_ITEM, i as u64);
        let kind = kinds[i];
        let key = kind.map(|k| world::INTERACTIONS[k].key);
        let img = draw::render(key, size, &mut r, nz);
        let bystander = img.boxes.iter().any(|b| b.role == draw::Role::Bystander);
        let (text, states) = match kind {
            Some(k) => {
                let p = captions::plan(
                    &mut r,
                    k,
                    &captions::PlanOpts::whos_waldo(bystander, img.agent_left),
                );
                if p.states_interaction {
                    rep.captions_stating_interaction += 1;
                } else if p.seed.is_some() {
                    rep.captions_unrelated_action += 1;
                } else {
                    rep.captions_silent += 1;
                }
                (p.text, p.states_interaction)
            }
            None => {
                rep.single_person_items += 1;
                let t = format!(
                    "{{A}}{}{}.",
                    lexicon::pick(
                        &mut r,
                        &[
                            " speaks at a rally",
                            " arrives for the ceremony",
                            " waves to the crowd",
                            " poses for a portrait"
                        ]
                    ),
                    lexicon::place_phrase(&mut r)
                );
                (t, false)
            }
        };
        rep.bystander_items += bystander as usize;
        let filled = captions::fill(&text, &mut |_| "[NAME]".to_string());
        // Detections as a detector lists them: by descending score.
        let mut dets: Vec<(f32, usize)> = img
            .boxes
            .iter()
            .enumerate()
            .map(|(j, b)| {
                let s = match b.role {
                    draw::Role::Bystander => r.random_range(0.6..0.97),
                    _ => r.random_range(0.9..0.999),
                };
                ((s * 1000.0f32).round() / 1000.0, j)
            })
            .collect();
        dets.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let det_json: Vec<Detection> = dets
            .iter()
            .map(|&(score, j)| Detection {
                bbox: img.boxes[j].bbox,
                score,
            })
            .collect();
        let mut gt: BTreeMap<String, usize> = BTreeMap::new();
        for (ci, (slot, _)) in filled.clusters.iter().enumerate() {
            let role = match slot {
                'A' => draw::Role::Agent,
                'B' => draw::Role::Patient,
                'C' => draw::Role::Bystander,
                _ => continue,
            };
            let det = dets.iter().position(|&(_, j)| img.boxes[j].role == role);
            if let Some(d) = det {
                gt.insert(ci.to_string(), d);
            }
        }
        let corefs: Vec<&Vec<[usize; 2]>> = filled.clusters.iter().map(|(_, s)| s).collect();
        let dir = ww.join(&ids[i]);
        make_dir(&dir)?;
        write::write_jpeg(&dir.join("image.jpg"), &img.rgb, n, n)?;
        write::write_text(&dir.join("caption.txt"), &format!("{}\n", filled.text))?;
        write::write_text(
            &dir.join("detections.json"),
            &serde_json::to_string(&det_json)?,
        )?;
        write::write_text(
            &dir.join("coreferences.json"),
            &serde_json::to_string(&corefs)?,
        )?;
        write::write_text(&dir.join("ground_truth.json"), &serde_json::to_string(&gt)?)?;
        let it = kind.map(|k| &world::INTERACTIONS[k]);
        let label = it.map_or("", |t| t.label);
        if it.is_some() {
            *counts.entry(label).or_default() += 1;
        }
        truth.push_str(&write::json_line(&Truth {
            id: &ids[i],
            source: "ww",
            label,
            verb: it.map_or("", |t| t.verb()),
            kind: it.map_or("solo", |t| t.key),
            caption_states_interaction: states,
        })?);
        captions_of[i] = filled.text;
        tick(&mut done);
    }
    for (s, name) in [(0u8, "train"), (1, "val"), (2, "test")] {
        let list: String = (0..cfg.items)
            .filter(|&i| split[i] == s)
            .map(|i| format!("{}\n", ids[i]))
            .collect();
        write::write_text(&ww.join("splits").join(format!("{name}.txt")), &list)?;
    }
    rep.train_items = split.iter().filter(|&&s| s == 0).count();
    rep.val_items = n_val_done;
    rep.test_split_items = n_test;

    // The benchmark.
    let mut csv = write::csv_row(&["source", "id", "label", "caption", "url"]);
    let mut bench_labels: Vec<&str> = Vec::new();
    for &i in &bench_ww {
        let label = kinds[i].map_or("", |k| world::INTERACTIONS[k].label);
        csv.push_str(&write::csv_row(&[
            "ww",
            &ids[i],
            label,
            &captions_of[i],
            "",
        ]));
        bench_labels.push(label);
        // Every benchmark row has its image beside the CSV, the Who's Waldo ones too, so
        // the imported benchmark is self-contained (real `ww` rows have no url either).
        let from = ww.join(&ids[i]).join("image.jpg");
        let to = bench.join("images").join(format!("{}.jpg", ids[i]));
        std::fs::copy(&from, &to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }
    for (j, source) in (0..n_cc)
        .map(|j| (j, "cc"))
        .chain((0..n_coco).map(|j| (j, "coco")))
    {
        let coco = source == "coco";
        let mut r = stream(seed, PART_BENCH, ((coco as u64) << 32) | j as u64);
        let k = world::sample_weighted(&mut r, &weights);
        let it = &world::INTERACTIONS[k];
        let nz = draw::Nuisance {
            bystander: if coco { 0.45 } else { 0.2 },
            occlusion: 0.1,
        };
        let img = draw::render(Some(it.key), size, &mut r, nz);
        let (caption, states) = captions::generic_caption(&mut r, k, coco);
        let id = format!("{source}_{j:06}");
        write::write_jpeg(
            &bench.join("images").join(format!("{id}.jpg")),
            &img.rgb,
            n,
            n,
        )?;
        csv.push_str(&write::csv_row(&[source, &id, it.label, &caption, ""]));
        bench_labels.push(it.label);
        truth.push_str(&write::json_line(&Truth {
            id: &id,
            source,
            label: it.label,
            verb: it.verb(),
            kind: it.key,
            caption_states_interaction: states,
        })?);
        tick(&mut done);
    }
    write::write_text(&bench.join("waldo_wenda.csv"), &csv)?;
    write::write_text(&out.join("truth").join("truth.jsonl"), &truth)?;

    let mut news = String::new();
    for a in 0..cfg.news_articles {
        let mut r = stream(seed, PART_NEWS, a as u64);
        let (text, st) = corpus::news_article(&mut r);
        rep.news_lines += st.lines;
        rep.news_caption_lines += st.caption_lines;
        rep.news_interaction_caption_lines += st.interaction_caption_lines;
        news.push_str(&write::json_line(&Text { text: &text })?);
        tick(&mut done);
    }
    write::write_text(&out.join("news").join("cc_news.jsonl"), &news)?;

    let mut pre = String::new();
    for d in 0..cfg.pretrain_docs {
        let mut r = stream(seed, PART_PRETRAIN, d as u64);
        let text = corpus::pretrain_doc(&mut r);
        rep.pretrain_chars += text.chars().count();
        pre.push_str(&write::json_line(&Text { text: &text })?);
        tick(&mut done);
    }
    write::write_text(&out.join("pretrain").join("corpus.jsonl"), &pre)?;

    // Web image-caption pairs: a Table folder (no labels: web pairs have none).
    let mut web = String::new();
    for j in 0..cfg.web_pairs {
        let mut r = stream(seed, PART_WEB, j as u64);
        let coco = r.random_bool(0.5);
        let k = world::sample_weighted(&mut r, &weights);
        let nz = draw::Nuisance {
            bystander: 0.3,
            occlusion: 0.1,
        };
        let img = draw::render(Some(world::INTERACTIONS[k].key), size, &mut r, nz);
        let (caption, _) = captions::generic_caption(&mut r, k, coco);
        let id = format!("web_{j:06}");
        let image = format!("images/{id}.jpg");
        write::write_jpeg(&out.join("web").join(&image), &img.rgb, n, n)?;
        web.push_str(&write::json_line(&WebPair {
            id: &id,
            source: "web",
            label: "",
            caption: &caption,
            image: &image,
        })?);
        tick(&mut done);
    }
    write::write_text(&out.join("web").join("items.jsonl"), &web)?;
    rep.web_pairs = cfg.web_pairs;

    let mut lc: Vec<(String, usize)> = counts
        .into_iter()
        .map(|(l, c)| (l.to_string(), c))
        .collect();
    lc.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if let Some((top, _)) = lc.first() {
        rep.most_frequent_label = top.clone();
        let hits = bench_labels.iter().filter(|l| **l == top.as_str()).count();
        rep.most_frequent_label_test_share = hits as f64 / bench_labels.len().max(1) as f64;
    }
    rep.label_counts = lc;
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> ToyConfig {
        ToyConfig {
            items: 120,
            test_items: 20,
            image_size: 64,
            news_articles: 20,
            pretrain_docs: 30,
            web_pairs: 10,
        }
    }

    fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        out
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("toy-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let (a, b, c) = (tmp("a"), tmp("b"), tmp("c"));
        let ra = generate(&small(), 11, &a, &mut |_, _| {}).unwrap();
        let rb = generate(&small(), 11, &b, &mut |_, _| {}).unwrap();
        generate(&small(), 12, &c, &mut |_, _| {}).unwrap();
        assert_eq!(ra, rb);
        let (ta, tb, tc) = (tree(&a), tree(&b), tree(&c));
        assert_eq!(ta.len(), tb.len());
        assert!(ta == tb, "trees differ");
        assert!(ta != tc);
        assert!(
            generate(&small(), 11, &a, &mut |_, _| {}).is_err(),
            "a non-empty folder is refused"
        );
        for p in [a, b, c] {
            let _ = std::fs::remove_dir_all(p);
        }
    }

    #[test]
    fn output_is_in_the_real_formats() {
        let out = tmp("fmt");
        let mut last = (0, 0);
        let rep = generate(&small(), 3, &out, &mut |d, t| last = (d, t)).unwrap();
        assert_eq!(last.0, last.1);
        // Images decode at the configured size.
        let id = "000007";
        let jpg = std::fs::read(out.join("whos_waldo").join(id).join("image.jpg")).unwrap();
        let d = mozjpeg::Decompress::new_mem(&jpg).unwrap();
        assert_eq!((d.width(), d.height()), (64, 64));
        let mut s = d.rgb().unwrap();
        let px: Vec<[u8; 3]> = s.read_scanlines().unwrap();
        assert_eq!(px.len(), 64 * 64);
        // Coreference spans point at [NAME] tokens; ground truth points at detections.
        let dir = out.join("whos_waldo").join(id);
        let cap = std::fs::read_to_string(dir.join("caption.txt")).unwrap();
        let corefs: Vec<Vec<[usize; 2]>> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("coreferences.json")).unwrap())
                .unwrap();
        for s in corefs.iter().flatten() {
            assert_eq!(&cap[s[0]..s[1]], "[NAME]");
        }
        let dets: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("detections.json")).unwrap())
                .unwrap();
        let gt: BTreeMap<String, usize> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("ground_truth.json")).unwrap())
                .unwrap();
        assert!(gt.values().all(|&v| v < dets.len()));
        assert!(
            dets.iter()
                .all(|d| d["bbox"].as_array().map(|a| a.len()) == Some(4))
        );
        // The benchmark CSV parses back, with strict labels and images for cc/coco rows.
        let csv = std::fs::read_to_string(out.join("waldo_wenda").join("waldo_wenda.csv")).unwrap();
        let rows = write::parse_csv(&csv).unwrap();
        assert_eq!(rows[0], ["source", "id", "label", "caption", "url"]);
        assert_eq!(
            rows.len() - 1,
            rep.test_items + rep.cc_items + rep.coco_items
        );
        let test: Vec<String> = std::fs::read_to_string(out.join("whos_waldo/splits/test.txt"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        for r in &rows[1..] {
            assert_eq!(r.len(), 5);
            assert!(world::is_strict_label(&r[2]), "{}", r[2]);
            if r[0] == "ww" {
                assert!(test.contains(&r[1]));
            }
            assert!(
                out.join("waldo_wenda/images")
                    .join(format!("{}.jpg", r[1]))
                    .exists()
            );
        }
        // JSONL files are one object with a text field per line.
        for f in ["news/cc_news.jsonl", "pretrain/corpus.jsonl"] {
            for l in std::fs::read_to_string(out.join(f)).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert!(v["text"].is_string());
            }
        }
        let truth = std::fs::read_to_string(out.join("truth/truth.jsonl")).unwrap();
        assert_eq!(
            truth.lines().count(),
            rep.items + rep.cc_items + rep.coco_items
        );
        let _ = std::fs::remove_dir_all(out);
    }

    #[test]
    fn bad_configs_are_errors() {
        let out = tmp("bad");
        let mut c = small();
        c.test_items = 100;
        assert!(generate(&c, 1, &out, &mut |_, _| {}).is_err());
        let mut c = small();
        c.image_size = 0;
        assert!(generate(&c, 1, &out, &mut |_, _| {}).is_err());
        let _ = std::fs::remove_dir_all(out);
    }
}
