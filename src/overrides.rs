//! Experiment overrides: `--set STAGE.PARAM=VALUE` and sweeps over several values.
//!
//! An override edits the pipeline's text (with `toml_edit`, which keeps every other byte)
//! and the edited text goes through the same loader as the file: so an override is
//! validated exactly like the file (unknown parameter with "did you mean", type and range
//! errors) and changes exactly what the same edit of the file would (same keys, same plan
//! reasons). The edited line carries a `# --set …` comment, so that a diagnostic pointing
//! at it says where the value came from.

use crate::diag::did_you_mean;
use anyhow::{Context, bail};
use std::path::Path;
use toml_edit::{DocumentMut, Item, Value};

/// One `STAGE.PARAM[.KEY…]=VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// As the user wrote it (recorded with the run).
    pub raw: String,
    pub stage: String,
    /// The parameter, then keys into a table parameter (`env.LANG`).
    pub path: Vec<String>,
    /// The value as TOML text (`1e-5`, `"C"`, `[1, 2]`).
    pub value: String,
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}={}", self.stage, self.path.join("."), self.value)
    }
}

/// Splits `--set` text into its target and its values (several for a sweep:
/// `lr=1e-5,2e-5`). Commas inside brackets, braces or quotes belong to one value.
pub fn parse_set(raw: &str) -> anyhow::Result<Vec<Override>> {
    let Some((target, values)) = raw.split_once('=') else {
        bail!("--set {raw}: expected STAGE.PARAM=VALUE, e.g. --set captioner.lr=2e-5");
    };
    let parts: Vec<&str> = target.trim().split('.').collect();
    if parts.len() < 2 || parts.iter().any(|p| p.trim().is_empty()) {
        bail!(
            "--set {raw}: `{}` must name a stage and a parameter, e.g. captioner.lr",
            target.trim()
        );
    }
    let values = split_values(values);
    if values.iter().any(|v| v.trim().is_empty()) {
        bail!("--set {raw}: an empty value; give one (quote it for an empty string: \"\")");
    }
    Ok(values
        .into_iter()
        .map(|v| Override {
            raw: raw.to_string(),
            stage: parts[0].trim().to_string(),
            path: parts[1..].iter().map(|p| p.trim().to_string()).collect(),
            value: v.trim().to_string(),
        })
        .collect())
}

fn split_values(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, None);
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// The variants a command line asks for: the cartesian product of the `--set` values
/// (one variant when no `--set` has several), or one variant per line of a sweep file
/// (`STAGE.PARAM=VALUE` separated by spaces; `#` starts a comment), each with the plain
/// `--set`s added.
pub fn variants(sets: &[String], sweep: Option<&Path>) -> anyhow::Result<Vec<Vec<Override>>> {
    let mut axes: Vec<Vec<Override>> = Vec::new();
    for s in sets {
        axes.push(parse_set(s)?);
    }
    let mut out: Vec<Vec<Override>> = vec![Vec::new()];
    for axis in &axes {
        out = out
            .into_iter()
            .flat_map(|v| {
                axis.iter().map(move |o| {
                    let mut v = v.clone();
                    v.push(o.clone());
                    v
                })
            })
            .collect();
    }
    if let Some(file) = sweep {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the sweep file {}", file.display()))?;
        let mut lines = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut v = Vec::new();
            for word in line.split_whitespace() {
                let mut o =
                    parse_set(word).with_context(|| format!("{}:{}", file.display(), n + 1))?;
                if o.len() != 1 {
                    bail!(
                        "{}:{}: `{word}` lists several values; a sweep file gives one variant per line",
                        file.display(),
                        n + 1
                    );
                }
                v.push(o.remove(0));
            }
            lines.push(v);
        }
        if lines.is_empty() {
            bail!("the sweep file {} lists no variant", file.display());
        }
        out = lines
            .into_iter()
            .flat_map(|l| {
                out.iter().map(move |base| {
                    let mut v = l.clone();
                    v.extend(base.iter().cloned());
                    v
                })
            })
            .collect();
    }
    Ok(out)
}

/// Applies the overrides to the pipeline's text. Unknown stages are refused here (with the
/// closest name); everything else is left to the loader, which checks an override like
/// any value in the file.
pub fn apply(file: &Path, src: &str, overrides: &[Override]) -> anyhow::Result<String> {
    if overrides.is_empty() {
        return Ok(src.to_string());
    }
    let mut doc: DocumentMut = src.parse().with_context(|| {
        format!(
            "{} is not valid TOML, so --set cannot edit it (run `hhi plan` on it for the error)",
            file.display()
        )
    })?;
    let names: Vec<String> = doc
        .get("stages")
        .and_then(|s| s.as_table_like())
        .map(|t| t.iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default();
    for o in overrides {
        if !names.contains(&o.stage) {
            let hint = did_you_mean(&o.stage, names.iter().map(|s| s.as_str()))
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("stages: {}", names.join(", ")));
            bail!(
                "--set {}: no stage `{}` in {}\n  = help: {hint}",
                o.raw,
                o.stage,
                file.display()
            );
        }
        if o.path[0] == "kind" {
            bail!(
                "--set {}: a stage's kind is the pipeline's structure, not a parameter; edit the file",
                o.raw
            );
        }
        // A TOML value as written (`1e-5`, `true`, `[1, 2]`, `"x"`), else the text as a
        // string, so that `--set count.env.LANG=C` needs no quotes.
        let mut value: Value = o
            .value
            .parse()
            .unwrap_or_else(|_| Value::from(o.value.as_str()));
        let stage = &mut doc["stages"][o.stage.as_str()];
        let plain_table = stage.is_table();
        let mut item: &mut Item = stage;
        for (i, key) in o.path.iter().enumerate() {
            if i + 1 < o.path.len() {
                if item.get(key).is_none() {
                    item[key.as_str()] = Item::Value(Value::InlineTable(Default::default()));
                }
                item = &mut item[key.as_str()];
                if !item.is_table_like() {
                    bail!(
                        "--set {}: `{}` is not a table in {}, so it has no key `{}`",
                        o.raw,
                        o.path[..=i].join("."),
                        file.display(),
                        o.path[i + 1]
                    );
                }
            } else {
                if plain_table && o.path.len() == 1 {
                    value.decor_mut().set_suffix(format!("  # --set {}", o.raw));
                }
                item[key.as_str()] = Item::Value(value.clone());
            }
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_on_top_level_commas_only() {
        let o = parse_set("captioner.lr=1e-5, 2e-5,5e-5").unwrap();
        let v: Vec<&str> = o.iter().map(|o| o.value.as_str()).collect();
        assert_eq!(v, ["1e-5", "2e-5", "5e-5"]);
        let o = parse_set("s.xs=[1, 2],\"a,b\"").unwrap();
        let v: Vec<&str> = o.iter().map(|o| o.value.as_str()).collect();
        assert_eq!(v, ["[1, 2]", "\"a,b\""]);
        assert_eq!(o[0].path, ["xs"]);
        assert!(parse_set("lr=1").is_err());
        assert!(parse_set("a.b=").is_err());
        assert!(parse_set("a.b").is_err());
    }

    #[test]
    fn grids_are_cartesian() {
        let v = variants(
            &["a.x=1,2".into(), "b.y=3,4,5".into(), "c.z=0".into()],
            None,
        )
        .unwrap();
        assert_eq!(v.len(), 6);
        assert_eq!(
            v[5].iter().map(|o| o.to_string()).collect::<Vec<_>>(),
            ["a.x=2", "b.y=5", "c.z=0"]
        );
        assert_eq!(variants(&[], None).unwrap(), vec![vec![]]);
    }

    #[test]
    fn edits_keep_the_rest_of_the_file_and_mark_the_line() {
        let src = "# top\n[stages.count]\nkind = \"command\"  # why\nrun = \"x\"\nenv = { LANG = \"en\" }\n";
        let out = apply(
            Path::new("p.toml"),
            src,
            &[
                parse_set("count.run=y").unwrap().remove(0),
                parse_set("count.env.LANG=C").unwrap().remove(0),
                parse_set("count.env.TZ=UTC").unwrap().remove(0),
            ],
        )
        .unwrap();
        assert!(out.contains("kind = \"command\"  # why"), "{out}");
        assert!(out.contains("run = \"y\"  # --set count.run=y"), "{out}");
        let doc: DocumentMut = out.parse().unwrap();
        assert_eq!(doc["stages"]["count"]["env"]["LANG"].as_str(), Some("C"));
        assert_eq!(doc["stages"]["count"]["env"]["TZ"].as_str(), Some("UTC"));
        let err = apply(Path::new("p.toml"), src, &parse_set("cont.run=1").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no stage `cont`") && err.contains("did you mean `count`"),
            "{err}"
        );
    }
}
