//! Scores tab-separated `reference<TAB>candidate` lines from stdin with a BLEURT checkpoint
//! and prints one score per line, then the throughput on stderr:
//!
//!     cargo run --release --example bleurt_score -- DIR [BATCH] < pairs.tsv
//!
//! Used by `tools/bench_bleurt.py` against bleurt-pytorch.
use hhi::models::Cpu;
use hhi::models::bleurt::Scorer;
use std::io::Read;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .ok_or_else(|| anyhow::anyhow!("usage: bleurt_score DIR [BATCH] < pairs.tsv"))?;
    let batch: usize = args.get(2).map(|b| b.parse()).transpose()?.unwrap_or(16);
    let t = Instant::now();
    let scorer = Scorer::<Cpu>::load(std::path::Path::new(dir), &Default::default())?;
    let load_s = t.elapsed().as_secs_f64();
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let pairs: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('\t')).collect();
    let t = Instant::now();
    let scores = scorer.scores(&pairs, batch)?;
    let s = t.elapsed().as_secs_f64();
    for v in &scores {
        println!("{v}");
    }
    eprintln!(
        "{{\"pairs\": {}, \"seconds\": {s:.3}, \"pairs_per_s\": {:.2}, \"load_s\": {load_s:.2}}}",
        pairs.len(),
        pairs.len() as f64 / s
    );
    Ok(())
}
