//! A corrupted object is caught by audit and rebuilt by run; gc frees only what nothing
//! references.
mod common;
use common::*;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;

const P: &str = "pipelines/diamond.toml";

fn lock(p: &Project) -> toml::Value {
    toml::from_str(&p.read("pipelines/diamond.lock")).unwrap()
}

fn object(p: &Project, digest: &str) -> std::path::PathBuf {
    p.store()
        .join("objects")
        .join(&digest[..2])
        .join(&digest[2..])
}

#[test]
fn flipped_byte_is_named_by_audit_and_rebuilt_by_run() {
    let p = diamond();
    p.run(P);
    assert!(p.ok(&["audit", P]).contains("no problems"));
    let digest = lock(&p)["stages"]["upper"]["outputs"]["out"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = object(&p, &digest);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    f.seek(SeekFrom::Start(2)).unwrap();
    f.write_all(b"#").unwrap();
    drop(f);

    let out = p.hhi(&["audit", P]);
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out.stdout);
    assert!(
        s.contains(&format!("stage `upper`, output `out` ({})", &digest[..12])),
        "{s}"
    );
    assert!(s.contains("corrupt"), "{s}");
    let json: serde_json::Value =
        serde_json::from_slice(&p.hhi(&["audit", P, "--json"]).stdout).unwrap();
    assert_eq!(json["problems"][0]["stage"], "upper");

    assert!(p.ok(&["plan", P]).contains("output `out` corrupt"));
    let o = p.run(P);
    assert_eq!(o["upper"], "ran");
    assert_eq!(
        o["join"], "fresh",
        "rebuilt bytes are identical, so join is cut off"
    );
    assert!(p.ok(&["audit", P, "--all"]).contains("no problems"));
}

#[test]
fn missing_object_is_rebuilt() {
    let p = diamond();
    p.run(P);
    let digest = lock(&p)["stages"]["count"]["outputs"]["out"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    hhi::store::fsutil::remove_all(&object(&p, &digest)).unwrap();
    assert!(text(&p.hhi(&["audit", P]).stdout).contains("missing from the store"));
    assert_eq!(p.run(P)["count"], "ran");
}

#[test]
fn reproduce_reruns_into_a_scratch_store() {
    let p = diamond();
    p.run(P);
    let out = p.ok(&["audit", P, "--reproduce", "join"]);
    assert!(out.contains("reproduce `join`: bitwise identical"), "{out}");
    assert!(
        out.contains("no tensor code: bit-equality expected"),
        "{out}"
    );
    // A stage that is not deterministic is caught.
    p.write(
        "pipelines/diamond.toml",
        &DIAMOND.replace("cat \\\"$HHI_IN_a\\\" \\\"$HHI_IN_b\\\" >", "date +%N >"),
    );
    p.run(P);
    let out = p.hhi(&["audit", P, "--reproduce", "join"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("DIFFERENT"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn gc_frees_unreferenced_and_keeps_the_lock() {
    let p = diamond();
    p.run(P);
    let old = lock(&p)["stages"]["upper"]["outputs"]["out"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    p.write("pipelines/data/in.txt", "a different input\n");
    p.run(P);
    let new = lock(&p)["stages"]["upper"]["outputs"]["out"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(object(&p, &old).exists() && object(&p, &new).exists());
    let dry = p.ok(&["gc", "--keep", "1", "--dry-run"]);
    assert!(dry.contains("would remove"), "{dry}");
    assert!(object(&p, &old).exists(), "dry run removes nothing");
    let out = p.ok(&["gc", "--keep", "1"]);
    assert!(
        out.starts_with("removed ") && !out.contains(": 0 B freed"),
        "{out}"
    );
    assert!(!object(&p, &old).exists(), "unreferenced object collected");
    assert!(object(&p, &new).exists());
    assert!(p.ok(&["audit", P, "--all"]).contains("no problems"));
    assert!(p.run(P).values().all(|s| s == "fresh"));
    // Nothing left to free.
    assert!(
        p.ok(&["gc", "--keep", "1"])
            .contains("removed 0 object(s), 0 record(s)")
    );
}
