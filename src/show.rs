//! `hhi show` and `hhi graph`: reading records back for people.

use crate::lockfile::LockFile;
use crate::pipeline::Pipeline;
use crate::plan::Plan;
use crate::scheduler::run_refs;
use crate::store::Store;
use crate::store::record::Record;
use anyhow::bail;
use std::collections::BTreeSet;

/// Finds the records `what` names: by stage name (through `pipeline`'s lock, else the
/// newest run that had such a stage), by cache key, or by the digest of one of its outputs.
/// Hex prefixes of at least 6 digits are accepted. A digest names one artifact, but several
/// records can have produced those same bytes (two stages, or one stage with different
/// inputs, that wrote the same thing): all of them are returned, oldest first. Only a prefix
/// that begins more than one key or digest is ambiguous.
pub fn find_records(
    store: &Store,
    what: &str,
    pipeline: Option<&Pipeline>,
) -> anyhow::Result<Vec<Record>> {
    let is_hex = what.len() >= 6 && what.chars().all(|c| c.is_ascii_hexdigit());
    if !is_hex {
        let key = match pipeline {
            Some(p) => {
                LockFile::read(&p.lock_path())?.and_then(|l| l.stages.get(what).map(|s| s.key))
            }
            None => run_refs(store)
                .into_iter()
                .find_map(|(_, r)| r.stages.get(what).copied()),
        };
        let Some(key) = key else {
            bail!(
                "no stage `{what}` in any recorded run\n  = help: give a stage name from a pipeline you have run, a cache key or an artifact digest"
            );
        };
        let rec = store
            .read_record(&key)?
            .ok_or_else(|| anyhow::anyhow!("the record for `{what}` is gone (collected by gc?)"))?;
        return Ok(vec![rec]);
    }
    let what = what.to_ascii_lowercase();
    let records = store.records();
    let by_key: Vec<&Record> = records
        .iter()
        .filter(|r| r.key.hex().starts_with(&what))
        .collect();
    match by_key.as_slice() {
        [one] => return Ok(vec![(*one).clone()]),
        [] => {}
        many => bail!(
            "{what} is ambiguous: {} cache keys begin with it; give more digits",
            many.len()
        ),
    }
    let mut digests = BTreeSet::new();
    let mut hits: Vec<Record> = Vec::new();
    for r in &records {
        let matching: Vec<String> = r
            .outputs
            .values()
            .map(|o| o.digest.hex())
            .filter(|h| h.starts_with(&what))
            .collect();
        if !matching.is_empty() {
            digests.extend(matching);
            hits.push(r.clone());
        }
    }
    if digests.len() > 1 {
        bail!(
            "{what} is ambiguous: {} artifact digests begin with it; give more digits",
            digests.len()
        );
    }
    if hits.is_empty() {
        bail!("no record has key or output digest {what}");
    }
    hits.sort_by_key(|r| (r.started.clone(), r.key.hex()));
    Ok(hits)
}

/// Several records, each rendered as by [`render_record`], after a line that says how many.
pub fn render_records(records: &[Record]) -> String {
    match records {
        [one] => render_record(one),
        many => {
            let mut s = format!(
                "{} records produced these bytes (oldest first):\n",
                many.len()
            );
            for r in many {
                s.push('\n');
                s.push_str(&render_record(r));
            }
            s
        }
    }
}

pub fn render_record(r: &Record) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "stage     {} ({} v{}) in pipeline {}\n",
        r.stage, r.kind, r.version, r.pipeline
    ));
    s.push_str(&format!("key       {}\n", r.key));
    s.push_str(&format!("seed      {}\n", r.seed));
    s.push_str(&format!(
        "ran       {} → {} ({})\n",
        r.started,
        r.finished,
        crate::scheduler::fmt_secs(r.duration_s)
    ));
    s.push_str(&format!(
        "on        backend {}, device {}{}, hhi {}\n",
        r.backend,
        r.device,
        if r.kernel.is_empty() {
            String::new()
        } else {
            format!(" ({} kernels)", r.kernel)
        },
        r.hhi_version
    ));
    if let Some(m) = r.peak_rss_bytes {
        s.push_str(&format!("peak mem  {}\n", crate::audit::human_bytes(m)));
    }
    if let Some(j) = &r.slurm {
        s.push_str(&format!(
            "slurm     job {} on {}, {} elapsed, COMPLETED\n",
            j.job_id,
            if j.node.is_empty() { "?" } else { &j.node },
            crate::scheduler::fmt_secs(r.duration_s)
        ));
    }
    s.push_str("params\n");
    for (k, v) in &r.params {
        s.push_str(&format!("  {k} = {v}\n"));
    }
    s.push_str("inputs\n");
    for (k, v) in &r.inputs {
        s.push_str(&format!("  {k} ← {} {}\n", v.from, v.digest));
    }
    s.push_str("outputs\n");
    for (k, v) in &r.outputs {
        s.push_str(&format!(
            "  {k}: {} {:?} {} ({})\n",
            v.ty,
            v.object,
            v.digest,
            crate::audit::human_bytes(v.size)
        ));
    }
    if !r.figures.is_empty() {
        s.push_str("figures\n");
        for (k, v) in &r.figures {
            s.push_str(&format!("  {k} = {v}\n"));
        }
    }
    s
}

/// The `index.html` of each report among the records' outputs that the store holds.
pub fn report_pages(store: &Store, records: &[Record]) -> Vec<std::path::PathBuf> {
    records
        .iter()
        .flat_map(|r| r.outputs.values())
        .filter(|o| o.ty == crate::types::ArtifactType::Report)
        .map(|o| store.object_path(&o.digest).join("index.html"))
        .filter(|p| p.is_file())
        .collect()
}

/// Renders dot text to SVG with Graphviz's `dot` (`$HHI_DOT`, else `dot` on PATH).
pub fn dot_to_svg(dot: &str) -> anyhow::Result<String> {
    use std::io::Write;
    let program = std::env::var_os("HHI_DOT").unwrap_or_else(|| "dot".into());
    let child = std::process::Command::new(&program)
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "`--format svg` draws the graph with Graphviz's `dot`, which was not found ({})\n  = help: install Graphviz (Debian/Ubuntu: `sudo apt install graphviz`; Fedora: `sudo dnf install graphviz`; macOS: `brew install graphviz`; conda: `conda install -c conda-forge graphviz`), set HHI_DOT to its path, or print `--format dot` and render it elsewhere",
            std::path::Path::new(&program).display()
        ),
        Err(e) => bail!(
            "could not start `{}`: {e}",
            std::path::Path::new(&program).display()
        ),
    };
    // dot reads all of its input before it writes, so writing first cannot deadlock.
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(dot.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "`dot -Tsvg` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The DAG in Graphviz dot or Mermaid, each stage labelled with its state from `plan`.
pub fn render_graph(pipeline: &Pipeline, plan: &Plan, mermaid: bool) -> String {
    let state = |name: &str| {
        plan.stages
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.state.as_str())
            .unwrap_or("?")
    };
    let mut out = String::new();
    let id = |name: &str| name.replace('-', "_");
    if mermaid {
        out.push_str("flowchart LR\n");
        for st in &pipeline.stages {
            out.push_str(&format!(
                "  {}[\"{}<br/>{} · {}\"]:::{}\n",
                id(&st.name),
                st.name,
                st.kind.name(),
                state(&st.name),
                state(&st.name)
            ));
        }
    } else {
        out.push_str(&format!(
            "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=filled];\n",
            pipeline.name
        ));
        for st in &pipeline.stages {
            let color = if state(&st.name) == "fresh" {
                "palegreen"
            } else {
                "lightsalmon"
            };
            out.push_str(&format!(
                "  \"{}\" [label=\"{}\\n{} · {}\", fillcolor={color}];\n",
                st.name,
                st.name,
                st.kind.name(),
                state(&st.name)
            ));
        }
    }
    for st in &pipeline.stages {
        for (port, input) in &st.inputs {
            if let crate::pipeline::InputSource::Edge {
                stage,
                port: out_port,
            } = &input.source
            {
                if mermaid {
                    out.push_str(&format!(
                        "  {} -->|{out_port} → {port}| {}\n",
                        id(stage),
                        id(&st.name)
                    ));
                } else {
                    out.push_str(&format!(
                        "  \"{stage}\" -> \"{}\" [label=\"{out_port} → {port}\"];\n",
                        st.name
                    ));
                }
            }
        }
    }
    if mermaid {
        out.push_str("  classDef fresh fill:#cfc;\n  classDef run fill:#fca;\n");
    } else {
        out.push_str("}\n");
    }
    out
}
