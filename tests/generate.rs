//! Generation against transformers: greedy and beam-search token ids (and beam scores) for
//! GPT-2 and GPT-Neo, plus properties of sampling and of the paper's beam search.
mod support;
use hhi::models::Cpu;
use hhi::models::generate::{
    BeamOptions, SampleOptions, beam_search, ngram_counts, paper_beam, sample,
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
    );
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
    let hyps = beam_search(m, &prompt[0], &opts, &dev());
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
    let a = sample(&m, &prompt, &o, &dev());
    assert_eq!(a, sample(&m, &prompt, &o, &dev()), "same seed, same tokens");
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
        ),
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
            stop_token: Some(stop),
            ..o.clone()
        },
        &dev(),
    );
    let cut = 3 + a[0][3..].iter().position(|&t| t == stop).unwrap();
    assert_eq!(s[0], a[0][..=cut], "row 0 ends at its first stop token");
    let s = sample(
        &m,
        &prompt,
        &SampleOptions {
            stop_token: Some(stop),
            min_new_tokens: 5,
            ..o.clone()
        },
        &dev(),
    );
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
    );
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
    );
    assert_eq!(greedy, nucleus);
}

#[test]
fn paper_beam_returns_sorted_unnormalised_scores() {
    let m = Gpt2::<Cpu>::load(&dir("gpt2"), &dev()).unwrap().0;
    let hyps = paper_beam(&m, &[5, 6, 7], 8, 6, 0, 4, &dev());
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
    use hhi::models::generate::Seq2Seq;
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
    let s2s = Seq2Seq {
        model: &m,
        enc: m.encode(ids),
    };
    let start = vec![vec![cfg.decoder_start()]];
    let eos = cfg.eos_token_id;
    let greedy = sample(
        &s2s,
        &start,
        &SampleOptions {
            max_new_tokens: 10,
            stop_token: eos,
            ..Default::default()
        },
        &dev(),
    );
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
    let hyps = beam_search(&s2s, &start[0], &opts, &dev());
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
