//! Runs a summarizer checkpoint (stage 5's `model` output, or any T5 folder) on captions
//! read one per line from stdin, printing the teacher-free greedy decode (full forward at
//! every step, no cache) and the pseudo-label stage's beam search side by side. A quick
//! check that a trained model reads its captions.
//!
//! cargo run --release --example summarize -- MODEL_DIR < captions.txt
use burn::prelude::*;
use hhi::models::Cpu;
use hhi::models::generate::{BeamOptions, Seq2Seq, beam_search_batch};
use hhi::models::t5::T5;
use hhi::text::tokenizer::Tokenizer;
use std::io::BufRead;

fn main() -> anyhow::Result<()> {
    hhi::backend::tune_allocator();
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("MODEL_DIR"));
    let dev = Default::default();
    let (model, cfg) = T5::<Cpu>::load(&dir, &dev)?;
    let tok = Tokenizer::load(&dir)?;
    let eos = cfg.eos_token_id;
    for line in std::io::stdin().lock().lines() {
        let text = format!("summarize: {}", line?);
        let mut src = tok.encode(&text)?;
        if let Some(e) = eos
            && src.last() != Some(&e)
        {
            src.push(e);
        }
        let n = src.len();
        let ids = Tensor::<Cpu, 2, Int>::from_data(
            TensorData::new(src.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, n]),
            &dev,
        );
        let mut dec = vec![cfg.decoder_start()];
        for _ in 0..20 {
            let d = Tensor::<Cpu, 2, Int>::from_data(
                TensorData::new(
                    dec.iter().map(|&x| x as i64).collect::<Vec<_>>(),
                    [1, dec.len()],
                ),
                &dev,
            );
            let logits = model.forward(ids.clone(), d);
            let t = dec.len();
            let last: Vec<f32> = logits.narrow(1, t - 1, 1).into_data().to_vec().unwrap();
            let best = (0..last.len()).fold(0, |b, i| if last[i] > last[b] { i } else { b }) as u32;
            if Some(best) == eos {
                break;
            }
            dec.push(best);
        }
        let s2s = Seq2Seq::from_sources(&model, std::slice::from_ref(&src), &dev)?;
        let opts = BeamOptions {
            num_beams: 4,
            max_new_tokens: 19,
            min_length: 1,
            length_penalty: 2.0,
            no_repeat_ngram: 3,
            early_stopping: true,
            eos,
        };
        let hyps = beam_search_batch(&s2s, &[vec![cfg.decoder_start()]], &opts, &dev)?;
        let beam = hyps[0]
            .first()
            .map(|h| tok.decode(&h.tokens[1..]))
            .transpose()?;
        println!(
            "{}\t{}\t{}",
            tok.decode(&dec[1..])?,
            beam.unwrap_or_default(),
            text
        );
    }
    Ok(())
}
