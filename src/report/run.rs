//! The run's facts beside a report: after `hhi run`, each report the pipeline produced gets
//! `runs/reports/<its digest>.js` in the store, holding the pipeline section (a drawing of
//! the DAG and a table: each stage's state, duration, cache key and output digests). They
//! are facts of that run, not content: two fresh stores would time their stages
//! differently, and the report's own bytes must not depend on that.

use super::html::{count, esc};
use crate::pipeline::Pipeline;
use crate::scheduler::{Outcome, RunReport, fmt_secs};
use crate::store::Store;
use crate::store::record::Record;
use crate::types::ArtifactType;
use anyhow::Context;
use std::fmt::Write;
use std::path::PathBuf;

/// One stage as the latest run left it.
pub struct StageFact {
    pub name: String,
    pub kind: String,
    /// `ran`, `fresh`, `failed`, `skipped` or `not_selected`.
    pub state: &'static str,
    /// This run's time for a stage that ran; the recorded time of a fresh one.
    pub seconds: Option<f64>,
    pub key: Option<String>,
    /// (port, digest, size in bytes)
    pub outputs: Vec<(String, String, u64)>,
    /// Indices of the stages it reads.
    pub upstream: Vec<usize>,
}

pub fn facts(pipeline: &Pipeline, report: &RunReport, store: &Store) -> Vec<StageFact> {
    pipeline
        .stages
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let sr = report.stages.iter().find(|s| s.name == st.name);
            let rec: Option<Record> = sr
                .and_then(|s| s.key)
                .and_then(|k| store.read_record(&k).ok().flatten());
            let (state, seconds) = match sr.map(|s| &s.outcome) {
                Some(Outcome::Ran { seconds }) => ("ran", Some(*seconds)),
                Some(Outcome::Fresh) => ("fresh", rec.as_ref().map(|r| r.duration_s)),
                Some(Outcome::Fetched { seconds }) => ("remote", Some(*seconds)),
                Some(Outcome::Failed { .. }) => ("failed", None),
                Some(Outcome::Skipped { .. }) => ("skipped", None),
                Some(Outcome::NotSelected) | None => ("not_selected", None),
            };
            let outputs = rec
                .as_ref()
                .map(|r| {
                    r.outputs
                        .iter()
                        .map(|(p, o)| (p.clone(), o.digest.hex(), o.size))
                        .collect()
                })
                .unwrap_or_default();
            StageFact {
                name: st.name.clone(),
                kind: st.kind.name().to_string(),
                state,
                seconds,
                key: sr.and_then(|s| s.key).map(|k| k.hex()),
                outputs,
                upstream: pipeline.dag.upstream(i),
            }
        })
        .collect()
}

fn fill(state: &str) -> &'static str {
    match state {
        "ran" => "#d9f0e3",
        "fresh" => "#dceaf7",
        "failed" | "skipped" => "#f8d7d0",
        _ => "#eeeeee",
    }
}

/// The DAG drawn left to right: a stage's column is the length of the longest path that
/// leads to it, so every edge points right.
pub fn dag_svg(facts: &[StageFact]) -> String {
    let mut layer = vec![0usize; facts.len()];
    // Facts are in file order, which need not be topological: relax until stable (a DAG
    // settles within as many passes as it has stages).
    for _ in 0..facts.len() {
        let mut changed = false;
        for i in 0..facts.len() {
            let l = facts[i]
                .upstream
                .iter()
                .map(|&u| layer[u] + 1)
                .max()
                .unwrap_or(0);
            if l != layer[i] {
                layer[i] = l;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let (bw, bh, dx, dy) = (150.0, 46.0, 190.0, 58.0);
    let mut row = vec![0usize; facts.len()];
    let mut used = std::collections::BTreeMap::<usize, usize>::new();
    for i in 0..facts.len() {
        let r = used.entry(layer[i]).or_default();
        row[i] = *r;
        *r += 1;
    }
    let pos = |i: usize| (10.0 + dx * layer[i] as f64, 10.0 + dy * row[i] as f64);
    let w = 10.0 + dx * (layer.iter().max().copied().unwrap_or(0) + 1) as f64;
    let h = 10.0 + dy * used.values().max().copied().unwrap_or(1) as f64;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0} {h:.0}" width="{w:.0}" height="{h:.0}" role="img" aria-label="pipeline graph">"#
    );
    for (i, f) in facts.iter().enumerate() {
        let (x2, y2) = pos(i);
        for &u in &f.upstream {
            let (x1, y1) = pos(u);
            let (sx, sy, ex, ey) = (x1 + bw, y1 + bh / 2.0, x2, y2 + bh / 2.0);
            let _ = write!(
                out,
                r##"<path d="M{sx:.0},{sy:.0} C{:.0},{sy:.0} {:.0},{ey:.0} {ex:.0},{ey:.0}" fill="none" stroke="#999"/>"##,
                sx + 20.0,
                ex - 20.0
            );
        }
    }
    for (i, f) in facts.iter().enumerate() {
        let (x, y) = pos(i);
        let time = f.seconds.map(fmt_secs).unwrap_or_default();
        let _ = write!(
            out,
            r##"<g><title>{name}: {kind}, {state} {time}</title><rect x="{x:.0}" y="{y:.0}" width="{bw}" height="{bh}" rx="5" fill="{}" stroke="#888"/><text x="{:.0}" y="{:.0}" font-weight="600">{name}</text><text x="{:.0}" y="{:.0}">{kind}</text><text x="{:.0}" y="{:.0}" class="st-{state}">{state} {time}</text></g>"##,
            fill(f.state),
            x + 6.0,
            y + 14.0,
            x + 6.0,
            y + 27.0,
            x + 6.0,
            y + 40.0,
            name = esc(&f.name),
            kind = esc(&f.kind),
            state = f.state,
        );
    }
    out.push_str("</svg>");
    out
}

/// The pipeline section's HTML: the drawing and the table.
pub fn pipeline_html(pipeline: &str, finished: &str, facts: &[StageFact]) -> String {
    let mut out = format!(
        r#"<p>Pipeline <code>{}</code>, latest run finished {}.</p><div class="dag">{}</div><table class="pipeline"><thead><tr><th>stage</th><th>kind</th><th>state</th><th>duration</th><th>cache key</th><th>outputs (BLAKE3)</th></tr></thead><tbody>"#,
        esc(pipeline),
        esc(finished),
        dag_svg(facts)
    );
    for f in facts {
        let outs: Vec<String> = f
            .outputs
            .iter()
            .map(|(p, d, size)| {
                format!(
                    r#"{} <code class="dig" title="{d}">{}…</code> ({} B)"#,
                    esc(p),
                    &d[..16.min(d.len())],
                    count(*size as usize)
                )
            })
            .collect();
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td>{}</td><td class="st-{}">{}</td><td>{}</td><td class="dig" title="{}">{}</td><td>{}</td></tr>"#,
            esc(&f.name),
            esc(&f.kind),
            f.state,
            f.state.replace('_', " "),
            f.seconds.map(fmt_secs).unwrap_or_else(|| "–".into()),
            f.key.as_deref().unwrap_or(""),
            f.key
                .as_deref()
                .map(|k| &k[..16.min(k.len())])
                .unwrap_or("–"),
            outs.join("<br>")
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// Writes the run facts beside every report the run produced or found fresh, and returns
/// the path of each report's `index.html`.
pub fn write_facts(
    pipeline: &Pipeline,
    report: &RunReport,
    store: &Store,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut pages = Vec::new();
    let mut facts_cache = None;
    for st in &pipeline.stages {
        let reports: Vec<&String> = st
            .signature
            .outputs
            .iter()
            .filter(|p| p.ty == ArtifactType::Report)
            .map(|p| &p.name)
            .collect();
        if reports.is_empty() {
            continue;
        }
        let Some(sr) = report.stages.iter().find(|s| s.name == st.name) else {
            continue;
        };
        if !matches!(
            sr.outcome,
            Outcome::Ran { .. } | Outcome::Fresh | Outcome::Fetched { .. }
        ) {
            continue;
        }
        let Some(rec) = sr.key.and_then(|k| store.read_record(&k).ok().flatten()) else {
            continue;
        };
        let facts = facts_cache.get_or_insert_with(|| facts(pipeline, report, store));
        let finished = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let html = pipeline_html(&pipeline.name, &finished, facts);
        for port in reports {
            let Some(o) = rec.outputs.get(port) else {
                continue;
            };
            let dir = store.runs_dir().join("reports");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join(format!("{}.js", o.digest.hex()));
            let js = format!(
                "window.hhiPipeline = {};\n",
                serde_json::json!({ "pipeline": pipeline.name, "html": html })
            );
            crate::store::fsutil::write_atomic(&path, js.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            pages.push(store.object_path(&o.digest).join("index.html"));
        }
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(name: &str, upstream: Vec<usize>) -> StageFact {
        StageFact {
            name: name.into(),
            kind: "k".into(),
            state: "ran",
            seconds: Some(1.5),
            key: Some("ab".repeat(32)),
            outputs: vec![("out".into(), "cd".repeat(32), 1234)],
            upstream,
        }
    }

    #[test]
    fn every_edge_points_right_even_when_the_file_order_is_not_topological() {
        // c (file order 0) reads b (2), which reads a (1).
        let facts = vec![fact("c", vec![2]), fact("a", vec![]), fact("b", vec![1])];
        let svg = dag_svg(&facts);
        let x_of = |name: &str| -> f64 {
            let i = svg.find(&format!(">{name}</text>")).unwrap();
            let rect = svg[..i].rfind("<rect x=\"").unwrap();
            svg[rect + 9..].split('"').next().unwrap().parse().unwrap()
        };
        assert!(x_of("a") < x_of("b") && x_of("b") < x_of("c"), "{svg}");
        let html = pipeline_html("p", "now", &facts);
        assert!(html.contains("1.5s") || html.contains("1.50s"), "{html}");
        assert!(html.contains(&"cd".repeat(8)));
    }
}
