//! Loads a checkpoint folder on the CPU backend and reports the process's peak resident
//! memory against the checkpoint's size (issue "Speed", point 5). `tools/bench_load.py`
//! makes a GPT-Neo-1.3B-shaped random checkpoint and runs this beside PyTorch.
//!
//! ```sh
//! cargo run --release --example load_rss -- gpt_neo DIR
//! ```

use hhi::models::Cpu;
use std::path::Path;
use std::time::Instant;

/// Linux `VmHWM` / `VmRSS` of this process, in bytes.
fn status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn main() -> anyhow::Result<()> {
    hhi::backend::tune_allocator();
    let args: Vec<String> = std::env::args().collect();
    let (Some(model), Some(dir)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: load_rss gpt2|gpt_neo|t5|clip DIR");
    };
    let dir = Path::new(dir);
    let file_bytes: u64 = std::fs::read_dir(dir)?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    let dev = Default::default();
    let before = status("VmRSS:");
    let t = Instant::now();
    let params = match model.as_str() {
        "gpt_neo" => {
            let (m, _) = hhi::models::gpt_neo::GptNeo::<Cpu>::load(dir, &dev)?;
            burn::module::Module::num_params(&m)
        }
        "gpt2" => {
            let (m, _) = hhi::models::gpt2::Gpt2::<Cpu>::load(dir, &dev)?;
            burn::module::Module::num_params(&m)
        }
        "t5" => {
            let (m, _) = hhi::models::t5::T5::<Cpu>::load(dir, &dev)?;
            burn::module::Module::num_params(&m)
        }
        "clip" => {
            let (m, _) = hhi::models::clip::Clip::<Cpu>::load(dir, &dev)?;
            burn::module::Module::num_params(&m)
        }
        other => anyhow::bail!("unknown model `{other}`"),
    };
    let seconds = t.elapsed().as_secs_f64();
    let peak = status("VmHWM:");
    println!(
        "{}",
        serde_json::json!({
            "model": model,
            "params": params,
            "file_bytes": file_bytes,
            "rss_before_bytes": before,
            "peak_rss_bytes": peak,
            "peak_over_file": peak as f64 / file_bytes as f64,
            "seconds": seconds,
        })
    );
    Ok(())
}
