//! `hhi runs` and `hhi diff`: recent runs as a table (overrides, what ran, headline
//! metrics) and two runs compared (parameters, artifacts, metrics with deltas). Everything
//! comes from the run refs and the provenance records: a run's metrics are the figures
//! its `evaluate` stages recorded.

use crate::lockfile::LockFile;
use crate::store::Store;
use crate::store::hash::Digest;
use crate::store::record::Record;
use crate::store::runs::{RunRef, run_id, run_refs};
use anyhow::bail;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The metrics shown when none is asked for.
pub const DEFAULT_METRICS: [&str; 2] = ["verb_match@1", "label_match@1"];

#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: String,
    pub name: Option<String>,
    pub pipeline: String,
    pub started: String,
    pub seconds: f64,
    pub overrides: Vec<String>,
    pub ran: usize,
    pub fresh: usize,
    pub failed: usize,
    /// Column → value.
    pub metrics: BTreeMap<String, f64>,
    /// The columns in the order asked for.
    #[serde(skip)]
    pub columns: Vec<String>,
}

/// The figures of the run's `evaluate` stages, as `STAGE.FIGURE`.
fn figures(store: &Store, r: &RunRef) -> BTreeMap<String, (String, f64)> {
    let mut out = BTreeMap::new();
    for (stage, key) in &r.stages {
        if let Ok(Some(rec)) = store.read_record(key) {
            for (fig, v) in &rec.figures {
                out.insert(format!("{stage}.{fig}"), (rec.kind.clone(), *v));
            }
        }
    }
    out
}

/// A run's value for a metric column: `STAGE.FIGURE` names any recorded figure;
/// `verb_match@1` is the model's score in every `evaluate` stage (one column each when
/// the pipeline has several).
fn metric_columns(
    figs: &BTreeMap<String, (String, f64)>,
    metrics: &[String],
) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for m in metrics {
        if let Some((_, v)) = figs.get(m) {
            out.push((m.clone(), *v));
            continue;
        }
        for (name, (kind, v)) in figs {
            let Some((stage, fig)) = name.split_once('.') else {
                continue;
            };
            if kind == "evaluate" && fig == format!("model.{m}") {
                out.push((format!("{stage}.{m}"), *v));
            }
        }
    }
    out
}

/// Recent runs, newest first: of `pipeline` only when given.
pub fn rows(
    store: &Store,
    pipeline: Option<&Path>,
    metrics: &[String],
    limit: usize,
) -> anyhow::Result<Vec<RunRow>> {
    let want = match pipeline {
        Some(p) => Some(std::path::absolute(p)?),
        None => None,
    };
    Ok(run_refs(store)
        .into_iter()
        .filter(|(_, r)| want.as_ref().is_none_or(|w| &r.pipeline == w))
        .take(limit)
        .map(|(path, r)| {
            let figs = figures(store, &r);
            let cols = metric_columns(&figs, metrics);
            RunRow {
                id: run_id(&path),
                name: r.info.name.clone(),
                pipeline: r.pipeline.display().to_string(),
                started: r.info.started.clone(),
                seconds: r.info.seconds,
                overrides: r.info.overrides.clone(),
                ran: r.info.ran,
                fresh: r.info.fresh,
                failed: r.info.failed,
                columns: cols.iter().map(|c| c.0.clone()).collect(),
                metrics: cols.into_iter().collect(),
            }
        })
        .collect())
}

/// The table `hhi runs` prints.
pub fn render_rows(rows: &[RunRow]) -> String {
    if rows.is_empty() {
        return "no runs recorded in this store yet: `hhi run P.toml` records one\n".into();
    }
    let mut cols: Vec<&String> = Vec::new();
    for c in rows.iter().flat_map(|r| &r.columns) {
        if !cols.contains(&c) {
            cols.push(c);
        }
    }
    let mut head: Vec<String> = [
        "run",
        "name",
        "started (UTC)",
        "wall",
        "stages",
        "overrides",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    head.extend(cols.iter().map(|c| c.to_string()));
    let mut table: Vec<Vec<String>> = vec![head];
    for r in rows {
        let mut line = vec![
            r.id.clone(),
            r.name.clone().unwrap_or_default(),
            if r.started.is_empty() {
                "(not recorded)".into()
            } else {
                r.started
                    .replace('T', " ")
                    .trim_end_matches('Z')
                    .to_string()
            },
            crate::scheduler::fmt_secs(r.seconds),
            if r.failed > 0 {
                format!("{} ran, {} fresh, {} failed", r.ran, r.fresh, r.failed)
            } else {
                format!("{} ran, {} fresh", r.ran, r.fresh)
            },
            r.overrides.join(" "),
        ];
        line.extend(cols.iter().map(|c| {
            r.metrics
                .get(*c)
                .map(|v| format!("{v:.3}"))
                .unwrap_or_else(|| "–".into())
        }));
        table.push(line);
    }
    let n = table[0].len();
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            table
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &table {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `hhi runs --html`: the runs' metric tables side by side (overall, per evaluate stage)
/// on one offline page, with a link to each run's own report.
pub fn render_html(store: &Store, rows: &[RunRow]) -> String {
    use crate::report::html::{esc, num};
    let refs: BTreeMap<String, RunRef> = run_refs(store)
        .into_iter()
        .map(|(p, r)| (run_id(&p), r))
        .collect();
    // Per run: (evaluate stage → metrics.json) and its report pages.
    let mut tables: Vec<BTreeMap<String, crate::report::Metrics>> = Vec::new();
    let mut pages: Vec<Vec<std::path::PathBuf>> = Vec::new();
    for r in rows {
        let mut t = BTreeMap::new();
        let mut pg = Vec::new();
        if let Some(rf) = refs.get(&r.id) {
            for (stage, key) in &rf.stages {
                let Ok(Some(rec)) = store.read_record(key) else {
                    continue;
                };
                for o in rec.outputs.values() {
                    let path = store.object_path(&o.digest);
                    match o.ty {
                        crate::types::ArtifactType::Metrics if rec.kind == "evaluate" => {
                            if let Ok(m) = crate::report::read_metrics(&path) {
                                t.insert(stage.clone(), m);
                            }
                        }
                        crate::types::ArtifactType::Report => pg.push(path.join("index.html")),
                        _ => {}
                    }
                }
            }
        }
        tables.push(t);
        pages.push(pg);
    }
    let mut keys: BTreeSet<(String, String, String)> = BTreeSet::new();
    for t in &tables {
        for (stage, m) in t {
            if let Some(model) = m.get("model") {
                for (metric, by_k) in model {
                    for k in by_k.keys() {
                        keys.insert((stage.clone(), metric.clone(), k.clone()));
                    }
                }
            }
        }
    }
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>hhi runs</title><style>body{font:14px system-ui,sans-serif;margin:16px}table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eef3f8}td.l,th.l{text-align:left}b{color:#00734f}</style></head><body><h1>hhi runs</h1><p>The model's overall scores (mean of the source means) per run; the best of each row in bold.</p><table><thead><tr><th class=\"l\">metric</th>",
    );
    for r in rows {
        let label = r.name.clone().unwrap_or_else(|| r.id.clone());
        out.push_str(&format!(
            "<th>{}<br><small>{}</small></th>",
            esc(&label),
            esc(&r.overrides.join(" "))
        ));
    }
    out.push_str("</tr></thead><tbody>");
    for (stage, metric, k) in &keys {
        let vals: Vec<Option<f64>> = tables
            .iter()
            .map(|t| {
                t.get(stage)
                    .and_then(|m| m.get("model"))
                    .and_then(|m| m.get(metric))
                    .and_then(|b| b.get(k))
                    .and_then(|row| row.get(crate::text::eval::OVERALL))
                    .copied()
            })
            .collect();
        let lower = metric == "nli_pc";
        let best = vals
            .iter()
            .flatten()
            .copied()
            .fold(None, |acc: Option<f64>, v| {
                Some(match acc {
                    None => v,
                    Some(a) if lower => a.min(v),
                    Some(a) => a.max(v),
                })
            });
        out.push_str(&format!(
            "<tr><td class=\"l\">{} {} {}</td>",
            esc(stage),
            esc(metric),
            esc(k)
        ));
        for v in vals {
            out.push_str(&match v {
                Some(v) if Some(v) == best && rows.len() > 1 => {
                    format!("<td><b>{}</b></td>", num(v))
                }
                Some(v) => format!("<td>{}</td>", num(v)),
                None => "<td>–</td>".into(),
            });
        }
        out.push_str("</tr>");
    }
    out.push_str("<tr><td class=\"l\">report</td>");
    for pg in &pages {
        out.push_str("<td>");
        for p in pg {
            out.push_str(&format!(
                "<a href=\"file://{}\">open</a> ",
                esc(&p.display().to_string())
            ));
        }
        out.push_str("</td>");
    }
    out.push_str("</tr></tbody></table></body></html>\n");
    out
}

/// A run found by `hhi diff`: its label and stage → key.
pub struct Side {
    pub label: String,
    pub stages: BTreeMap<String, Digest>,
    pub overrides: Vec<String>,
}

/// A run id (or a prefix of one), a run name (the newest run of that name), or a lock
/// file.
pub fn resolve(store: &Store, what: &str) -> anyhow::Result<Side> {
    let p = Path::new(what);
    if what.ends_with(".lock") || p.is_file() {
        let Some(lock) = LockFile::read(p)? else {
            bail!("no lock file {what}");
        };
        return Ok(Side {
            label: what.to_string(),
            stages: lock
                .stages
                .iter()
                .map(|(n, s)| (n.clone(), s.key))
                .collect(),
            overrides: Vec::new(),
        });
    }
    let refs = run_refs(store);
    let by_id: Vec<&(std::path::PathBuf, RunRef)> = refs
        .iter()
        .filter(|(path, _)| run_id(path).starts_with(what))
        .collect();
    let found = match by_id.as_slice() {
        [one] => Some(*one),
        [] => refs
            .iter()
            .find(|(_, r)| r.info.name.as_deref() == Some(what)),
        many => bail!("`{what}` begins {} run ids; give more of it", many.len()),
    };
    let Some((path, r)) = found else {
        let names: Vec<String> = refs
            .iter()
            .take(10)
            .map(|(p, r)| match &r.info.name {
                Some(n) => format!("{} ({n})", run_id(p)),
                None => run_id(p),
            })
            .collect();
        bail!(
            "no run `{what}` in this store\n  = help: give a run id or name from `hhi runs` (recent: {}), or a lock file",
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        );
    };
    let id = run_id(path);
    Ok(Side {
        label: match &r.info.name {
            Some(n) => format!("{id} ({n})"),
            None => id,
        },
        stages: r.stages.clone(),
        overrides: r.info.overrides.clone(),
    })
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Change {
    pub what: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetricDelta {
    pub metric: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub delta: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub a: String,
    pub b: String,
    pub a_overrides: Vec<String>,
    pub b_overrides: Vec<String>,
    /// `stage.param`, old → new.
    pub params: Vec<Change>,
    /// `stage.port` digests that differ; stages in one run only.
    pub artifacts: Vec<Change>,
    /// Every `evaluate` stage's model scores, side by side.
    pub metrics: Vec<MetricDelta>,
    /// Stages whose record is gone (collected by `gc`): nothing can be said of them.
    pub unknown: Vec<String>,
}

pub fn diff(store: &Store, a: &Side, b: &Side) -> Diff {
    let mut d = Diff {
        a: a.label.clone(),
        b: b.label.clone(),
        a_overrides: a.overrides.clone(),
        b_overrides: b.overrides.clone(),
        params: Vec::new(),
        artifacts: Vec::new(),
        metrics: Vec::new(),
        unknown: Vec::new(),
    };
    let names: BTreeSet<&String> = a.stages.keys().chain(b.stages.keys()).collect();
    let mut metrics: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
    let read = |k: Option<&Digest>| -> Option<Record> {
        k.and_then(|k| store.read_record(k).ok().flatten())
    };
    for name in names {
        let (ka, kb) = (a.stages.get(name), b.stages.get(name));
        let (ra, rb) = (read(ka), read(kb));
        if (ka.is_some() && ra.is_none()) || (kb.is_some() && rb.is_none()) {
            d.unknown.push(name.clone());
        }
        for (side, rec) in [(0, &ra), (1, &rb)] {
            let Some(rec) = rec else { continue };
            if rec.kind != "evaluate" {
                continue;
            }
            for (fig, v) in &rec.figures {
                if let Some(m) = fig.strip_prefix("model.") {
                    let e = metrics.entry(format!("{name}.{m}")).or_default();
                    if side == 0 {
                        e.0 = Some(*v);
                    } else {
                        e.1 = Some(*v);
                    }
                }
            }
        }
        if ka == kb {
            continue;
        }
        match (&ra, &rb) {
            (Some(ra), Some(rb)) => {
                let keys: BTreeSet<&String> = ra.params.keys().chain(rb.params.keys()).collect();
                for k in keys {
                    let (x, y) = (ra.params.get(k), rb.params.get(k));
                    if x != y {
                        d.params.push(Change {
                            what: format!("{name}.{k}"),
                            a: x.cloned(),
                            b: y.cloned(),
                        });
                    }
                }
                let ports: BTreeSet<&String> = ra.outputs.keys().chain(rb.outputs.keys()).collect();
                for p in ports {
                    let (x, y) = (
                        ra.outputs.get(p).map(|o| o.digest),
                        rb.outputs.get(p).map(|o| o.digest),
                    );
                    if x != y {
                        d.artifacts.push(Change {
                            what: format!("{name}.{p}"),
                            a: x.map(|x| x.hex()),
                            b: y.map(|y| y.hex()),
                        });
                    }
                }
            }
            _ if ka.is_none() || kb.is_none() => d.artifacts.push(Change {
                what: name.clone(),
                a: ka.map(|_| "present".into()),
                b: kb.map(|_| "present".into()),
            }),
            _ => {}
        }
    }
    d.metrics = metrics
        .into_iter()
        .map(|(metric, (a, b))| MetricDelta {
            metric,
            a,
            b,
            delta: a.zip(b).map(|(a, b)| b - a),
        })
        .collect();
    d
}

pub fn render_diff(d: &Diff) -> String {
    let mut out = format!("A  {}{}\n", d.a, overrides_note(&d.a_overrides));
    out.push_str(&format!("B  {}{}\n", d.b, overrides_note(&d.b_overrides)));
    let short = |s: &Option<String>| {
        s.as_deref()
            .map(|s| {
                if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
                    format!("{}…", &s[..12])
                } else {
                    s.to_string()
                }
            })
            .unwrap_or_else(|| "(none)".into())
    };
    for (title, empty, list) in [
        ("parameters", "(the same)", &d.params),
        ("artifacts that differ", "(none)", &d.artifacts),
    ] {
        out.push_str(&format!("\n{title}\n"));
        if list.is_empty() {
            out.push_str(&format!("  {empty}\n"));
        }
        for c in list {
            out.push_str(&format!(
                "  {}: {} → {}\n",
                c.what,
                short(&c.a),
                short(&c.b)
            ));
        }
    }
    out.push_str("\nmetrics (the model's, per evaluate stage)\n");
    if d.metrics.is_empty() {
        out.push_str("  (no evaluate stage in either run)\n");
    }
    let width = d.metrics.iter().map(|m| m.metric.len()).max().unwrap_or(0);
    let f = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "–".into());
    for m in &d.metrics {
        out.push_str(&format!(
            "  {:width$}  {:>8}  {:>8}  {}\n",
            m.metric,
            f(m.a),
            f(m.b),
            m.delta.map(|x| format!("{x:+.4}")).unwrap_or_default()
        ));
    }
    if !d.unknown.is_empty() {
        out.push_str(&format!(
            "\nno record left for: {} (collected by gc?); they are not compared\n",
            d.unknown.join(", ")
        ));
    }
    out
}

fn overrides_note(o: &[String]) -> String {
    if o.is_empty() {
        String::new()
    } else {
        format!("  with {}", o.join(" "))
    }
}
