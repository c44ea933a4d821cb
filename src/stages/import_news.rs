//! `import_news`: news articles as JSONL (a file, or a folder of `.jsonl` files) → `Corpus`.
//!
//! CC-News is most practical as one JSON object per article with the text in a field
//! (`text`; news-please dumps call it `maintext`: set `text_field`). Each record keeps its
//! `id` field when it has one, else `<file>:<line>`.

use crate::context::StageContext;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::stages::io::{self, Doc, Problems, StageLog};
use crate::types::ArtifactType;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

pub struct ImportNews;

/// The JSONL files of the input, in path order (a folder is searched recursively).
fn jsonl_files(input: &Path) -> Result<Vec<PathBuf>> {
    if input.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![input.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("jsonl") || x.eq_ignore_ascii_case("json"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        bail!("no .jsonl files in {}", input.display());
    }
    Ok(out)
}

fn id_of(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl StageKind for ImportNews {
    fn name(&self) -> &'static str {
        "import_news"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "reads news articles (JSONL with a text field; a file or a folder of them) into a Corpus \
         {id, text}; bad lines counted and skipped or fatal (`on_error`)"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            io::on_error_param(),
            ParamSpec::string(
                "text_field",
                "text",
                "the field holding the article text (`maintext` in news-please dumps)",
            ),
            ParamSpec::string(
                "id_field",
                "id",
                "the field holding the article id; without it the id is <file>:<line> (a single file: <line>)",
            ),
            ParamSpec::int(
                "max_chars",
                1_000_000,
                "a longer article is a bad record (`huge_text`)",
            )
            .range(1.0, 1e12)
            .unit("characters"),
            ParamSpec::int("max_articles", 0, "stop after this many articles (0: all)")
                .range(0.0, 1e12),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "data",
            ArtifactType::Any,
            "a JSONL file of articles or a folder of .jsonl files (a Corpus is accepted too)",
        )]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "articles",
            ArtifactType::Corpus,
            "JSONL {id, text}, in input order",
        )]
    }

    fn run(&self, ctx: &mut StageContext) -> Result<()> {
        let input = ctx.input("data")?.to_path_buf();
        let text_field = ctx.params.str("text_field").to_string();
        let id_field = ctx.params.str("id_field").to_string();
        let max_chars = usize::try_from(ctx.params.int("max_chars")).unwrap_or(usize::MAX);
        let limit = usize::try_from(ctx.params.int("max_articles")).unwrap_or(0);
        let mut problems = Problems::default();
        let mut log = StageLog::open(ctx);
        let files = jsonl_files(&input)?;
        let mut docs: Vec<Doc> = Vec::new();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut empty = 0usize;
        ctx.progress().set_message("reading");
        'files: for f in &files {
            // Records without an id are named by file and line (a single file: its line;
            // its name in the store is a digest, not the user's name).
            let prefix = match f.strip_prefix(&input) {
                Ok(r) if !r.as_os_str().is_empty() => format!("{}:", r.display()),
                _ => String::new(),
            };
            let file =
                std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
            for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
                let at = format!("{prefix}{}", i + 1);
                let line = line.with_context(|| format!("reading {}", f.display()))?;
                let Ok(text) = std::str::from_utf8(&line) else {
                    problems.add("bad_utf8", at);
                    continue;
                };
                if text.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Value = match serde_json::from_str(text) {
                    Ok(v) => v,
                    Err(e) => {
                        problems.add("bad_json", format!("{at}: {e}"));
                        continue;
                    }
                };
                let Some(body) = v.get(&text_field).and_then(|t| t.as_str()) else {
                    let keys = v
                        .as_object()
                        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_else(|| "not an object".into());
                    problems.add(
                        "no_text",
                        format!("{at}: no string `{text_field}` ({keys})"),
                    );
                    continue;
                };
                if body.trim().is_empty() {
                    empty += 1;
                    continue;
                }
                let n = body.chars().count();
                if n > max_chars {
                    problems.add("huge_text", format!("{at}: {n} characters"));
                    continue;
                }
                let id = v
                    .get(&id_field)
                    .and_then(id_of)
                    .unwrap_or_else(|| at.clone());
                if let Some(first) = seen.get(&id) {
                    problems.add(
                        "duplicate_id",
                        format!("{id} ({first} and {at}; the first is kept)"),
                    );
                    continue;
                }
                seen.insert(id.clone(), at);
                docs.push(Doc {
                    id,
                    text: body.to_string(),
                });
                if limit > 0 && docs.len() >= limit {
                    break 'files;
                }
            }
        }
        problems.finish(ctx, &mut log, "news records")?;
        io::write_jsonl(ctx.output("articles")?, &docs)?;
        ctx.figure("files", files.len() as f64);
        ctx.figure("articles", docs.len() as f64);
        ctx.figure("empty_texts", empty as f64);
        let chars: usize = docs.iter().map(|d| d.text.chars().count()).sum();
        ctx.figure("chars", chars as f64);
        log.line(format!(
            "{} articles from {} files ({empty} empty skipped)",
            docs.len(),
            files.len()
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Value;
    use crate::stages::io::testing::run_kind;

    #[test]
    fn messy_jsonl_folder() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("news");
        std::fs::create_dir_all(data.join("b")).unwrap();
        std::fs::write(
            data.join("a.jsonl"),
            b"{\"id\": \"x1\", \"text\": \"First.\\nMaria Lopez (left) meets Tom.\"}\n\
{\"text\": \"no id here\"}\n\
not json\n\
{\"id\": \"x1\", \"text\": \"dup\"}\n\
{\"id\": 7, \"maintext\": \"wrong field\"}\n\
{\"id\": \"x2\", \"text\": \"caf\xe9\"}\n\
{\"id\": \"x3\", \"text\": \"  \"}\n",
        )
        .unwrap();
        std::fs::write(
            data.join("b/c.jsonl"),
            "{\"id\": 5, \"text\": \"“quoted”\"}\n",
        )
        .unwrap();
        std::fs::write(data.join("readme.txt"), "ignored").unwrap();
        let (r, fig, out) = run_kind(&ImportNews, dir.path(), &[], &[("data", data.clone())]);
        r.unwrap();
        let docs: Vec<Doc> = io::read_jsonl(&out["articles"]).unwrap();
        let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["x1", "a.jsonl:2", "5"]);
        assert_eq!(docs[2].text, "“quoted”");
        assert_eq!(fig["bad_bad_json"], 1.0);
        assert_eq!(fig["bad_bad_utf8"], 1.0);
        assert_eq!(fig["bad_duplicate_id"], 1.0);
        assert_eq!(fig["bad_no_text"], 1.0);
        assert_eq!(fig["empty_texts"], 1.0);

        let d2 = tempfile::tempdir().unwrap();
        let (r, _, out) = run_kind(
            &ImportNews,
            d2.path(),
            &[
                ("text_field", Value::Str("maintext".into())),
                ("max_articles", Value::Int(1)),
            ],
            &[("data", data.join("a.jsonl"))],
        );
        r.unwrap();
        let docs: Vec<Doc> = io::read_jsonl(&out["articles"]).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].id, "7");
    }
}
