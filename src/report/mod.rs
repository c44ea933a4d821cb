//! The run report: one self-contained static page (`index.html`, CSS and scripts inline,
//! images as files beside it) that works offline, straight from the artifact store.
//!
//! [`render`] turns what the `report` stage read into the page and the diversity numbers;
//! it does no IO, so its bytes depend on its inputs alone (the report is an artifact like
//! any other: same inputs, same digest). The one thing that is not content, the state and
//! duration of each stage in the latest run, is written by `hhi run` beside the store's
//! runs ([`run`]) and loaded by the page from the store it lies in.

pub mod html;
pub mod run;
pub mod svg;

use crate::text::diversity::{self, Counts};
use crate::text::eval;
use anyhow::Context;
use html::{count, esc, num, pct};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use svg::{Axes, Bar, PALETTE, Series};

/// metrics.json: table (`model`, `most_frequent`, `chance`) → metric → `@k` → source → value.
pub type Metrics = BTreeMap<String, eval::Table>;

/// One test item of the prediction grid.
pub struct Card {
    pub source: String,
    pub id: String,
    pub label: String,
    pub caption: String,
    /// The image's path inside the report folder, when it has one.
    pub image: Option<String>,
    /// Beams in rank order: text and score (sum of log-probabilities) when given.
    pub beams: Vec<(String, Option<f32>)>,
}

/// A funnel: how many items were left after each step, the first being the input.
pub struct Funnel {
    pub name: String,
    pub steps: Vec<(String, usize)>,
}

pub struct Curve {
    pub name: String,
    /// (step, loss)
    pub points: Vec<(f64, f64)>,
}

/// A caption and what the method made of it: a synthetic pair (interaction, and its `_`
/// label once filtered) or a pseudo-label (with its sample weight).
pub struct Sample {
    pub caption: String,
    pub text: String,
    pub note: String,
}

/// Everything a report can show; each part is optional (`None` or empty: the section says
/// which input would fill it).
#[derive(Default)]
pub struct ReportData {
    pub title: String,
    pub metrics: Option<Metrics>,
    /// The grid's cards (possibly capped) and the number of test items.
    pub cards: Option<(Vec<Card>, usize)>,
    /// The top-1 prediction of every test item (not capped), for the diversity analysis.
    pub top1: Option<Vec<String>>,
    pub test_labels: Option<Vec<String>>,
    pub curves: Vec<Curve>,
    pub funnels: Vec<Funnel>,
    /// Synthetic pairs: all their labels (or interactions), and a sample to show.
    pub synthetic: Option<(Vec<String>, Vec<Sample>)>,
    /// Pseudo-labels: all of them, and a sample to show.
    pub pseudo_labels: Option<(Vec<String>, Vec<Sample>)>,
}

/// Reads evaluate's `metrics.json` (the file, or a folder holding it).
pub fn read_metrics(path: &Path) -> anyhow::Result<Metrics> {
    let file = if path.is_dir() {
        path.join("metrics.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading the metrics {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not evaluate's metrics.json (table → metric → @k → source → value)",
            file.display()
        )
    })
}

pub struct Rendered {
    pub html: String,
    /// diversity.json: the numbers of the diversity and synthetic-data sections.
    pub diversity: serde_json::Value,
}

/// The sections, in page order: (id, heading). The browser test checks every one.
pub const SECTIONS: [(&str, &str); 8] = [
    ("metrics", "Metrics"),
    ("predictions", "Predictions"),
    ("curves", "Training curves"),
    ("funnels", "Filter funnels"),
    ("samples", "Samples"),
    ("diversity", "Diversity"),
    ("synthetic", "Synthetic-data quality"),
    ("pipeline", "Pipeline"),
];

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("page.js");
/// Runs before anything else so that every later error (a failed image, an exception) is
/// counted on the page, where a browser test (and a reader) can see it.
const ERROR_CAPTURE: &str = r#"window.hhiErrors=[];function hhiError(m){window.hhiErrors.push(m);document.documentElement.setAttribute('data-errors',String(window.hhiErrors.length));var l=document.getElementById('errors');if(l){l.hidden=false;l.textContent='Page errors: '+window.hhiErrors.join(' · ');}}
window.addEventListener('error',function(e){var t=e.target;if(t&&t!==window&&(t.src||t.href)){if(t.hasAttribute&&t.hasAttribute('data-optional'))return;hhiError('failed to load '+(t.src||t.href));}else{hhiError(String(e.message));}},true);
(function(){var ce=console.error;console.error=function(){hhiError(Array.prototype.join.call(arguments,' '));ce.apply(console,arguments);};})();"#;

pub fn render(d: &ReportData) -> Rendered {
    let mut body = String::new();
    let mut div = serde_json::Map::new();
    let title = if d.title.is_empty() {
        "hhi report"
    } else {
        &d.title
    };
    let _ = write!(
        body,
        r#"<header><h1>{}</h1><nav>{}</nav><p id="errors" class="errors" hidden></p></header>"#,
        esc(title),
        SECTIONS
            .iter()
            .map(|(id, h)| format!(r##"<a href="#{id}">{h}</a>"##))
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (id, heading) in SECTIONS {
        let _ = write!(body, r#"<section id="{id}"><h2>{heading}</h2>"#);
        match id {
            "metrics" => metrics_section(&mut body, d),
            "predictions" => grid_section(&mut body, d),
            "curves" => curves_section(&mut body, d),
            "funnels" => funnels_section(&mut body, d),
            "samples" => samples_section(&mut body, d),
            "diversity" => diversity_section(&mut body, d, &mut div),
            "synthetic" => synthetic_section(&mut body, d, &mut div),
            _ => body.push_str(
                r#"<p class="note">Each stage of the latest <code>hhi run</code> that led here: its state, how long it took and the digests of its outputs (what <code>hhi audit</code> checks).</p><div id="pipeline-body"><p class="absent">Loading the run's facts…</p></div>"#,
            ),
        }
        body.push_str("</section>");
    }
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><script>{ERROR_CAPTURE}</script><style>{STYLE}</style></head><body>{body}<script>{SCRIPT}</script></body></html>\n",
        esc(title)
    );
    Rendered {
        html,
        diversity: serde_json::Value::Object(div),
    }
}

fn absent(out: &mut String, what: &str) {
    let _ = write!(out, r#"<p class="absent">{what}</p>"#);
}

fn metric_name(m: &str) -> &str {
    match m {
        "label_match" => "label match",
        "verb_match" => "verb match",
        "verb_sim" => "verb similarity",
        "nli_pe" => "NLI p<sub>e</sub> ↑",
        "nli_pc" => "NLI p<sub>c</sub> ↓",
        "bleurt" => "BLEURT",
        other => other,
    }
}

fn metrics_section(out: &mut String, d: &ReportData) {
    let Some(m) = &d.metrics else {
        return absent(
            out,
            r#"No metrics: give the stage <code>metrics = "evaluate.metrics"</code>."#,
        );
    };
    let Some(model) = m.get("model") else {
        return absent(out, "metrics.json has no <code>model</code> table.");
    };
    out.push_str(r#"<p class="note">Each cell: the model, then the most-frequent-label baseline (mf) and chance (ch) on the same items. @k is the best of the first k beams, averaged per source; overall is the mean of the source means.</p>"#);
    let sources: Vec<&String> = {
        let mut s: Vec<&String> = model
            .values()
            .flat_map(|by_k| by_k.values().flat_map(|row| row.keys()))
            .filter(|s| s.as_str() != eval::OVERALL)
            .collect();
        s.sort();
        s.dedup();
        s
    };
    out.push_str(r#"<table class="metrics"><thead><tr><th>metric</th><th>k</th>"#);
    for s in &sources {
        let _ = write!(out, "<th>{}</th>", esc(s));
    }
    out.push_str("<th>overall</th></tr></thead><tbody>");
    let ordered: Vec<&str> = eval::METRICS
        .iter()
        .copied()
        .filter(|k| model.contains_key(*k))
        .collect();
    for metric in ordered {
        let by_k = &model[metric];
        let mut ks: Vec<&String> = by_k.keys().collect();
        ks.sort_by_key(|k| k.trim_start_matches('@').parse::<usize>().unwrap_or(0));
        for (i, k) in ks.iter().enumerate() {
            out.push_str("<tr>");
            if i == 0 {
                let _ = write!(
                    out,
                    r#"<th rowspan="{}">{}</th>"#,
                    ks.len(),
                    metric_name(metric)
                );
            }
            let _ = write!(out, "<td>{}</td>", esc(k));
            let cols = sources.iter().map(|s| s.as_str()).chain([eval::OVERALL]);
            for src in cols {
                let get = |table: &str| {
                    m.get(table)
                        .and_then(|t| t.get(metric))
                        .and_then(|b| b.get(*k))
                        .and_then(|r| r.get(src))
                        .copied()
                };
                let v = get("model").map(num).unwrap_or_else(|| "–".into());
                let base: Vec<String> = [("mf", "most_frequent"), ("ch", "chance")]
                    .iter()
                    .filter_map(|(short, t)| get(t).map(|x| format!("{short} {}", num(x))))
                    .collect();
                let _ = write!(
                    out,
                    r#"<td><b>{v}</b><span class="base">{}</span></td>"#,
                    base.join(" · ")
                );
            }
            out.push_str("</tr>");
        }
    }
    out.push_str("</tbody></table>");
}

fn grid_section(out: &mut String, d: &ReportData) {
    let Some((cards, total)) = &d.cards else {
        return absent(
            out,
            r#"No predictions: give the stage <code>predictions = "predict.predictions"</code> and <code>testset</code>."#,
        );
    };
    let wrong = cards
        .iter()
        .filter(|c| !c.beams.first().is_some_and(|b| verb_ok(&b.0, &c.label)))
        .count();
    let mut sources: Vec<&str> = cards.iter().map(|c| c.source.as_str()).collect();
    sources.sort();
    sources.dedup();
    let _ = write!(
        out,
        r#"<p class="note">Ground truth above the top-5 beams (score = sum of log-probabilities). ✓ marks a beam whose verb matches the ground truth; a bold beam matches it exactly. A card is wrong when its top beam's verb does not match: {} of {} shown.{}</p>"#,
        count(wrong),
        count(cards.len()),
        if cards.len() < *total {
            format!(
                " The grid shows the first {} of {} test items (parameter <code>max_cards</code>).",
                count(cards.len()),
                count(*total)
            )
        } else {
            String::new()
        }
    );
    out.push_str(r#"<div class="controls"><label><input type="checkbox" id="wrong-only"> wrong only</label> <label>source <select id="source"><option value="">all</option>"#);
    for s in &sources {
        let _ = write!(out, r#"<option value="{0}">{0}</option>"#, esc(s));
    }
    out.push_str(r#"</select></label> <span id="shown"></span></div><div id="grid">"#);
    for c in cards {
        let ok = c.beams.first().is_some_and(|b| verb_ok(&b.0, &c.label));
        let _ = write!(
            out,
            r#"<div class="card {}" data-source="{}">"#,
            if ok { "right" } else { "wrong" },
            esc(&c.source)
        );
        match &c.image {
            Some(img) => {
                let _ = write!(
                    out,
                    r#"<img src="{}" alt="{} {}" loading="lazy" width="160" height="160">"#,
                    esc(img),
                    esc(&c.source),
                    esc(&c.id)
                );
            }
            None => out.push_str(r#"<div class="noimg">no image</div>"#),
        }
        let _ = write!(
            out,
            r#"<div class="id">{} · {}</div><div class="gt">{}</div><div class="cap">{}</div><ol>"#,
            esc(&c.source),
            esc(&c.id),
            esc(&c.label),
            esc(&c.caption)
        );
        for (text, score) in c.beams.iter().take(5) {
            let exact = eval::label_match(text, &eval::reference(&c.label));
            let verb = verb_ok(text, &c.label);
            let _ = write!(
                out,
                r#"<li class="{}">{}{}{}</li>"#,
                if exact {
                    "exact"
                } else if verb {
                    "verb"
                } else {
                    "miss"
                },
                if verb { "✓ " } else { "" },
                esc(text),
                score
                    .map(|s| format!(r#" <span class="sc">{s:.2}</span>"#))
                    .unwrap_or_default()
            );
        }
        out.push_str("</ol></div>");
    }
    out.push_str("</div>");
}

fn verb_ok(pred: &str, label: &str) -> bool {
    eval::verb_match(pred, &eval::reference(label))
}

/// At most `n` points, evenly spaced, the last kept (an SVG of every step of a long run
/// would weigh megabytes and look the same).
fn thin(points: &[(f64, f64)], n: usize) -> Vec<(f64, f64)> {
    if points.len() <= n || n < 2 {
        return points.to_vec();
    }
    let last = points.len() - 1;
    (0..n).map(|i| points[i * last / (n - 1)]).collect()
}

/// A trailing moving average over `w` points.
fn smooth(points: &[(f64, f64)], w: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len());
    let mut sum = 0.0;
    for (i, &(x, y)) in points.iter().enumerate() {
        sum += y;
        if i >= w {
            sum -= points[i - w].1;
        }
        out.push((x, sum / (i + 1).min(w) as f64));
    }
    out
}

fn curves_section(out: &mut String, d: &ReportData) {
    if d.curves.is_empty() {
        return absent(
            out,
            r#"No training curves: give the stage <code>curves = { captioner = "captioner.curve", … }</code>."#,
        );
    }
    out.push_str(r#"<div class="charts">"#);
    for c in &d.curves {
        let w = (c.points.len() / 50).max(1);
        let last = c.points.last().map(|p| p.1).unwrap_or(f64::NAN);
        let mut series = vec![Series {
            name: "loss",
            points: thin(&c.points, 400),
            color: "#9ecae1",
            width: 1.0,
            dots: c.points.len() < 30,
        }];
        if w > 1 {
            series.push(Series {
                name: "moving average",
                points: thin(&smooth(&c.points, w), 400),
                color: PALETTE[0],
                width: 2.0,
                dots: false,
            });
        }
        let title = format!(
            "{} — {} steps, last loss {}",
            c.name,
            count(c.points.len()),
            num(last)
        );
        out.push_str(&svg::line_chart(
            &title,
            &series,
            &Axes {
                x_label: "step",
                y_label: "loss",
                ..Axes::default()
            },
        ));
    }
    out.push_str("</div>");
}

fn funnels_section(out: &mut String, d: &ReportData) {
    if d.funnels.is_empty() {
        return absent(
            out,
            r#"No funnels: give the stage <code>filter_stats = "filter.stats"</code> (and the other stats ports)."#,
        );
    }
    out.push_str(r#"<div class="charts">"#);
    for f in &d.funnels {
        let first = f.steps.first().map(|s| s.1).unwrap_or(0);
        let mut prev = first;
        let bars: Vec<Bar> = f
            .steps
            .iter()
            .enumerate()
            .map(|(i, (name, left))| {
                let note = if i == 0 {
                    count(*left)
                } else {
                    let removed = prev.saturating_sub(*left);
                    format!(
                        "{} (−{}, {} of input)",
                        count(*left),
                        count(removed),
                        if first > 0 {
                            pct(*left as f64 / first as f64)
                        } else {
                            "–".into()
                        }
                    )
                };
                prev = *left;
                Bar {
                    label: name.clone(),
                    values: vec![*left as f64],
                    note,
                }
            })
            .collect();
        out.push_str(&svg::bar_chart(&f.name, &["left"], &bars));
    }
    out.push_str("</div>");
}

fn sample_table(out: &mut String, title: &str, head: [&str; 3], rows: &[Sample]) {
    let _ = write!(
        out,
        r#"<h3>{}</h3><table class="samples"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>"#,
        esc(title),
        head[0],
        head[1],
        head[2]
    );
    for s in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>→ {}</td><td>{}</td></tr>",
            esc(&s.caption),
            esc(&s.text),
            esc(&s.note)
        );
    }
    out.push_str("</tbody></table>");
}

fn samples_section(out: &mut String, d: &ReportData) {
    if d.synthetic.is_none() && d.pseudo_labels.is_none() {
        return absent(
            out,
            r#"No samples: give the stage <code>pairs = "filter.pairs"</code> and <code>labels = "postprocess.labels"</code>."#,
        );
    }
    let tables = [
        (
            &d.synthetic,
            "Synthetic caption → interaction pairs",
            ["synthetic caption", "interaction", "label"],
            "No synthetic pairs given (<code>pairs</code>).",
        ),
        (
            &d.pseudo_labels,
            "Pseudo-labels beside their captions",
            ["news caption", "pseudo-label", "weight"],
            "No pseudo-labels given (<code>labels</code>).",
        ),
    ];
    for (data, title, head, missing) in tables {
        match data {
            Some((all, rows)) => sample_table(
                out,
                &format!("{title} ({} of {})", rows.len(), count(all.len())),
                head,
                rows,
            ),
            None => absent(out, missing),
        }
    }
}

fn diversity_row(out: &mut String, name: &str, d: &diversity::Diversity) {
    let _ = write!(
        out,
        "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
        esc(name),
        count(d.items),
        count(d.distinct),
        count(d.distinct_verbs),
        d.entropy_bits,
        d.verb_entropy_bits,
        pct(d.top_share),
        count(d.singletons)
    );
}

fn diversity_section(
    out: &mut String,
    d: &ReportData,
    div: &mut serde_json::Map<String, serde_json::Value>,
) {
    let lists: Vec<(&str, &Vec<String>)> = [
        ("pseudo-labels", d.pseudo_labels.as_ref().map(|p| &p.0)),
        ("top-1 predictions", d.top1.as_ref()),
        ("test labels", d.test_labels.as_ref()),
    ]
    .into_iter()
    .filter_map(|(n, l)| l.map(|l| (n, l)))
    .collect();
    if d.top1.is_none() {
        return absent(
            out,
            r#"No predictions to analyse: give the stage <code>predictions</code> and <code>testset</code> (and <code>labels</code> to compare)."#,
        );
    }
    out.push_str(r#"<p class="note">Does the captioner keep the pseudo-labels' heavy tail or collapse onto the frequent labels? Entropy in bits; top share = the items taken by the single most frequent label; singletons = labels seen once.</p><table class="div"><thead><tr><th></th><th>items</th><th>distinct</th><th>distinct verbs</th><th>entropy</th><th>verb entropy</th><th>top share</th><th>singletons</th></tr></thead><tbody>"#);
    let mut series = Vec::new();
    for (i, (name, labels)) in lists.iter().enumerate() {
        let stats = diversity::diversity(labels.iter().map(|s| s.as_str()));
        diversity_row(out, name, &stats);
        div.insert(
            name.replace(['-', ' '], "_"),
            serde_json::to_value(&stats).unwrap_or_default(),
        );
        let counts = diversity::label_counts(labels.iter().map(|s| s.as_str()));
        let ranked = diversity::ranked(&counts);
        series.push(Series {
            name,
            points: ranked
                .iter()
                .enumerate()
                .map(|(r, (_, n))| ((r + 1) as f64, *n as f64 / stats.items.max(1) as f64))
                .collect(),
            color: PALETTE[i % PALETTE.len()],
            width: 2.0,
            dots: ranked.len() < 40,
        });
    }
    out.push_str("</tbody></table>");
    if let (Some((pl, _)), Some(top1)) = (&d.pseudo_labels, &d.top1) {
        let pc = diversity::label_counts(pl.iter().map(|s| s.as_str()));
        let tc = diversity::label_counts(top1.iter().map(|s| s.as_str()));
        let predicted = pc.keys().filter(|k| tc.contains_key(*k)).count();
        let share = if pc.is_empty() {
            0.0
        } else {
            predicted as f64 / pc.len() as f64
        };
        let novel = tc.keys().filter(|k| !pc.contains_key(*k)).count();
        let _ = write!(
            out,
            r#"<p>{} of the {} distinct pseudo-labels ({}) are some item's top-1 prediction; {} distinct top-1 predictions are not among the pseudo-labels.</p>"#,
            count(predicted),
            count(pc.len()),
            pct(share),
            count(novel)
        );
        div.insert("pseudo_labels_predicted_share".into(), json!(share));
        div.insert("predictions_not_in_pseudo_labels".into(), json!(novel));
    }
    out.push_str(&svg::line_chart(
        "Rank-frequency (log-log): share of items per label, by rank",
        &series,
        &Axes {
            x_label: "rank",
            y_label: "share of items",
            log_x: true,
            log_y: true,
        },
    ));
}

fn synthetic_section(
    out: &mut String,
    d: &ReportData,
    div: &mut serde_json::Map<String, serde_json::Value>,
) {
    let Some(test) = &d.test_labels else {
        return absent(
            out,
            r#"No test labels to compare with: give the stage <code>testset</code> (and <code>pairs</code>, <code>labels</code>)."#,
        );
    };
    let test_refs: Vec<String> = test.iter().map(|l| eval::reference(l)).collect();
    let tv = diversity::verb_counts(test_refs.iter().map(|s| s.as_str()));
    let dists: Vec<(&str, Counts)> = [
        ("synthetic interactions", d.synthetic.as_ref().map(|s| &s.0)),
        ("pseudo-labels", d.pseudo_labels.as_ref().map(|s| &s.0)),
    ]
    .into_iter()
    .filter_map(|(n, l)| l.map(|l| (n, diversity::verb_counts(l.iter().map(|s| s.as_str())))))
    .collect();
    if dists.is_empty() {
        return absent(
            out,
            r#"No training data to compare: give the stage <code>pairs</code> and/or <code>labels</code>."#,
        );
    }
    out.push_str(r#"<p class="note">The verbs of the synthetic interactions (stages 2–4) and of the pseudo-labels (stages 6–7) against the verbs of the test labels. Coverage: the share of test items whose verb occurs in the training data at all; JS: Jensen–Shannon divergence from the test verbs in bits (0 = the same distribution, 1 = disjoint). The chart lists the test verbs by frequency, then the training data's frequent verbs that the test set lacks.</p><table class="div"><thead><tr><th></th><th>items</th><th>distinct verbs</th><th>test coverage</th><th>JS divergence</th></tr></thead><tbody>"#);
    let mut fits = serde_json::Map::new();
    for (name, c) in &dists {
        let fit = diversity::verb_fit(c, &tv);
        let _ = write!(
            out,
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td></tr>",
            esc(name),
            count(fit.items),
            count(fit.distinct_verbs),
            pct(fit.test_coverage),
            fit.js_divergence_bits
        );
        fits.insert(
            name.replace(['-', ' '], "_"),
            serde_json::to_value(&fit).unwrap_or_default(),
        );
    }
    out.push_str("</tbody></table>");
    let test_total: usize = tv.values().sum();
    fits.insert("test_items".into(), json!(test_total));
    fits.insert("test_distinct_verbs".into(), json!(tv.len()));
    div.insert("synthetic_quality".into(), serde_json::Value::Object(fits));
    // The test verbs by frequency, then the training data's frequent verbs the test set
    // lacks (what the synthetic data spends its mass on instead).
    let mut verbs: Vec<&str> = diversity::ranked(&tv)
        .into_iter()
        .map(|(v, _)| v)
        .take(30)
        .collect();
    for (_, c) in &dists {
        for (v, _) in diversity::ranked(c).into_iter().take(5) {
            if !tv.contains_key(v) && !verbs.contains(&v) {
                verbs.push(v);
            }
        }
    }
    let mut groups: Vec<&str> = vec!["test labels"];
    groups.extend(dists.iter().map(|(n, _)| *n));
    let share = |c: &Counts, v: &str| {
        let t: usize = c.values().sum();
        if t == 0 {
            0.0
        } else {
            c.get(v).copied().unwrap_or(0) as f64 / t as f64
        }
    };
    let mut per_verb = serde_json::Map::new();
    let bars: Vec<Bar> = verbs
        .iter()
        .map(|v| {
            let mut values = vec![share(&tv, v)];
            values.extend(dists.iter().map(|(_, c)| share(c, v)));
            per_verb.insert(
                v.to_string(),
                json!(
                    groups
                        .iter()
                        .zip(&values)
                        .map(|(g, x)| (g.replace(['-', ' '], "_"), *x))
                        .collect::<BTreeMap<_, _>>()
                ),
            );
            Bar {
                label: v.to_string(),
                note: values
                    .iter()
                    .map(|x| pct(*x))
                    .collect::<Vec<_>>()
                    .join(" · "),
                values,
            }
        })
        .collect();
    div.insert("verb_shares".into(), serde_json::Value::Object(per_verb));
    out.push_str(&svg::bar_chart("Share of items per verb", &groups, &bars));
}
