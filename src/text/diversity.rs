//! The analyses the paper asks of a run: is the captioner as diverse as the pseudo-labels it
//! learnt from, or has it collapsed onto the frequent ones; and do the synthetic
//! interactions and the pseudo-labels cover the verbs the benchmark asks about. Pure
//! functions over label strings (compared in [`eval::normalize`]d form, verbs by
//! [`eval::verb`]), so the numbers in `diversity.json` can be recomputed from any two lists.

use super::eval;
use serde::Serialize;
use std::collections::BTreeMap;

/// How often each distinct string occurs.
pub type Counts = BTreeMap<String, usize>;

/// Counts of the normalized labels.
pub fn label_counts<'a>(labels: impl IntoIterator<Item = &'a str>) -> Counts {
    let mut c = Counts::new();
    for l in labels {
        *c.entry(eval::normalize(l)).or_default() += 1;
    }
    c
}

/// Counts of the labels' verbs (lower-cased); a label without a verb counts as none.
pub fn verb_counts<'a>(labels: impl IntoIterator<Item = &'a str>) -> Counts {
    let mut c = Counts::new();
    for l in labels {
        if let Some(v) = eval::verb(l) {
            *c.entry(v.to_lowercase()).or_default() += 1;
        }
    }
    c
}

/// Shannon entropy in bits of the distribution the counts describe (0 for none).
pub fn entropy_bits(counts: &Counts) -> f64 {
    let total: usize = counts.values().sum();
    if total == 0 {
        return 0.0;
    }
    let t = total as f64;
    counts
        .values()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = n as f64 / t;
            -p * p.log2()
        })
        .sum::<f64>()
        // One label sums to -0.0, which would print as "-0.00".
        + 0.0
}

/// The counts sorted from the most to the least frequent (ties by name, so the order is
/// stable): the y values of a rank-frequency plot.
pub fn ranked(counts: &Counts) -> Vec<(&str, usize)> {
    let mut v: Vec<(&str, usize)> = counts.iter().map(|(k, &n)| (k.as_str(), n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v
}

/// The diversity of one list of labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diversity {
    pub items: usize,
    pub distinct: usize,
    pub distinct_verbs: usize,
    /// Entropy of the label distribution, in bits.
    pub entropy_bits: f64,
    pub verb_entropy_bits: f64,
    /// The share of the items taken by the single most frequent label.
    pub top_share: f64,
    /// Labels that occur once: the tail a collapsed model loses first.
    pub singletons: usize,
}

pub fn diversity<'a>(labels: impl IntoIterator<Item = &'a str> + Clone) -> Diversity {
    let lc = label_counts(labels.clone());
    let vc = verb_counts(labels);
    let items: usize = lc.values().sum();
    let top = lc.values().copied().max().unwrap_or(0);
    Diversity {
        items,
        distinct: lc.len(),
        distinct_verbs: vc.len(),
        entropy_bits: entropy_bits(&lc),
        verb_entropy_bits: entropy_bits(&vc),
        top_share: if items == 0 {
            0.0
        } else {
            top as f64 / items as f64
        },
        singletons: lc.values().filter(|&&n| n == 1).count(),
    }
}

/// Jensen–Shannon divergence in bits between two count distributions: 0 for the same
/// shape, 1 for disjoint supports. Symmetric and finite even where one side has no mass,
/// which KL is not.
pub fn js_divergence_bits(p: &Counts, q: &Counts) -> f64 {
    let (tp, tq) = (
        p.values().sum::<usize>() as f64,
        q.values().sum::<usize>() as f64,
    );
    if tp == 0.0 || tq == 0.0 {
        return if tp == tq { 0.0 } else { 1.0 };
    }
    let mut keys: Vec<&String> = p.keys().chain(q.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut js = 0.0;
    for k in keys {
        let a = p.get(k).copied().unwrap_or(0) as f64 / tp;
        let b = q.get(k).copied().unwrap_or(0) as f64 / tq;
        let m = (a + b) / 2.0;
        if a > 0.0 {
            js += 0.5 * a * (a / m).log2();
        }
        if b > 0.0 {
            js += 0.5 * b * (b / m).log2();
        }
    }
    js.max(0.0)
}

/// The share of `target`'s mass whose key `source` has at all: how much of what the
/// benchmark asks about the training data ever shows.
pub fn coverage(source: &Counts, target: &Counts) -> f64 {
    let total: usize = target.values().sum();
    if total == 0 {
        return 0.0;
    }
    let covered: usize = target
        .iter()
        .filter(|(k, _)| source.get(*k).is_some_and(|&n| n > 0))
        .map(|(_, &n)| n)
        .sum();
    covered as f64 / total as f64
}

/// How one training-data distribution of verbs compares with the benchmark's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerbFit {
    pub items: usize,
    pub distinct_verbs: usize,
    /// Share of the test items whose verb occurs here at all.
    pub test_coverage: f64,
    /// Jensen–Shannon divergence from the test verbs, in bits (0 = the same shape).
    pub js_divergence_bits: f64,
}

pub fn verb_fit(verbs: &Counts, test_verbs: &Counts) -> VerbFit {
    VerbFit {
        items: verbs.values().sum(),
        distinct_verbs: verbs.len(),
        test_coverage: coverage(verbs, test_verbs),
        js_divergence_bits: js_divergence_bits(verbs, test_verbs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_uniform_and_collapsed_lists() {
        let uniform = ["_ a _", "_ b _", "_ c _", "_ d _"];
        let d = diversity(uniform.iter().copied());
        assert_eq!((d.items, d.distinct, d.singletons), (4, 4, 4));
        assert!((d.entropy_bits - 2.0).abs() < 1e-12);
        assert!((d.top_share - 0.25).abs() < 1e-12);
        let collapsed = ["_ hugging _", "_  Hugging _", "_ hugging _"];
        let d = diversity(collapsed.iter().copied());
        assert_eq!((d.distinct, d.distinct_verbs), (1, 1));
        assert_eq!(d.entropy_bits, 0.0);
        assert_eq!(d.top_share, 1.0);
    }

    #[test]
    fn ranks_are_by_count_then_name() {
        let c = label_counts(["_ b _", "_ a _", "_ b _", "_ c _"]);
        let r: Vec<_> = ranked(&c)
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect();
        assert_eq!(
            r,
            [
                ("_ b _".into(), 2),
                ("_ a _".into(), 1),
                ("_ c _".into(), 1)
            ]
        );
    }

    #[test]
    fn divergence_and_coverage_bounds() {
        let p = verb_counts(["_ hugging _", "_ kissing _"]);
        let q = verb_counts(["_ boxing with _", "_ chasing _"]);
        assert!((js_divergence_bits(&p, &q) - 1.0).abs() < 1e-12);
        assert_eq!(js_divergence_bits(&p, &p), 0.0);
        assert_eq!(coverage(&p, &q), 0.0);
        let r = verb_counts(["_ hugging _", "_ hugging _", "_ chasing _"]);
        // Two of r's three items have a verb p shows.
        assert!((coverage(&p, &r) - 2.0 / 3.0).abs() < 1e-12);
        let fit = verb_fit(&p, &r);
        assert_eq!((fit.items, fit.distinct_verbs), (2, 2));
        assert!(fit.js_divergence_bits > 0.0 && fit.js_divergence_bits < 1.0);
    }
}
