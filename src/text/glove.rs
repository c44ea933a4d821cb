//! Word vectors for the verb-similarity score of stage 10 (GloVe, as the paper uses
//! glove-wiki-gigaword-200).
//!
//! Both text layouts in circulation are read: GloVe's own (`word v1 v2 …` per line) and
//! word2vec's, which differs only by a first line `count dim`. Files of the 6B release run
//! to hundreds of megabytes, so they are read line by line into one flat buffer rather than
//! one allocation per word.

use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// A table of word vectors of one dimension.
#[derive(Debug, Clone)]
pub struct WordVectors {
    dim: usize,
    /// Row `i` is `data[i * dim .. (i + 1) * dim]`.
    data: Vec<f32>,
    /// Euclidean norm of each row, kept so that a cosine costs one dot product.
    norms: Vec<f32>,
    index: HashMap<String, usize>,
}

impl WordVectors {
    /// Reads a GloVe or word2vec text file; an error names the file and the 1-based line.
    pub fn read(path: &Path) -> Result<WordVectors> {
        let file = File::open(path)
            .with_context(|| format!("cannot open word vectors {}", path.display()))?;
        Self::from_reader(BufReader::new(file), &path.display().to_string())
    }

    /// Reads from any buffered source; `origin` is the name errors give (a path, usually).
    pub fn from_reader<R: BufRead>(reader: R, origin: &str) -> Result<WordVectors> {
        let mut dim: Option<(usize, usize)> = None; // (dim, line that set it)
        let mut header_dim: Option<usize> = None;
        let mut data = Vec::new();
        let mut index = HashMap::new();
        for (i, line) in reader.lines().enumerate() {
            let n = i + 1;
            let line = line.with_context(|| format!("{origin}:{n}: cannot read line"))?;
            let mut tokens = line.split_whitespace();
            let Some(word) = tokens.next() else {
                continue; // a blank line carries nothing, e.g. a trailing newline pair
            };
            let rest: Vec<&str> = tokens.collect();
            if n == 1
                && let Some(d) = word2vec_header(word, &rest)
            {
                header_dim = Some(d);
                continue;
            }
            match (dim, header_dim) {
                (Some((d, at)), _) if rest.len() != d => bail!(
                    "{origin}:{n}: `{word}` has {} values, but line {at} has {d}",
                    rest.len()
                ),
                (None, Some(d)) if rest.len() != d => bail!(
                    "{origin}:{n}: `{word}` has {} values, but the header (line 1) says {d}",
                    rest.len()
                ),
                (None, _) if rest.is_empty() => {
                    bail!("{origin}:{n}: `{word}` has no values")
                }
                (None, _) => dim = Some((rest.len(), n)),
                _ => {}
            }
            let start = data.len();
            for (j, t) in rest.iter().enumerate() {
                match t.parse::<f32>() {
                    Ok(v) if v.is_finite() => data.push(v),
                    _ => {
                        bail!(
                            "{origin}:{n}: value {} of `{word}` is not a finite number: `{t}`",
                            j + 1
                        )
                    }
                }
            }
            let row = index.len();
            if index.contains_key(word) {
                // Some releases repeat a word; the first vector is the one tools keep.
                data.truncate(start);
            } else {
                index.insert(word.to_string(), row);
            }
        }
        let Some((dim, _)) = dim else {
            bail!("{origin}: no word vectors in the file");
        };
        let norms = data
            .chunks_exact(dim)
            .map(|r| {
                r.iter()
                    .map(|&x| f64::from(x) * f64::from(x))
                    .sum::<f64>()
                    .sqrt() as f32
            })
            .collect();
        Ok(WordVectors {
            dim,
            data,
            norms,
            index,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of distinct words.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Exact, case-sensitive lookup: the file's spelling decides.
    pub fn contains(&self, word: &str) -> bool {
        self.index.contains_key(word)
    }

    /// Exact, case-sensitive lookup of a word's vector.
    pub fn get(&self, word: &str) -> Option<&[f32]> {
        self.index
            .get(word)
            .map(|&i| &self.data[i * self.dim..(i + 1) * self.dim])
    }

    /// Cosine similarity of two words, `None` when either is not in the table.
    ///
    /// Both words are lowercased first because GloVe 6B is an uncased vocabulary and
    /// predictions may carry capitals. A zero vector is similar to nothing (0).
    pub fn cosine(&self, a: &str, b: &str) -> Option<f32> {
        let ia = *self.index.get(&a.to_lowercase())?;
        let ib = *self.index.get(&b.to_lowercase())?;
        let (na, nb) = (self.norms[ia], self.norms[ib]);
        if na == 0.0 || nb == 0.0 {
            return Some(0.0);
        }
        let ra = &self.data[ia * self.dim..(ia + 1) * self.dim];
        let rb = &self.data[ib * self.dim..(ib + 1) * self.dim];
        let dot: f64 = ra
            .iter()
            .zip(rb)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        Some((dot / (f64::from(na) * f64::from(nb))) as f32)
    }
}

/// word2vec's first line, `count dim`: two integers and nothing else. A GloVe line always
/// starts with a word followed by `dim` floats, so a two-token integer line 1 would be a
/// one-dimensional table whose first word is a number; that is not a file anyone ships.
fn word2vec_header(first: &str, rest: &[&str]) -> Option<usize> {
    match rest {
        [d] => {
            first.parse::<usize>().ok()?;
            d.parse::<usize>().ok().filter(|&d| d > 0)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse(text: &str) -> Result<WordVectors> {
        WordVectors::from_reader(Cursor::new(text), "v.txt")
    }

    #[test]
    fn reads_glove_text() {
        let v = parse("hugging 1 0 0\nkissing 0.5 0.5 0\n\nshaking -1 2 3.25\n").unwrap();
        assert_eq!(v.dim(), 3);
        assert_eq!(v.len(), 3);
        assert!(v.contains("kissing"));
        assert!(!v.contains("Kissing"));
        assert_eq!(v.get("shaking").unwrap(), &[-1.0, 2.0, 3.25]);
    }

    #[test]
    fn skips_word2vec_header() {
        let v = parse("2 3\nhugging 1 0 0\nkissing 0.5 0.5 0\n").unwrap();
        assert_eq!(v.dim(), 3);
        assert_eq!(v.len(), 2);
        assert!(!v.contains("2"));
    }

    #[test]
    fn word2vec_header_dim_must_match() {
        let e = parse("2 4\nhugging 1 0 0\n").unwrap_err().to_string();
        assert!(e.contains("v.txt:2:") && e.contains("header"), "{e}");
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse("a 1 2\nb 1 2\nc 1\n").unwrap_err().to_string();
        assert!(e.starts_with("v.txt:3:"), "{e}");
        assert!(e.contains("line 1 has 2"), "{e}");
        let e = parse("a 1 2\nb 1 x\n").unwrap_err().to_string();
        assert!(e.starts_with("v.txt:2:") && e.contains("`x`"), "{e}");
        let e = parse("a 1 2\nb 1 2 3\n").unwrap_err().to_string();
        assert!(e.starts_with("v.txt:2:"), "{e}");
        let e = parse("a 1 nan\n").unwrap_err().to_string();
        assert!(e.starts_with("v.txt:1:"), "{e}");
        let e = parse("a\n").unwrap_err().to_string();
        assert!(e.starts_with("v.txt:1:") && e.contains("no values"), "{e}");
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(
            parse("")
                .unwrap_err()
                .to_string()
                .contains("no word vectors")
        );
        assert!(parse("\n\n").is_err());
        assert!(parse("10 50\n").is_err());
    }

    #[test]
    fn cosine_matches_hand_computation() {
        let v = parse("hugging 1 2 2\nkissing 2 0 0\nzero 0 0 0\n").unwrap();
        // (1*2 + 2*0 + 2*0) / (3 * 2) = 1/3
        let c = v.cosine("hugging", "kissing").unwrap();
        assert!((c - 1.0 / 3.0).abs() < 1e-6, "{c}");
        assert!((v.cosine("hugging", "hugging").unwrap() - 1.0).abs() < 1e-6);
        // Inputs are lowercased, stored words are not.
        assert!((v.cosine("HUGGING", "Kissing").unwrap() - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(v.cosine("hugging", "waving"), None);
        assert_eq!(v.cosine("waving", "hugging"), None);
        assert_eq!(v.cosine("zero", "hugging"), Some(0.0));
    }

    #[test]
    fn first_of_repeated_words_wins() {
        let v = parse("a 1 0\nb 0 1\na 0 1\n").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v.get("a").unwrap(), &[1.0, 0.0]);
        assert_eq!(v.get("b").unwrap(), &[0.0, 1.0]);
    }

    /// The committed cut must cover the toy world's verbs, or the toy run's verb
    /// similarity silently scores 0; rerun tools/cut_glove.py after adding a label.
    #[test]
    fn committed_toy_vectors_cover_toy_verbs() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/glove/toy.50d.txt");
        let v = WordVectors::read(&path).unwrap();
        assert_eq!(v.dim(), 50);
        for it in crate::toy::world::INTERACTIONS {
            // GloVe 6B splits hyphenated words, so it has no vector for these.
            if it.verb() != "arm-wrestling" {
                assert!(
                    v.contains(it.verb()),
                    "{} missing from {}",
                    it.verb(),
                    path.display()
                );
            }
        }
        for w in ["person", "man", "woman", "people"] {
            assert!(v.contains(w), "{w}");
        }
        let related = v.cosine("hugging", "kissing").unwrap();
        let unrelated = v.cosine("hugging", "fencing").unwrap();
        assert!(related > unrelated, "{related} {unrelated}");
    }

    #[test]
    fn read_names_the_file() {
        let dir = std::env::temp_dir().join(format!("hhi-glove-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.txt");
        std::fs::write(&p, "a 1 2\nb 1\n").unwrap();
        let e = WordVectors::read(&p).unwrap_err().to_string();
        assert!(e.contains("bad.txt:2:"), "{e}");
        let e = format!(
            "{:#}",
            WordVectors::read(&dir.join("missing.txt")).unwrap_err()
        );
        assert!(e.contains("missing.txt"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
