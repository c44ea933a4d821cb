//! The report of `smoke.toml`, rendered by a real browser: headless Chromium with the
//! network off loads the page straight from the store and the test reads the DOM it built.
//! The page counts its own errors (failed images or scripts, exceptions, `console.error`)
//! on `<html data-errors>`, and marks `data-ready` once its last script (the run's facts)
//! has settled.
//!
//! Chromium comes from Debian's `chromium` package, which `.ci/run` installs (and then
//! sets HHI_REQUIRE_BROWSER=1, so that a browser that vanished fails instead of skipping).
//! Anywhere else the browser part is skipped with a printed reason when no Chromium is
//! found; the artifact checks before it run regardless.
mod common;

use common::{SMOKE, smoke_project, text};
use std::path::{Path, PathBuf};
use std::process::Command;

const SECTIONS: [&str; 8] = [
    "metrics",
    "predictions",
    "curves",
    "funnels",
    "samples",
    "diversity",
    "synthetic",
    "pipeline",
];

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HHI_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .map(PathBuf::from)
}

/// Whether this process may make a network namespace (root, usually): then the browser
/// runs in one with no interfaces but loopback.
fn can_unshare_net() -> bool {
    Command::new("unshare")
        .args(["-n", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The DOM of `page` after its scripts ran, and Chromium's stderr.
fn dump_dom(browser: &Path, page: &Path) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec![
        "--headless".into(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--no-first-run".into(),
        format!("--user-data-dir={}", profile.path().display()),
        // Networking off even without a namespace: no name resolves and every connection
        // goes to a proxy that is not there.
        "--host-resolver-rules=MAP * ~NOTFOUND".into(),
        "--proxy-server=http://127.0.0.1:9".into(),
        "--enable-logging=stderr".into(),
        "--v=0".into(),
        "--virtual-time-budget=15000".into(),
        "--dump-dom".into(),
        format!("file://{}", page.display()),
    ];
    let mut cmd = if can_unshare_net() {
        let mut c = Command::new("unshare");
        c.arg("-n").arg(browser);
        c
    } else {
        Command::new(browser)
    };
    args.retain(|a| !a.is_empty());
    let out = cmd
        .args(&args)
        .env("HOME", profile.path())
        .output()
        .expect("chromium starts");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

fn attr<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let html = &dom[dom.find("<html")?..];
    let tag = &html[..html.find('>')?];
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(tag[at..].split('"').next().unwrap_or(""))
}

/// The checks every rendering of the page must pass.
fn assert_page_loaded(dom: &str, stderr: &str, where_: &str) {
    assert_eq!(
        attr(dom, "data-ready"),
        Some("1"),
        "{where_}: the page's scripts did not finish\n{dom}"
    );
    assert_eq!(
        attr(dom, "data-errors"),
        None,
        "{where_}: the page counted errors: {}",
        dom.split("id=\"errors\"")
            .nth(1)
            .unwrap_or("")
            .chars()
            .take(600)
            .collect::<String>()
    );
    // Chromium also logs uncaught exceptions and console errors from the page itself.
    let console: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("error")))
        .collect();
    assert!(console.is_empty(), "{where_}: console errors: {console:?}");
    for id in SECTIONS {
        assert!(
            dom.contains(&format!("<section id=\"{id}\">")),
            "{where_}: no section `{id}`"
        );
    }
}

#[test]
fn the_smoke_report_is_a_complete_offline_page() {
    let p = smoke_project();
    let run: serde_json::Value = serde_json::from_str(&p.ok(&["run", SMOKE, "--json"])).unwrap();
    let pages = run["reports"].as_array().expect("the run lists its report");
    assert_eq!(pages.len(), 1, "{run}");
    let page = PathBuf::from(pages[0].as_str().unwrap());
    let folder = page.parent().unwrap();
    let store = p.store().canonicalize().unwrap();
    assert!(
        folder
            .canonicalize()
            .unwrap()
            .starts_with(store.join("objects")),
        "the page lies in the store: {}",
        page.display()
    );
    // `hhi show report` names the page too.
    let shown = p.ok(&["show", "report"]);
    assert!(
        shown.contains(&format!("open      {}", page.display())),
        "{shown}"
    );

    // The artifact: self-contained (no URL the page would fetch), images beside it.
    let html = std::fs::read_to_string(&page).unwrap();
    for remote in ["http://", "https://", "//cdn", "@import"] {
        let hits: Vec<&str> = html
            .match_indices(remote)
            .map(|(i, _)| &html[i.saturating_sub(40)..(i + 40).min(html.len())])
            .filter(|ctx| !ctx.contains("xmlns=\"http://www.w3.org/2000/svg\""))
            .collect();
        assert!(hits.is_empty(), "the page references {remote}: {hits:?}");
    }
    let items = std::fs::read_to_string(
        PathBuf::from(p.ok(&["path", "wenda.items"]).trim()).join("items.jsonl"),
    )
    .unwrap();
    let n_items = items.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(n_items > 10, "{n_items}");
    for src in html.split("<img src=\"").skip(1) {
        let rel = src.split('"').next().unwrap();
        assert!(folder.join(rel).is_file(), "missing image {rel}");
    }
    let div: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("diversity.json")).unwrap())
            .unwrap();
    for key in [
        "pseudo_labels",
        "top_1_predictions",
        "test_labels",
        "synthetic_quality",
    ] {
        assert!(div.get(key).is_some(), "diversity.json lacks {key}: {div}");
    }
    assert_eq!(div["test_labels"]["items"], n_items);

    // gc keeps the facts of a report it keeps, and drops those of reports it no longer has.
    let facts_dir = p.store().join("runs/reports");
    let stale = facts_dir.join(format!("{}.js", "0".repeat(64)));
    std::fs::write(&stale, "window.hhiPipeline = {};").unwrap();
    p.ok(&["gc"]);
    assert!(
        !stale.exists(),
        "gc left the facts of a report that is gone"
    );
    assert_eq!(std::fs::read_dir(&facts_dir).unwrap().count(), 1);

    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("HHI_REQUIRE_BROWSER").is_none(),
            "HHI_REQUIRE_BROWSER is set but no Chromium was found (set HHI_CHROMIUM to its path)"
        );
        eprintln!(
            "SKIPPED the browser part: no Chromium found (install Debian's `chromium`, or set HHI_CHROMIUM)"
        );
        return;
    };

    // In the store: every section, one card per test item, the run's facts loaded.
    let (dom, stderr) = dump_dom(&browser, &page);
    assert_page_loaded(&dom, &stderr, "in the store");
    let cards = dom.matches("<div class=\"card ").count();
    assert_eq!(cards, n_items, "one card per test item");
    // The filter script ran and counted them.
    assert!(
        dom.contains(&format!("{n_items} of {n_items} shown")),
        "the grid's filter did not run"
    );
    let pipeline = dom.split("<section id=\"pipeline\">").nth(1).unwrap();
    assert!(
        pipeline.contains("<table class=\"pipeline\">"),
        "{pipeline}"
    );
    for stage in ["world", "lm", "captioner", "predict", "evaluate", "report"] {
        assert!(
            pipeline.contains(&format!("<td>{stage}</td>")),
            "the pipeline table lacks `{stage}`"
        );
    }
    assert!(
        pipeline.contains("<svg"),
        "the pipeline section draws the graph"
    );

    // Copied out of the store, the page still loads cleanly and says where the facts are.
    let away = tempfile::tempdir().unwrap();
    let copy = away.path().join("report");
    copy_dir(folder, &copy);
    let (dom, stderr) = dump_dom(&browser, &copy.join("index.html"));
    assert_page_loaded(&dom, &stderr, "outside the store");
    assert!(dom.contains("opened outside its store"), "{dom}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}
