//! Stage 7: post-processing of the pseudo-labels and their sample weights.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// Words ending in `ing` that are not `-ing` verbs (the paper's list).
#[rustfmt::skip]
pub const ING_STOPWORDS: &[&str] = &[
    "during", "thing", "sing", "ring", "ding", "king", "zing", "bling", "cling", "bring",
    "swing", "wring", "sting",
];

/// The label form: `^_ [^ ]*ing [^_]*_[^_]*$`.
pub const STRICT_FORM: &str = r"^_ [^ ]*ing [^_]*_[^_]*$";

/// Substrings that disqualify a pseudo-label (so `photographing` too).
pub const FORBIDDEN_SUBSTRINGS: &[&str] = &["photo", "image", "picture"];

/// A whitespace token ending in `ing` that is not a stopword.
pub fn has_ing_word(text: &str) -> bool {
    text.split_whitespace()
        .any(|w| w.ends_with("ing") && !ING_STOPWORDS.contains(&w))
}

pub fn is_strict_form(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(STRICT_FORM).unwrap_or_else(|_| unreachable!("constant pattern")))
        .is_match(text)
}

pub fn has_forbidden_substring(text: &str) -> bool {
    FORBIDDEN_SUBSTRINGS.iter().any(|s| text.contains(s))
}

/// One pseudo-labelled item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelItem {
    pub id: String,
    pub caption: String,
    pub label: String,
    /// Set by `postprocess`.
    #[serde(default)]
    pub weight: f64,
}

/// Items left after each step of `postprocess`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funnel {
    pub input: usize,
    pub after_ignored_ids: usize,
    pub after_test_ids: usize,
    pub after_ing_word: usize,
    pub after_strict_form: usize,
    pub after_forbidden_substring: usize,
}

impl Funnel {
    /// The steps as (name, items left), in order.
    pub fn steps(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("input", self.input),
            ("ignored_ids", self.after_ignored_ids),
            ("test_ids", self.after_test_ids),
            ("ing_word", self.after_ing_word),
            ("strict_form", self.after_strict_form),
            ("forbidden_substring", self.after_forbidden_substring),
        ]
    }
}

/// Removes ignored and test ids, then labels without an `-ing` word, not in the strict
/// form, or holding a forbidden substring; sets the sample weights of what is left.
pub fn postprocess(
    items: &[LabelItem],
    ignored_ids: &HashSet<String>,
    test_ids: &HashSet<String>,
) -> (Vec<LabelItem>, Funnel) {
    postprocess_with(items, ignored_ids, test_ids, WEIGHT_EXPONENT)
}

/// The paper's exponent applied to the balanced weights (`--weight_exp`).
pub const WEIGHT_EXPONENT: f64 = 0.25;

/// [`postprocess`] with another weight exponent (1: fully class-balanced, 0: uniform).
pub fn postprocess_with(
    items: &[LabelItem],
    ignored_ids: &HashSet<String>,
    test_ids: &HashSet<String>,
    weight_exponent: f64,
) -> (Vec<LabelItem>, Funnel) {
    let mut funnel = Funnel {
        input: items.len(),
        ..Funnel::default()
    };
    let mut kept: Vec<&LabelItem> = items
        .iter()
        .filter(|i| !ignored_ids.contains(&i.id))
        .collect();
    funnel.after_ignored_ids = kept.len();
    kept.retain(|i| !test_ids.contains(&i.id));
    funnel.after_test_ids = kept.len();
    kept.retain(|i| has_ing_word(&i.label));
    funnel.after_ing_word = kept.len();
    kept.retain(|i| is_strict_form(&i.label));
    funnel.after_strict_form = kept.len();
    kept.retain(|i| !has_forbidden_substring(&i.label));
    funnel.after_forbidden_substring = kept.len();
    let labels: Vec<&str> = kept.iter().map(|i| i.label.as_str()).collect();
    let captions: Vec<&str> = kept.iter().map(|i| i.caption.as_str()).collect();
    let weights = sample_weights_with(&labels, &captions, weight_exponent);
    let out = kept
        .into_iter()
        .zip(weights)
        .map(|(item, weight)| LabelItem {
            weight,
            ..item.clone()
        })
        .collect();
    (out, funnel)
}

/// The paper's sample weights: w = 1/count(label); scaled so that sum(w) = N; w = w^0.25;
/// w = w / mean(w); then w = w / (items sharing the caption's text hash), not
/// renormalised. `labels` and `captions` are parallel; a missing caption counts as empty.
pub fn sample_weights(labels: &[&str], captions: &[&str]) -> Vec<f64> {
    sample_weights_with(labels, captions, WEIGHT_EXPONENT)
}

/// [`sample_weights`] with another exponent in place of 0.25.
pub fn sample_weights_with(labels: &[&str], captions: &[&str], exponent: f64) -> Vec<f64> {
    let n = labels.len();
    if n == 0 {
        return Vec::new();
    }
    let mut label_counts: HashMap<&str, usize> = HashMap::new();
    for l in labels {
        *label_counts.entry(l).or_insert(0) += 1;
    }
    let mut w: Vec<f64> = labels
        .iter()
        .map(|l| 1.0 / label_counts[l] as f64)
        .collect();
    let sum: f64 = w.iter().sum();
    let scale = n as f64 / sum;
    for x in &mut w {
        *x = (*x * scale).powf(exponent);
    }
    let mean = w.iter().sum::<f64>() / n as f64;
    let hashes: Vec<blake3::Hash> = (0..n)
        .map(|i| blake3::hash(captions.get(i).copied().unwrap_or("").as_bytes()))
        .collect();
    let mut hash_counts: HashMap<blake3::Hash, usize> = HashMap::new();
    for h in &hashes {
        *hash_counts.entry(*h).or_insert(0) += 1;
    }
    w.iter()
        .zip(&hashes)
        .map(|(x, h)| x / mean / hash_counts[h] as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, caption: &str, label: &str) -> LabelItem {
        LabelItem {
            id: id.into(),
            caption: caption.into(),
            label: label.into(),
            weight: 0.0,
        }
    }

    #[test]
    fn ing_words() {
        assert!(has_ing_word("_ hugging _"));
        assert!(!has_ing_word("_ during _ thing king"));
        for w in ING_STOPWORDS {
            assert!(!has_ing_word(&format!("_ {w} _")), "{w}");
        }
        // Only whole whitespace tokens count: `bringing` is an -ing verb.
        assert!(has_ing_word("_ bringing _"));
        assert!(!has_ing_word("_ hugging, _"));
    }

    #[test]
    fn strict_form() {
        assert!(is_strict_form("_ shaking hands with _"));
        assert!(is_strict_form("_ hugging _"));
        assert!(is_strict_form("_ giving _ a high five"));
        assert!(!is_strict_form("_ and _ shaking hands"));
        assert!(!is_strict_form("_ hugs _"));
        assert!(!is_strict_form("_ hugging _ and _"));
        assert!(!is_strict_form("_ hugging"));
        assert!(!is_strict_form("the _ hugging _"));
        assert!(!is_strict_form("_ is hugging _"));
    }

    #[test]
    fn forbidden_substrings() {
        assert!(has_forbidden_substring("_ photographing _"));
        assert!(has_forbidden_substring("_ posing for a picture with _"));
        assert!(has_forbidden_substring("_ imagery with _ image"));
        assert!(!has_forbidden_substring("_ hugging _"));
    }

    #[test]
    fn weights_hand_computed() {
        // labels a, a, b, c; captions x, y, x, z (N = 4).
        // 1/count: 1/2, 1/2, 1, 1 (sum 3); scaled by 4/3: 2/3, 2/3, 4/3, 4/3 (sum 4).
        // ^0.25: (2/3)^0.25 = 0.9036020, (4/3)^0.25 = 1.0745699.
        // mean = (2 * 0.9036020 + 2 * 1.0745699) / 4 = 0.9890860.
        // / mean: 0.9135728, 0.9135728, 1.0864272, 1.0864272.
        // Caption x is shared by items 0 and 2, so both are halved:
        // 0.4567864, 0.9135728, 0.5432136, 1.0864272 (sum 3.0, not renormalised).
        let w = sample_weights(&["a", "a", "b", "c"], &["x", "y", "x", "z"]);
        let expected = [0.4567864, 0.9135728, 0.5432136, 1.0864272];
        assert_eq!(w.len(), 4);
        for (got, want) in w.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert!(sample_weights(&[], &[]).is_empty());
        // All labels distinct and captions distinct: every weight is 1.
        let w = sample_weights(&["a", "b"], &["x", "y"]);
        assert!(w.iter().all(|x| (x - 1.0).abs() < 1e-12));
        // Exponent 1: fully balanced (labels a, a, b: 3/4, 3/4, 3/2 before the mean).
        let w = sample_weights_with(&["a", "a", "b"], &["x", "y", "z"], 1.0);
        let want = [0.75, 0.75, 1.5];
        for (got, want) in w.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn postprocess_funnel_and_weights() {
        let items = vec![
            item("1", "c1", "_ hugging _"),
            item("2", "c2", "_ hugging _"),
            item("ign", "c3", "_ hugging _"),
            item("test", "c4", "_ hugging _"),
            item("5", "c5", "_ during _"),
            item("6", "c6", "_ and _ hugging"),
            item("7", "c7", "_ photographing _"),
            item("8", "c1", "_ kissing _"),
        ];
        let ignored: HashSet<String> = ["ign".to_string()].into();
        let test: HashSet<String> = ["test".to_string()].into();
        let (out, funnel) = postprocess(&items, &ignored, &test);
        assert_eq!(
            funnel.steps().iter().map(|s| s.1).collect::<Vec<_>>(),
            vec![8, 7, 6, 5, 4, 3]
        );
        let ids: Vec<&str> = out.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, vec!["1", "2", "8"]);
        let expected = sample_weights(
            &["_ hugging _", "_ hugging _", "_ kissing _"],
            &["c1", "c2", "c1"],
        );
        let got: Vec<f64> = out.iter().map(|i| i.weight).collect();
        assert_eq!(got, expected);
    }
}
