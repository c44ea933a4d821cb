//! Reads captions (one a line) on stdin and prints JSONL `{caption, interactions}`.
//! `--paper` keeps person-less prepositional arguments as the paper's parser does;
//! `--clean` runs the caption cleaning first.

use hhi::text::extract::{ExtractOptions, clean_caption, extract_interactions_with};
use std::io::{BufRead, Write};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = if args.iter().any(|a| a == "--paper") {
        ExtractOptions::paper()
    } else {
        ExtractOptions::default()
    };
    let clean = args.iter().any(|a| a == "--clean");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let caption = if clean {
            clean_caption(&line)
        } else {
            line.clone()
        };
        let interactions = extract_interactions_with(&caption, opts);
        let record = serde_json::json!({ "caption": caption, "interactions": interactions });
        writeln!(out, "{record}")?;
    }
    Ok(())
}
