//! Tokenizer ids equal transformers' on strings with unicode, names and the paper's
//! `[NAME]` / `_` forms; BPE training is deterministic and round-trips.
mod support;
use hhi::text::tokenizer::Tokenizer;
use support::dir;

fn check(name: &str) {
    let tok = Tokenizer::load(&dir(name)).unwrap();
    let want: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir(name).join("tokens.json")).unwrap()).unwrap();
    assert!(want.len() >= 6);
    for (text, ids) in &want {
        let ids: Vec<u32> = ids
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(tok.encode(text).unwrap(), ids, "{text:?}");
    }
}

#[test]
fn byte_level_bpe_matches_transformers() {
    check("gpt2");
}

#[test]
fn t5_sentencepiece_matches_transformers() {
    check("t5_tokenizer");
    let tok = Tokenizer::load(&dir("t5_tokenizer")).unwrap();
    assert_eq!(tok.vocab_size(), 32100, "32,000 pieces + 100 sentinels");
    assert_eq!(
        *tok.encode("_ hugging _").unwrap().last().unwrap(),
        1,
        "</s> appended"
    );
}

#[test]
fn trained_bpe_is_deterministic_and_round_trips() {
    let corpus: Vec<String> = [
        "Alex shaking hands with Bailey",
        "_ giving _ a high five",
        "Ünïcödé café 東京",
    ]
    .iter()
    .cycle()
    .take(60)
    .map(|s| s.to_string())
    .collect();
    let a = Tokenizer::train_bpe(&corpus, 300, &["<|endoftext|>"]).unwrap();
    let b = Tokenizer::train_bpe(&corpus, 300, &["<|endoftext|>"]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    a.save(&tmp.path().join("a.json")).unwrap();
    b.save(&tmp.path().join("b.json")).unwrap();
    assert_eq!(
        std::fs::read(tmp.path().join("a.json")).unwrap(),
        std::fs::read(tmp.path().join("b.json")).unwrap()
    );
    assert_eq!(a.token_id("<|endoftext|>"), Some(0));
    assert!(a.vocab_size() <= 300);
    for s in [
        "Alex shaking hands with Bailey",
        "something unseen: zebra 🦓",
    ] {
        let ids = a.encode(s).unwrap();
        assert_eq!(a.decode(&ids).unwrap(), s);
    }
    let reloaded = Tokenizer::load(&tmp.path().join("a.json")).unwrap();
    assert_eq!(
        reloaded.encode("_ giving _ a high five").unwrap(),
        a.encode("_ giving _ a high five").unwrap()
    );
}
