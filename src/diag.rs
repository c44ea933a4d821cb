//! Diagnostics that point into a pipeline file: `file:line:col`, the source line, a caret
//! under the offending span and an optional hint.
//!
//! Hand-written rather than pulled from `annotate-snippets`/`miette`: the format is ~40
//! lines, it must stay stable because tests and users grep it, and it needs no colour.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in an input file.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
    source_line: String,
    underline: usize,
}

impl Diagnostic {
    /// Masks `secret` in the quoted source line (same width, so the underline still fits):
    /// a diagnostic about credentials in a file must not print them again.
    pub fn redact(&mut self, secret: &str) {
        if !secret.is_empty() {
            let mask = "*".repeat(secret.chars().count());
            self.source_line = self.source_line.replace(secret, &mask);
        }
    }

    pub fn new(file: &Path, src: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        let start = span.start.min(src.len());
        let line_start = src[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line_end = src[start..]
            .find('\n')
            .map(|i| start + i)
            .unwrap_or(src.len());
        let line = src[..start].matches('\n').count() + 1;
        let col = src[line_start..start].chars().count() + 1;
        let end = span.end.clamp(start, line_end);
        let underline = src[start..end].chars().count().max(1);
        Diagnostic {
            file: file.to_path_buf(),
            line,
            col,
            message: message.into(),
            hint: None,
            source_line: src[line_start..line_end].trim_end_matches('\r').to_string(),
            underline,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `file:line:col` — the form editors and terminals turn into a link.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gutter = self.line.to_string().len();
        writeln!(f, "error: {}", self.message)?;
        writeln!(f, "{:gutter$}--> {}", "", self.location())?;
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {}", self.line, self.source_line)?;
        write!(
            f,
            "{:gutter$} | {}{}",
            "",
            " ".repeat(self.col - 1),
            "^".repeat(self.underline)
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n{:gutter$} = help: {}", "", h)?;
        }
        Ok(())
    }
}

/// All the problems found while loading one pipeline. Loading reports every problem it can
/// find in one pass, like a compiler, rather than stopping at the first.
#[derive(Debug, Clone)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        let n = self.0.len();
        write!(
            f,
            "\n\nerror: could not load pipeline: {n} problem{}",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate, if it is close enough to be a typo: few edits (transpositions
/// count as one, so `gne` finds `gen`) or a high Jaro-Winkler similarity.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let max_edits = 1 + word.chars().count() / 4;
    candidates
        .into_iter()
        .filter(|c| {
            strsim::osa_distance(word, c) <= max_edits || strsim::jaro_winkler(word, c) > 0.85
        })
        .min_by(|a, b| {
            let (da, db) = (strsim::osa_distance(word, a), strsim::osa_distance(word, b));
            da.cmp(&db)
                .then(strsim::jaro_winkler(word, b).total_cmp(&strsim::jaro_winkler(word, a)))
        })
}

/// The `= help:` text for an unknown name: `found(closest)` when a candidate is close enough
/// to be a typo (see [`did_you_mean`]), else `otherwise()` (usually the list of valid names).
pub fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    found: impl FnOnce(&str) -> String,
    otherwise: impl FnOnce() -> String,
) -> String {
    match did_you_mean(word, candidates) {
        Some(s) => found(s),
        None => otherwise(),
    }
}

/// [`suggest`] with the usual wording: "did you mean `closest`?".
pub fn suggest_name<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    otherwise: impl FnOnce() -> String,
) -> String {
    suggest(
        word,
        candidates,
        |s| format!("did you mean `{s}`?"),
        otherwise,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_line_and_column() {
        let src = "a = 1\n  bad = 2\n";
        let d = Diagnostic::new(Path::new("p.toml"), src, 8..11, "oops");
        assert_eq!((d.line, d.col), (2, 3));
        let text = d.to_string();
        assert!(text.contains("p.toml:2:3"), "{text}");
        assert!(text.contains("  ^^^"), "{text}");
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("temprature", ["temperature", "top_p"]),
            Some("temperature")
        );
        assert_eq!(did_you_mean("zzz", ["temperature", "top_p"]), None);
    }

    #[test]
    fn suggest_falls_back() {
        let none = || "known: a, b".to_string();
        assert_eq!(
            suggest_name("temprature", ["temperature"], none),
            "did you mean `temperature`?"
        );
        assert_eq!(suggest_name("zzz", ["temperature"], none), "known: a, b");
        assert_eq!(
            suggest("gne", ["gen"], |s| format!("did you mean `{s}.out`?"), none),
            "did you mean `gen.out`?"
        );
    }
}
