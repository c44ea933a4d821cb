//! Generation against transformers: greedy and beam-search token ids (and beam scores) for
//! GPT-2 and GPT-Neo, plus properties of sampling and of the paper's beam search.
mod support;
use hhi::models::Cpu;
use hhi::models::generate::{
    BeamOptions, Decoder, Hypothesis, SampleOptions, Selection, Seq2Seq, beam_search,
    beam_search_batch, beam_search_with, ngram_counts, paper_beam, sample, sample_streams,
};
use hhi::models::gpt_neo::GptNeo;
use hhi::models::gpt2::Gpt2;
use support::*;

fn check_causal<M: hhi::models::generate::Decoder<Cpu>>(m: &M, name: &str) {
    let e = expected(name);
    let prompt = id_rows(&e["prompt"]);
    let greedy = sample(
        m,
        &prompt,
        &SampleOptions {
            max_new_tokens: 12,
            ..Default::default()
        },
        &dev(),
    )
    .unwrap();
    assert_eq!(greedy, id_rows(&e["greedy"]), "greedy ids differ");

    let b = &e["beam"];
    let opts = BeamOptions {
        num_beams: 4,
        max_new_tokens: 10,
        min_length: 0,
        length_penalty: b["length_penalty"].as_f64().unwrap() as f32,
        no_repeat_ngram: 3,
        early_stopping: true,
        eos: Some(0),
    };
    let hyps = beam_search(m, &prompt[0], &opts, &dev()).unwrap();
    let want = id_rows(&b["sequences"]);
    let got: Vec<Vec<u32>> = hyps.iter().map(|h| h.tokens.clone()).collect();
    assert_eq!(got, want, "beam ids differ");
    for (h, s) in hyps.iter().zip(b["scores"].as_array().unwrap()) {
        let s = s.as_f64().unwrap() as f32;
        assert!((h.score - s).abs() <= 1e-4, "beam score {} vs {s}", h.score);
    }
}

#[test]
fn gpt2_greedy_and_beam_match_transformers() {
    check_causal(&Gpt2::<Cpu>::load(&dir("gpt2"), &dev()).unwrap().0, "gpt2");
}

#[test]
fn gpt_neo_greedy_and_beam_match_transformers() {
    check_causal(
        &GptNeo::<Cpu>::load(&dir("gpt_neo"), &dev()).unwrap().0,
        "gpt_neo",
    );
}

#[test]
fn sampling_is_seeded_and_respects_its_options() {
    let m = Gpt2::<Cpu>::load(&dir("gpt2"), &dev()).unwrap().0;
    let prompt = vec![vec![5u32, 6, 7], vec![8, 9, 10]];
    let o = SampleOptions {
        max_new_tokens: 30,
        temperature: 1.0,
        top_p: 0.95,
        no_repeat_ngram: 3,
        seed: 42,
        ..Default::default()
    };
    let a = sample(&m, &prompt, &o, &dev()).unwrap();
    assert_eq!(
        a,
        sample(&m, &prompt, &o, &dev()).unwrap(),
        "same seed, same tokens"
    );
    assert_ne!(
        a,
        sample(
            &m,
            &prompt,
            &SampleOptions {
                seed: 43,
                ..o.clone()
            },
            &dev()
        )
        .unwrap(),
        "another seed differs"
    );
    for row in &a {
        assert_eq!(row.len(), 33);
        assert!(
            ngram_counts(row, 3).values().all(|&c| c == 1),
            "a trigram repeats: {row:?}"
        );
    }
    // A stop token ends the row (and is kept); min_new_tokens forbids it early.
    let stop = a[0][4];
    let s = sample(
        &m,
        &prompt,
        &SampleOptions {
            stop_tokens: vec![stop],
            ..o.clone()
        },
        &dev(),
    )
    .unwrap();
    let cut = 3 + a[0][3..].iter().position(|&t| t == stop).unwrap();
    assert_eq!(s[0], a[0][..=cut], "row 0 ends at its first stop token");
    let s = sample(
        &m,
        &prompt,
        &SampleOptions {
            stop_tokens: vec![stop],
            min_new_tokens: 5,
            ..o.clone()
        },
        &dev(),
    )
    .unwrap();
    assert!(!s[0][3..8].contains(&stop), "{:?}", s[0]);
    // Tiny top-p keeps only the most likely token: sampling becomes greedy.
    let greedy = sample(
        &m,
        &prompt,
        &SampleOptions {
            max_new_tokens: 8,
            ..Default::default()
        },
        &dev(),
    )
    .unwrap();
    let nucleus = sample(
        &m,
        &prompt,
        &SampleOptions {
            max_new_tokens: 8,
            temperature: 1.0,
            top_p: 1e-6,
            seed: 1,
            ..Default::default()
        },
        &dev(),
    )
    .unwrap();
    assert_eq!(greedy, nucleus);
}

#[test]
fn paper_beam_returns_sorted_unnormalised_scores() {
    let m = Gpt2::<Cpu>::load(&dir("gpt2"), &dev()).unwrap().0;
    let hyps = paper_beam(&m, &[5, 6, 7], 8, 6, 0, 4, &dev()).unwrap();
    assert_eq!(hyps.len(), 4);
    assert!(hyps.windows(2).all(|w| w[0].score >= w[1].score));
    // The score of the best beam is the sum of its tokens' log-probs under a full pass.
    use burn::prelude::*;
    let best = &hyps[0];
    let mut seq = vec![5u32, 6, 7];
    seq.extend(&best.tokens);
    let ids = Tensor::<Cpu, 2, Int>::from_data(
        TensorData::new(
            seq.iter().map(|&x| x as i64).collect::<Vec<_>>(),
            [1, seq.len()],
        ),
        &dev(),
    );
    let lp = burn::tensor::activation::log_softmax(m.forward(ids, None), 2);
    let lp: Vec<f32> = lp.into_data().to_vec().unwrap();
    let v = 400;
    let total: f32 = best
        .tokens
        .iter()
        .enumerate()
        .map(|(i, &t)| lp[(2 + i) * v + t as usize])
        .sum();
    assert!(
        (total - best.score).abs() < 1e-4,
        "{total} vs {}",
        best.score
    );
}

fn check_t5(name: &str) {
    use hhi::models::t5::T5;
    let e = expected(name);
    let (m, cfg) = T5::<Cpu>::load(&dir(name), &dev()).unwrap();
    let src = id_rows(&e["input_ids"]);
    let ids = burn::tensor::Tensor::<Cpu, 2, burn::tensor::Int>::from_data(
        burn::tensor::TensorData::new(
            src[0].iter().map(|&x| x as i64).collect::<Vec<_>>(),
            [1, src[0].len()],
        ),
        &dev(),
    );
    let s2s = Seq2Seq::new(&m, m.encode(ids));
    let start = vec![vec![cfg.decoder_start()]];
    let eos = cfg.eos_token_id;
    let greedy = sample(
        &s2s,
        &start,
        &SampleOptions {
            max_new_tokens: 10,
            stop_tokens: eos.into_iter().collect(),
            ..Default::default()
        },
        &dev(),
    )
    .unwrap();
    assert_eq!(greedy, id_rows(&e["greedy"]), "greedy ids differ");
    let b = &e["beam"];
    let opts = BeamOptions {
        num_beams: 4,
        max_new_tokens: 10,
        min_length: 1,
        length_penalty: 2.0,
        no_repeat_ngram: 3,
        early_stopping: true,
        eos,
    };
    let hyps = beam_search(&s2s, &start[0], &opts, &dev()).unwrap();
    let got: Vec<Vec<u32>> = hyps.iter().map(|h| h.tokens.clone()).collect();
    assert_eq!(got, id_rows(&b["sequences"]), "beam ids differ");
    for (h, s) in hyps.iter().zip(b["scores"].as_array().unwrap()) {
        assert!(
            (h.score - s.as_f64().unwrap() as f32).abs() <= 1e-4,
            "beam score {} vs {s}",
            h.score
        );
    }
}

#[test]
fn t5_greedy_and_beam_match_transformers() {
    check_t5("t5_v1_0");
    check_t5("t5_v1_1");
}

/// Prompts of different lengths (left-padded inside): greedy ids and beam hypotheses
/// (ids and scores) equal transformers' on the padded batch and each prompt's alone.
fn check_ragged<M: Decoder<Cpu>>(m: &M, name: &str) {
    let e = &expected("padded")[name];
    let prompts = id_rows(&e["prompts"]);
    let greedy_opts = SampleOptions {
        max_new_tokens: 8,
        stop_tokens: vec![0],
        ..Default::default()
    };
    let greedy = sample(m, &prompts, &greedy_opts, &dev()).unwrap();
    assert_eq!(
        greedy,
        id_rows(&e["greedy"]),
        "{name}: padded greedy ids differ"
    );
    for (p, want) in prompts.iter().zip(&greedy) {
        let alone = sample(m, std::slice::from_ref(p), &greedy_opts, &dev()).unwrap();
        assert_eq!(&alone[0], want, "{name}: greedy of {p:?} alone differs");
    }

    let b = &e["beam"];
    let opts = BeamOptions {
        num_beams: 4,
        max_new_tokens: 6,
        min_length: 0,
        length_penalty: 1.0,
        no_repeat_ngram: 3,
        early_stopping: true,
        eos: Some(0),
    };
    let batch = beam_search_batch(m, &prompts, &opts, &dev()).unwrap();
    // Candidates taken on the device (GPU backends' way) give the same beams and scores.
    let device = beam_search_with(m, &prompts, &opts, Selection::Device, &dev()).unwrap();
    assert_eq!(device, batch, "{name}: beams with device candidates differ");
    let want = id_rows(&b["sequences"]);
    let scores = b["scores"].as_array().unwrap();
    let mut worst = 0f32;
    for (i, hyps) in batch.iter().enumerate() {
        let got: Vec<Vec<u32>> = hyps.iter().map(|h| h.tokens.clone()).collect();
        assert_eq!(
            got,
            want[i * 4..i * 4 + 4],
            "{name}: beams of prompt {i} differ"
        );
        for (h, s) in hyps.iter().zip(&scores[i * 4..i * 4 + 4]) {
            worst = worst.max((h.score - s.as_f64().unwrap() as f32).abs());
        }
        let alone = beam_search(m, &prompts[i], &opts, &dev()).unwrap();
        let alone_ids: Vec<Vec<u32>> = alone.iter().map(|h| h.tokens.clone()).collect();
        assert_eq!(alone_ids, got, "{name}: beams of prompt {i} alone differ");
        for (a, h) in alone.iter().zip(hyps) {
            worst = worst.max((a.score - h.score).abs());
        }
    }
    println!("{name}: padded beam scores max |Δ| = {worst:e}");
    assert!(worst <= 1e-4, "{name}: beam scores differ by {worst}");
}

#[test]
fn gpt2_ragged_prompts_match_transformers_and_each_prompt_alone() {
    check_ragged(&Gpt2::<Cpu>::load(&dir("gpt2"), &dev()).unwrap().0, "gpt2");
}

#[test]
fn gpt_neo_ragged_prompts_match_transformers_and_each_prompt_alone() {
    check_ragged(
        &GptNeo::<Cpu>::load(&dir("gpt_neo"), &dev()).unwrap().0,
        "gpt_neo",
    );
}

#[test]
fn sampled_rows_do_not_depend_on_the_rest_of_the_batch() {
    let gpt2 = Gpt2::<Cpu>::load(&dir("gpt2"), &dev()).unwrap().0;
    let neo = GptNeo::<Cpu>::load(&dir("gpt_neo"), &dev()).unwrap().0;
    let prompts = id_rows(&expected("padded")["gpt2"]["prompts"]);
    let o = SampleOptions {
        max_new_tokens: 12,
        temperature: 1.0,
        top_p: 0.9,
        no_repeat_ngram: 3,
        stop_tokens: vec![3],
        seed: 7,
        ..Default::default()
    };
    fn check<M: Decoder<Cpu>>(m: &M, prompts: &[Vec<u32>], o: &SampleOptions) {
        let streams = [40u64, 41, 42, 43];
        let batch = sample_streams(m, prompts, &streams, o, &dev()).unwrap();
        for (i, p) in prompts.iter().enumerate() {
            let alone =
                sample_streams(m, std::slice::from_ref(p), &streams[i..=i], o, &dev()).unwrap();
            assert_eq!(alone[0], batch[i], "row {i}");
        }
        // Another batch order: each row keeps its tokens with its stream.
        let rev: Vec<Vec<u32>> = prompts.iter().rev().cloned().collect();
        let rev_streams: Vec<u64> = streams.iter().rev().copied().collect();
        let mut back = sample_streams(m, &rev, &rev_streams, o, &dev()).unwrap();
        back.reverse();
        assert_eq!(back, batch);
        // `sample` uses the row index as the stream.
        assert_eq!(
            sample(m, prompts, o, &dev()).unwrap(),
            sample_streams(m, prompts, &[0, 1, 2, 3], o, &dev()).unwrap()
        );
        // Rows really are sampled (not greedy) and differ by stream.
        let same_prompt = vec![prompts[0].clone(); 4];
        let rows = sample_streams(m, &same_prompt, &streams, o, &dev()).unwrap();
        assert!(rows.iter().any(|r| r != &rows[0]), "{rows:?}");
    }
    check(&gpt2, &prompts, &o);
    check(&neo, &prompts, &o);
}

/// Delegates to a decoder but reorders its whole cache at every beam step, as a decoder
/// without [`Decoder::reorder_rows`] of its own does.
struct EagerReorder<'a, D>(&'a D);

impl<D: Decoder<Cpu>> Decoder<Cpu> for EagerReorder<'_, D> {
    type Cache = D::Cache;
    fn prefill(
        &self,
        prompt: burn::tensor::Tensor<Cpu, 2, burn::tensor::Int>,
        pads: &[usize],
    ) -> anyhow::Result<(burn::tensor::Tensor<Cpu, 2>, Self::Cache)> {
        self.0.prefill(prompt, pads)
    }
    fn step(
        &self,
        tokens: burn::tensor::Tensor<Cpu, 2, burn::tensor::Int>,
        cache: &mut Self::Cache,
    ) -> burn::tensor::Tensor<Cpu, 2> {
        self.0.step(tokens, cache)
    }
    fn reorder(
        &self,
        cache: &mut Self::Cache,
        rows: burn::tensor::Tensor<Cpu, 1, burn::tensor::Int>,
    ) {
        self.0.reorder(cache, rows)
    }
    fn vocab_size(&self) -> usize {
        self.0.vocab_size()
    }
    fn max_positions(&self) -> Option<usize> {
        self.0.max_positions()
    }
}

fn check_t5_padded(name: &str) {
    use hhi::models::t5::T5;
    let e = &expected("padded")[name];
    let (m, cfg) = T5::<Cpu>::load(&dir(name), &dev()).unwrap();
    let sources = id_rows(&e["sources"]);
    let s2s = Seq2Seq::from_sources(&m, &sources, &dev()).unwrap();
    let starts = vec![vec![cfg.decoder_start()]; sources.len()];
    let greedy_opts = SampleOptions {
        max_new_tokens: 10,
        stop_tokens: cfg.eos_token_id.into_iter().collect(),
        ..Default::default()
    };
    let greedy = sample(&s2s, &starts, &greedy_opts, &dev()).unwrap();
    assert_eq!(
        greedy,
        id_rows(&e["greedy"]),
        "{name}: padded greedy ids differ"
    );
    let opts = BeamOptions {
        num_beams: 4,
        max_new_tokens: 10,
        min_length: 1,
        length_penalty: 2.0,
        no_repeat_ngram: 3,
        early_stopping: true,
        eos: cfg.eos_token_id,
    };
    let batch = beam_search_batch(&s2s, &starts, &opts, &dev()).unwrap();
    let device = beam_search_with(&s2s, &starts, &opts, Selection::Device, &dev()).unwrap();
    assert_eq!(device, batch, "{name}: beams with device candidates differ");
    // Beams keep their prompt's source, so the T5 cache leaves the encoder rows as they
    // are; reordering them too must not change a bit.
    let eager = beam_search_batch(&EagerReorder(&s2s), &starts, &opts, &dev()).unwrap();
    assert_eq!(eager, batch, "{name}: the eager reorder gives other beams");
    let want = id_rows(&e["beam"]["sequences"]);
    let scores = e["beam"]["scores"].as_array().unwrap();
    let mut worst = 0f32;
    for (i, src) in sources.iter().enumerate() {
        let got: Vec<Vec<u32>> = batch[i].iter().map(|h| h.tokens.clone()).collect();
        assert_eq!(
            got,
            want[i * 4..i * 4 + 4],
            "{name}: beams of source {i} differ"
        );
        for (h, s) in batch[i].iter().zip(&scores[i * 4..i * 4 + 4]) {
            worst = worst.max((h.score - s.as_f64().unwrap() as f32).abs());
        }
        // Each source alone, unpadded and unmasked.
        let ids = burn::tensor::Tensor::<Cpu, 2, burn::tensor::Int>::from_data(
            burn::tensor::TensorData::new(
                src.iter().map(|&x| x as i64).collect::<Vec<_>>(),
                [1, src.len()],
            ),
            &dev(),
        );
        let one = Seq2Seq::new(&m, m.encode(ids));
        let g = sample(&one, &starts[..1], &greedy_opts, &dev()).unwrap();
        assert_eq!(
            g[0], greedy[i],
            "{name}: greedy of source {i} alone differs"
        );
        let alone = beam_search(&one, &starts[0], &opts, &dev()).unwrap();
        let alone_ids: Vec<Vec<u32>> = alone.iter().map(|h| h.tokens.clone()).collect();
        assert_eq!(alone_ids, got, "{name}: beams of source {i} alone differ");
        for (a, b) in alone.iter().zip(&batch[i]) {
            worst = worst.max((a.score - b.score).abs());
        }
    }
    println!("{name}: padded beam scores max |Δ| = {worst:e}");
    assert!(worst <= 1e-4, "{name}: beam scores differ by {worst}");
    // One encoded source serves every prompt row; two sources serve two rows each.
    let two = Seq2Seq::from_sources(&m, &sources[..2], &dev()).unwrap();
    let g = sample(&two, &vec![starts[0].clone(); 4], &greedy_opts, &dev()).unwrap();
    assert_eq!(
        g,
        [&greedy[0], &greedy[0], &greedy[1], &greedy[1]].map(Clone::clone)
    );
}

#[test]
fn t5_padded_sources_match_transformers_and_each_source_alone() {
    check_t5_padded("t5_v1_0");
    check_t5_padded("t5_v1_1");
}

#[test]
fn bad_generation_input_is_an_error_not_a_panic() {
    let m = Gpt2::<Cpu>::load(&dir("gpt2"), &dev()).unwrap().0;
    let o = SampleOptions::default();
    let b = BeamOptions {
        num_beams: 2,
        max_new_tokens: 3,
        min_length: 0,
        length_penalty: 1.0,
        no_repeat_ngram: 0,
        early_stopping: true,
        eos: None,
    };
    let err = |r: anyhow::Result<Vec<Vec<u32>>>| format!("{:#}", r.unwrap_err());
    assert!(err(sample(&m, &[], &o, &dev())).contains("no prompts"));
    assert!(err(sample(&m, &[vec![1], vec![]], &o, &dev())).contains("prompt 1 is empty"));
    assert!(err(sample(&m, &[vec![1, 400]], &o, &dev())).contains("token id 400"));
    let long = SampleOptions {
        max_new_tokens: 60,
        ..Default::default()
    };
    assert!(err(sample(&m, &[vec![1; 5]], &long, &dev())).contains("64 positions"));
    assert!(err(sample_streams(&m, &[vec![1]], &[0, 1], &o, &dev())).contains("streams"));
    assert!(beam_search(&m, &[], &b, &dev()).is_err());
    let zero = BeamOptions {
        num_beams: 0,
        ..b.clone()
    };
    assert!(beam_search(&m, &[1], &zero, &dev()).is_err());
    assert!(beam_search_batch(&m, &[], &b, &dev()).is_err());
    assert!(paper_beam(&m, &[1], 0, 3, 0, 1, &dev()).is_err());
    assert!(paper_beam(&m, &[1], 401, 3, 0, 1, &dev()).is_err());
    // T5: ragged decoder prompts, prompts that do not divide among the sources, bad sources.
    let t5 = hhi::models::t5::T5::<Cpu>::load(&dir("t5_v1_0"), &dev())
        .unwrap()
        .0;
    let s2s = Seq2Seq::from_sources(&t5, &[vec![5, 6, 1], vec![7, 1]], &dev()).unwrap();
    assert!(err(sample(&s2s, &[vec![0], vec![0, 5]], &o, &dev())).contains("equal lengths"));
    assert!(
        err(sample(&s2s, &[vec![0], vec![0], vec![0]], &o, &dev())).contains("3 decoder prompts")
    );
    assert!(Seq2Seq::from_sources(&t5, &[], &dev()).is_err());
    assert!(Seq2Seq::from_sources(&t5, &[vec![1], vec![]], &dev()).is_err());
    assert!(Seq2Seq::from_sources(&t5, &[vec![512]], &dev()).is_err());
}

/// Token selection on the device (what GPU backends use) gives the host path's tokens:
/// greedy with stop tokens, `min_new_tokens` and n-gram bans over ragged prompts, and
/// seeded top-p sampling with each row's own stream, with rows finishing at different
/// steps. Run here on the CPU backend.
#[test]
fn selecting_tokens_on_the_device_gives_the_host_tokens() {
    let gpt2 = Gpt2::<Cpu>::load(&dir("gpt2"), &dev()).unwrap().0;
    let neo = GptNeo::<Cpu>::load(&dir("gpt_neo"), &dev()).unwrap().0;
    let prompts = id_rows(&expected("padded")["gpt2"]["prompts"]);
    let streams = [40u64, 41, 42, 43];
    // Returns how many rows stopped on a stop token before `max_new_tokens`.
    fn check<M: Decoder<Cpu>>(m: &M, prompts: &[Vec<u32>], o: &SampleOptions) -> usize {
        let streams = [40u64, 41, 42, 43];
        let host = SampleOptions {
            selection: Selection::Host,
            ..o.clone()
        };
        let device = SampleOptions {
            selection: Selection::Device,
            ..o.clone()
        };
        let want = sample_streams(m, prompts, &streams, &host, &dev()).unwrap();
        let got = sample_streams(m, prompts, &streams, &device, &dev()).unwrap();
        assert_eq!(got, want, "{o:?}");
        // The CPU backend chooses on the host by default.
        assert_eq!(
            sample_streams(m, prompts, &streams, o, &dev()).unwrap(),
            want
        );
        for (r, p) in want.iter().zip(prompts) {
            let new = &r[p.len()..];
            let first_stop = new.iter().position(|t| o.stop_tokens.contains(t));
            assert!(first_stop.is_none_or(|i| i >= o.min_new_tokens), "{new:?}");
        }
        want.iter()
            .zip(prompts)
            .filter(|(r, p)| r.len() < p.len() + o.max_new_tokens)
            .count()
    }
    fn cases<M: Decoder<Cpu>>(m: &M, prompts: &[Vec<u32>], streams: &[u64]) -> Vec<SampleOptions> {
        let mut v = vec![
            SampleOptions {
                max_new_tokens: 12,
                ..Default::default()
            },
            SampleOptions {
                max_new_tokens: 16,
                min_new_tokens: 3,
                no_repeat_ngram: 2,
                ..Default::default()
            },
            SampleOptions {
                max_new_tokens: 12,
                temperature: 1.0,
                top_p: 0.9,
                no_repeat_ngram: 3,
                seed: 7,
                ..Default::default()
            },
            SampleOptions {
                max_new_tokens: 10,
                temperature: 0.7,
                top_p: 1.0,
                seed: 11,
                ..Default::default()
            },
        ];
        // Stop tokens that rows really produce: row 0's 4th new token and row 1's 6th
        // (when they differ from the first tokens), so rows finish at different steps.
        for o in &mut v {
            let free = sample_streams(m, prompts, streams, o, &dev()).unwrap();
            let new = |r: usize| &free[r][prompts[r].len()..];
            o.stop_tokens = vec![new(0)[3], new(1)[5]];
        }
        v
    }
    let mut early = 0;
    for o in cases(&gpt2, &prompts, &streams) {
        early += check(&gpt2, &prompts, &o);
    }
    for o in cases(&neo, &prompts, &streams) {
        early += check(&neo, &prompts, &o);
    }
    assert!(early >= 8, "only {early} rows stopped early");
}

/// The paper's beam search with its bookkeeping on the device (what GPU backends use:
/// `argtopk` twice a step, the cache reordered by device-side parents, one flag read every
/// 8 steps) gives the host path's hypotheses and scores: ragged prompts,
/// widths from 1 to 8, an end token that ends beams at different steps, and one that ends
/// every beam early. Run here on the CPU backend (CI runs it on wgpu through
/// `models_check`).
#[test]
fn paper_beam_on_the_device_gives_the_host_beams() {
    use hhi::models::generate::{PaperBeam, paper_beam_with};
    fn check<M: Decoder<Cpu>>(m: &M, prompts: &[Vec<u32>], what: &str) -> usize {
        let mut ended = 0;
        // An end token the beams really produce: the best beam's third token, with no end.
        let free = paper_beam_with(
            m,
            prompts,
            &PaperBeam {
                width: 4,
                max_new_tokens: 6,
                eos: u32::MAX,
                top_n: 1,
                selection: Selection::Host,
            },
            &dev(),
        )
        .unwrap();
        let common = free[0][0].tokens[0];
        let later = free[0][0].tokens[2];
        for (width, max_new_tokens, eos) in [
            (1, 5, later),
            (3, 12, later),
            (8, 11, later),
            (5, 20, common),
            (4, 9, u32::MAX),
        ] {
            let o = |selection| PaperBeam {
                width,
                max_new_tokens,
                eos,
                top_n: width,
                selection,
            };
            let want = paper_beam_with(m, prompts, &o(Selection::Host), &dev()).unwrap();
            let got = paper_beam_with(m, prompts, &o(Selection::Device), &dev()).unwrap();
            // Same tokens; scores equal but for last bits: the host path drops prompts
            // whose beams have all ended, and a smaller batch can take another CPU kernel
            // (products of up to 4 rows stream the weights once), which rounds otherwise.
            let tokens = |h: &Vec<Vec<Hypothesis>>| -> Vec<Vec<Vec<u32>>> {
                h.iter()
                    .map(|p| p.iter().map(|b| b.tokens.clone()).collect())
                    .collect()
            };
            assert_eq!(
                tokens(&got),
                tokens(&want),
                "{what}: width {width}, eos {eos}"
            );
            for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
                assert!(
                    (g.score - w.score).abs() <= 1e-6 * w.score.abs().max(1.0),
                    "{what}: width {width}, eos {eos}: score {} against {}",
                    g.score,
                    w.score
                );
            }
            assert_eq!(
                paper_beam_with(m, prompts, &o(Selection::Auto), &dev()).unwrap(),
                want,
                "the CPU backend keeps the beams on the host by default"
            );
            ended += want
                .iter()
                .flatten()
                .filter(|h| h.tokens.last() == Some(&eos) && h.tokens.len() < max_new_tokens)
                .count();
        }
        ended
    }
    let prompts = id_rows(&expected("padded")["gpt2"]["prompts"]);
    let gpt2 = Gpt2::<Cpu>::load(&dir("gpt2"), &dev()).unwrap().0;
    let neo = GptNeo::<Cpu>::load(&dir("gpt_neo"), &dev()).unwrap().0;
    let ended = check(&gpt2, &prompts, "gpt2") + check(&neo, &prompts, "gpt_neo");
    assert!(ended >= 10, "only {ended} beams ended before the last step");
    // The width-1 search of each prompt is the greedy decode up to the end token.
    let greedy = sample(
        &gpt2,
        &prompts,
        &SampleOptions {
            max_new_tokens: 5,
            ..Default::default()
        },
        &dev(),
    )
    .unwrap();
    let beams = paper_beam(&gpt2, &prompts[0], 1, 5, u32::MAX, 1, &dev()).unwrap();
    assert_eq!(beams[0].tokens, greedy[0][prompts[0].len()..]);
}
