//! The shared remote cache, against a real S3-compatible server: `.ci/run` starts moto's
//! server mode on the loopback (`tools/s3_server.sh start`, bucket `hhi-test`) and sets
//! HHI_TEST_S3 to its endpoint and HHI_REQUIRE_S3=1. Elsewhere the S3 tests print why they
//! skipped. The `file://` tests need no server and always run. Nothing here mocks
//! `object_store`: bytes go over HTTP to a server that stores them.
mod common;

use common::{Project, SMOKE, files_under, outcomes, smoke_project, text};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as OsPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BUCKET: &str = "hhi-test";
/// Planted as the secret key: it must appear nowhere hhi writes.
const SECRET: &str = "hhiPlantedSecret9f3c2e7aNeverPrintMe";

fn endpoint() -> Option<String> {
    match std::env::var("HHI_TEST_S3") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            assert!(
                std::env::var_os("HHI_REQUIRE_S3").is_none(),
                "HHI_REQUIRE_S3 is set but HHI_TEST_S3 names no S3 endpoint"
            );
            eprintln!(
                "SKIPPED: no S3 server (tools/s3_server.sh start, then HHI_TEST_S3=http://127.0.0.1:9390)"
            );
            None
        }
    }
}

/// A prefix of the shared bucket for one test.
fn fresh_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}

/// hhi with S3 settings from the environment only, and a HOME without ~/.aws.
fn s3_cmd(p: &Project, ep: &str, args: &[&str]) -> Command {
    let mut c = p.cmd(args);
    c.env("AWS_ACCESS_KEY_ID", "hhitestkey")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_ENDPOINT_URL", ep)
        .env("AWS_REGION", "us-east-1")
        .env("HOME", p.path("home"))
        .env_remove("HHI_REMOTE")
        .env_remove("AWS_PROFILE");
    c
}

fn s3_hhi(p: &Project, ep: &str, args: &[&str]) -> Output {
    s3_cmd(p, ep, args).output().expect("hhi runs")
}

fn s3_ok(p: &Project, ep: &str, args: &[&str]) -> String {
    common::succeeded(args, s3_hhi(p, ep, args))
}

/// The bucket, for reading and damaging what hhi put there.
struct Bucket {
    s3: AmazonS3,
    rt: tokio::runtime::Runtime,
}

impl Bucket {
    fn new(ep: &str) -> Bucket {
        let s3 = AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_endpoint(ep)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("hhitestkey")
            .with_secret_access_key("unused")
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Bucket { s3, rt }
    }

    fn list(&self, prefix: &str) -> Vec<String> {
        use futures::TryStreamExt;
        let p = OsPath::from(prefix);
        let mut v: Vec<String> = self
            .rt
            .block_on(self.s3.list(Some(&p)).try_collect::<Vec<_>>())
            .unwrap()
            .into_iter()
            .map(|m| m.location.to_string())
            .collect();
        v.sort();
        v
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.rt
            .block_on(async { self.s3.get(&OsPath::from(key)).await?.bytes().await })
            .ok()
            .map(|b| b.to_vec())
    }

    fn put(&self, key: &str, bytes: Vec<u8>) {
        self.rt
            .block_on(self.s3.put(&OsPath::from(key), PutPayload::from(bytes)))
            .unwrap();
    }
}

fn object_key(prefix: &str, digest: &str) -> String {
    format!("{prefix}/objects/{}/{}", &digest[..2], &digest[2..])
}

/// Every record under `prefix` names only objects the remote holds (folders: their
/// manifest and every file it lists). Returns the stages of the records found.
fn assert_remote_consistent(b: &Bucket, prefix: &str) -> Vec<String> {
    let keys = b.list(prefix);
    let mut stages = Vec::new();
    for k in keys.iter().filter(|k| k.contains("/records/")) {
        let rec: serde_json::Value = serde_json::from_slice(&b.get(k).unwrap()).unwrap();
        stages.push(rec["stage"].as_str().unwrap().to_string());
        for (port, o) in rec["outputs"].as_object().unwrap() {
            let d = o["digest"].as_str().unwrap();
            let ok = object_key(prefix, d);
            assert!(
                keys.contains(&ok),
                "record {k} names {port} = {d}, not on the remote"
            );
            if o["object"] == "dir" {
                let manifest = String::from_utf8(b.get(&ok).unwrap()).unwrap();
                for line in manifest.lines().filter(|l| l.starts_with("f ")) {
                    let fd = line.split(' ').nth(3).unwrap();
                    assert!(
                        keys.contains(&object_key(prefix, fd)),
                        "folder {d} lists file {fd}, not on the remote"
                    );
                }
            }
        }
    }
    stages
}

#[test]
fn a_second_store_downloads_the_smoke_run_executes_nothing_and_gets_the_same_digests() {
    let Some(ep) = endpoint() else { return };
    let remote = format!("s3://{BUCKET}/{}", fresh_prefix("smoke"));
    let a = smoke_project();
    let ran = outcomes(&s3_ok(
        &a,
        &ep,
        &["run", SMOKE, "--json", "--remote", &remote],
    ));
    assert!(ran.values().all(|o| o == "ran"), "{ran:?}");

    let b = smoke_project();
    // `plan` names the remote hits: every stage, since each key's inputs come from the
    // remote records of the stages above it.
    let plan = s3_ok(&b, &ep, &["plan", SMOKE, "--remote", &remote]);
    for line in plan.lines() {
        assert!(
            line.starts_with("remote ") && line.contains("remote hit"),
            "not a remote hit: {line}\n{plan}"
        );
    }
    let out = s3_hhi(&b, &ep, &["run", SMOKE, "--json", "--remote", &remote]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let got = outcomes(&text(&out.stdout));
    assert!(
        got.values().all(|o| o == "fetched"),
        "B executed something: {got:?}"
    );
    assert_eq!(json["remote"]["fetched_stages"], ran.len());
    assert_eq!(
        b.read("pipelines/smoke.lock"),
        a.read("pipelines/smoke.lock")
    );
    // Downloaded artifacts are ordinary store objects: a full local audit re-hashes them.
    s3_ok(&b, &ep, &["audit", SMOKE, "--all"]);
    let again = outcomes(&s3_ok(
        &b,
        &ep,
        &["run", SMOKE, "--json", "--remote", &remote],
    ));
    assert!(again.values().all(|o| o == "fresh"), "{again:?}");
    s3_ok(&b, &ep, &["audit", SMOKE, "--remote", &remote]);
}

/// A stage with a file output and a folder output.
const TWO_KINDS: &str = r#"
[stages.gen]
kind = "command"
run = "mkdir -p \"$HHI_OUT_dir/sub\"; printf 'alpha alpha alpha\n' > \"$HHI_OUT_dir/sub/a.txt\"; printf 'gamma\n' > \"$HHI_OUT_dir/c.txt\"; printf 'beta beta beta\n' > \"$HHI_OUT_file\""
outputs = ["dir", "file"]

[stages.use]
kind = "command"
run = "cat \"$HHI_IN_d/sub/a.txt\" \"$HHI_IN_f\" > \"$HHI_OUT_out\""
inputs = { d = "gen.dir", f = "gen.file" }
outputs = ["out"]
"#;

fn blake3_hex(b: &[u8]) -> String {
    blake3::hash(b).to_hex().to_string()
}

#[test]
fn corrupt_or_truncated_remote_objects_are_detected_never_published_and_the_stage_reruns() {
    let Some(ep) = endpoint() else { return };
    let prefix = fresh_prefix("corrupt");
    let remote = format!("s3://{BUCKET}/{prefix}");
    let a = Project::new();
    a.write("p.toml", TWO_KINDS);
    s3_ok(&a, &ep, &["run", "p.toml", "--remote", &remote]);
    let bucket = Bucket::new(&ep);

    // A flipped byte in the file output, and a file inside the folder output cut short.
    let file_key = object_key(&prefix, &blake3_hex(b"beta beta beta\n"));
    let mut bytes = bucket.get(&file_key).expect("the file output was uploaded");
    bytes[0] ^= 0x20;
    let flipped = blake3_hex(&bytes);
    bucket.put(&file_key, bytes);
    let inner_key = object_key(&prefix, &blake3_hex(b"alpha alpha alpha\n"));
    let short = b"alpha".to_vec();
    let truncated = blake3_hex(&short);
    bucket.put(&inner_key, short);

    let b = Project::new();
    b.write("p.toml", TWO_KINDS);
    let out = s3_hhi(&b, &ep, &["run", "p.toml", "--json", "--remote", &remote]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = outcomes(&text(&out.stdout));
    assert_eq!(got["gen"], "ran", "the corrupt entry was used: {got:?}");
    let err = text(&out.stderr);
    assert!(err.contains("corrupt"), "{err}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let corrupt = json["remote"]["corrupt"].to_string();
    assert!(
        corrupt.contains(&blake3_hex(b"beta beta beta\n")[..12])
            && corrupt.contains(&blake3_hex(b"alpha alpha alpha\n")[..12]),
        "both damaged objects are named: {corrupt}"
    );
    // Neither damaged content reached B's store, under any name, nor is left in staging.
    for f in files_under(&b.store()) {
        let content = std::fs::read(&f).unwrap();
        let d = blake3_hex(&content);
        assert!(
            d != flipped && d != truncated,
            "{} holds damaged bytes",
            f.display()
        );
    }
    assert!(files_under(&b.store().join("tmp")).is_empty());
    assert_eq!(
        b.read_output("use.out"),
        "alpha alpha alpha\nbeta beta beta\n"
    );
    s3_ok(&b, &ep, &["audit", "p.toml", "--all"]);
    // B rebuilt the stage and re-uploaded the damaged objects over the bad ones.
    let audit = s3_ok(&b, &ep, &["audit", "p.toml", "--remote", &remote]);
    assert!(audit.contains("gen") && audit.contains("ok"), "{audit}");
    assert_eq!(
        bucket.get(&file_key).unwrap(),
        b"beta beta beta\n".to_vec(),
        "the remote was repaired"
    );
}

#[test]
fn audit_remote_names_a_damaged_object() {
    let Some(ep) = endpoint() else { return };
    let prefix = fresh_prefix("audit");
    let remote = format!("s3://{BUCKET}/{prefix}");
    let a = Project::new();
    a.write("p.toml", TWO_KINDS);
    s3_ok(&a, &ep, &["run", "p.toml", "--remote", &remote]);
    s3_ok(&a, &ep, &["audit", "p.toml", "--remote", &remote]);
    let bucket = Bucket::new(&ep);
    let d = blake3_hex(b"gamma\n");
    bucket.put(&object_key(&prefix, &d), b"gamma?\n".to_vec());
    let out = s3_hhi(&a, &ep, &["audit", "p.toml", "--remote", &remote]);
    assert_eq!(out.status.code(), Some(1));
    let msg = text(&out.stdout);
    assert!(msg.contains("`gen`") && msg.contains(&d[..12]), "{msg}");
}

#[test]
fn killing_hhi_mid_upload_leaves_no_record_whose_objects_are_missing() {
    let Some(ep) = endpoint() else { return };
    let prefix = fresh_prefix("kill");
    let remote = format!("s3://{BUCKET}/{prefix}");
    let p = Project::new();
    // 400 files of 256 KiB: 100 MiB to upload, so the upload is well under way, not done,
    // when the local record appears and hhi is killed.
    p.write(
        "p.toml",
        r#"
[stages.big]
kind = "command"
run = "mkdir \"$HHI_OUT_dir\"; i=0; while [ $i -lt 400 ]; do head -c 262144 /dev/urandom > \"$HHI_OUT_dir/f$i\"; i=$((i+1)); done"
outputs = ["dir"]
"#,
    );
    let mut child = s3_cmd(&p, &ep, &["run", "p.toml", "--remote", &remote])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the stage is recorded here and its upload has begun (some objects on
    // the remote), so the kill lands mid-upload.
    let bucket = Bucket::new(&ep);
    let records = p.store().join("records");
    let objects = format!("{prefix}/objects");
    let start = Instant::now();
    while files_under(&records).is_empty() || bucket.list(&objects).len() < 10 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the upload never began"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "hhi exited before it was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let stages = assert_remote_consistent(&bucket, &prefix);
    assert!(
        stages.is_empty(),
        "the upload finished before the kill; the test did not interrupt it"
    );
    let objects = bucket.list(&format!("{prefix}/objects")).len();
    assert!(objects > 0, "no object was uploaded before the kill");
    assert!(objects < 401, "{objects} objects: the upload was complete");

    // The next run finds the stage fresh here and finishes the upload.
    let again = outcomes(&s3_ok(
        &p,
        &ep,
        &["run", "p.toml", "--json", "--remote", &remote],
    ));
    assert_eq!(again["big"], "fresh");
    assert_eq!(assert_remote_consistent(&bucket, &prefix), vec!["big"]);
    s3_ok(&p, &ep, &["audit", "p.toml", "--remote", &remote]);
}

#[test]
fn a_remote_that_is_down_is_a_warning_or_with_remote_required_an_error() {
    // A port nobody listens on: connection refused, at once.
    let down = "http://127.0.0.1:9";
    let p = Project::new();
    p.write("p.toml", TWO_KINDS);
    let out = s3_hhi(&p, down, &["run", "p.toml", "--remote", "s3://hhi-test/x"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("remote cache s3://hhi-test/x unavailable, running without it"),
        "{err}"
    );
    let q = Project::new();
    q.write("p.toml", TWO_KINDS);
    let out = s3_hhi(
        &q,
        down,
        &[
            "run",
            "p.toml",
            "--remote",
            "s3://hhi-test/x",
            "--remote-required",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("is required (--remote-required)"), "{err}");
    assert!(
        !q.store().join("records").exists() || files_under(&q.store().join("records")).is_empty(),
        "nothing ran"
    );
}

#[test]
fn credentials_never_appear_in_anything_hhi_writes() {
    let Some(ep) = endpoint() else { return };
    let remote = format!("s3://{BUCKET}/{}", fresh_prefix("secret"));
    let a = Project::new();
    a.write("p.toml", TWO_KINDS);
    let mut said = String::new();
    let mut run = |p: &Project, args: &[&str]| {
        let out = s3_cmd(p, &ep, args)
            .env("HHI_LOG", "trace")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        said.push_str(&text(&out.stdout));
        said.push_str(&text(&out.stderr));
    };
    run(&a, &["run", "p.toml", "--remote", &remote]);
    run(&a, &["plan", "p.toml", "--remote", &remote]);
    run(&a, &["show", "gen"]);
    run(&a, &["show", "gen", "--json"]);
    run(&a, &["push", "p.toml", "--remote", &remote]);
    run(&a, &["audit", "p.toml", "--remote", &remote]);
    let b = Project::new();
    b.write("p.toml", TWO_KINDS);
    b.write("p.lock", &a.read("p.lock"));
    run(&b, &["pull", "p.toml", "--remote", &remote]);
    run(&b, &["run", "p.toml", "--remote", &remote, "--json"]);
    assert!(said.len() > 1000, "trace logging produced output");
    assert!(!said.contains(SECRET), "the secret was printed");
    for p in [&a, &b] {
        for f in files_under(p.dir.path()) {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(SECRET),
                "{} holds the secret",
                f.display()
            );
        }
    }
    let bucket = Bucket::new(&ep);
    let prefix = remote
        .trim_start_matches(&format!("s3://{BUCKET}/"))
        .to_string();
    for k in bucket.list(&prefix) {
        assert!(!String::from_utf8_lossy(&bucket.get(&k).unwrap()).contains(SECRET));
    }
}

#[test]
fn credentials_come_from_the_aws_files_when_the_environment_has_none() {
    let Some(ep) = endpoint() else { return };
    let remote = format!("s3://{BUCKET}/{}", fresh_prefix("awsfiles"));
    let p = Project::new();
    p.write("p.toml", TWO_KINDS);
    p.write(
        "home/.aws/credentials",
        &format!("[default]\naws_access_key_id = fromfile\naws_secret_access_key = {SECRET}\n"),
    );
    p.write(
        "home/.aws/config",
        &format!("[default]\nregion = eu-west-1\nendpoint_url = {ep}\n"),
    );
    let out = p
        .cmd(&[
            "run",
            "p.toml",
            "--json",
            "--remote",
            &remote,
            "--remote-required",
        ])
        .env("HOME", p.path("home"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["remote"]["uploaded_stages"], 2, "{json}");
}

#[test]
fn a_file_remote_shares_results_between_stores_and_push_pull_move_a_lock() {
    let shared = tempfile::tempdir().unwrap();
    let remote = format!("file://{}", shared.path().display());
    let a = common::diamond();
    let ran = outcomes(&a.ok(&[
        "run",
        "pipelines/diamond.toml",
        "--json",
        "--remote",
        &remote,
    ]));
    assert!(ran.values().all(|o| o == "ran"));
    let b = common::diamond();
    let got = outcomes(&b.ok(&[
        "run",
        "pipelines/diamond.toml",
        "--json",
        "--remote",
        &remote,
    ]));
    assert!(got.values().all(|o| o == "fetched"), "{got:?}");
    assert_eq!(
        b.read("pipelines/diamond.lock"),
        a.read("pipelines/diamond.lock")
    );

    // push / pull: C computes without a remote and pushes; D pulls only `upper` and what it
    // needs, then everything.
    let other = tempfile::tempdir().unwrap();
    let remote2 = format!("file://{}", other.path().display());
    let c = common::diamond();
    c.write("pipelines/data/in.txt", "something else\n");
    c.ok(&["run", "pipelines/diamond.toml"]);
    let pushed = c.ok(&["push", "pipelines/diamond.toml", "--remote", &remote2]);
    assert_eq!(pushed.matches("pushed").count(), 4, "{pushed}");
    let again = c.ok(&["push", "pipelines/diamond.toml", "--remote", &remote2]);
    assert_eq!(again.matches("already on the remote").count(), 4, "{again}");
    let d = common::diamond();
    d.write("pipelines/data/in.txt", "something else\n");
    std::fs::copy(
        c.path("pipelines/diamond.lock"),
        d.path("pipelines/diamond.lock"),
    )
    .unwrap();
    let pulled = d.ok(&[
        "pull",
        "pipelines/diamond.toml",
        "--remote",
        &remote2,
        "--target",
        "upper",
    ]);
    assert!(
        pulled.contains("src") && pulled.contains("upper"),
        "{pulled}"
    );
    assert!(!pulled.contains("join"), "{pulled}");
    d.ok(&["pull", "pipelines/diamond.toml", "--remote", &remote2]);
    let plan = d.plan_json("pipelines/diamond.toml");
    assert!(
        plan["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "fresh"),
        "{plan}"
    );
    let read = |p: &Project| {
        let path = p.ok(&["path", "join.out", "--pipeline", "pipelines/diamond.toml"]);
        std::fs::read_to_string(path.trim()).unwrap()
    };
    assert_eq!(read(&d), read(&c));
}

#[test]
fn the_remote_comes_from_the_pipeline_or_hhi_remote_and_never_carries_credentials() {
    let shared = tempfile::tempdir().unwrap();
    let url = format!("file://{}", shared.path().display());
    let p = Project::new();
    p.write(
        "p.toml",
        &format!("[pipeline]\nremote = \"{url}\"\n{TWO_KINDS}"),
    );
    let json: serde_json::Value =
        serde_json::from_str(&p.ok(&["run", "p.toml", "--json"])).unwrap();
    assert_eq!(json["remote"]["url"], url.as_str());
    // --no-remote wins over the file; HHI_REMOTE over the file too.
    let q = Project::new();
    q.write(
        "p.toml",
        &format!("[pipeline]\nremote = \"{url}\"\n{TWO_KINDS}"),
    );
    let got = outcomes(&q.ok(&["run", "p.toml", "--json", "--no-remote"]));
    assert_eq!(got["gen"], "ran");
    let elsewhere = tempfile::tempdir().unwrap();
    let r = Project::new();
    r.write(
        "p.toml",
        &format!("[pipeline]\nremote = \"{url}\"\n{TWO_KINDS}"),
    );
    let out = r
        .cmd(&["run", "p.toml", "--json"])
        .env(
            "HHI_REMOTE",
            format!("file://{}", elsewhere.path().display()),
        )
        .output()
        .unwrap();
    assert_eq!(outcomes(&text(&out.stdout))["gen"], "ran");

    let bad = Project::new();
    bad.write(
        "p.toml",
        "[pipeline]\nname = \"x\"\nremote = \"s3://AKIAEXAMPLE:topsecret@bucket/p\"\n",
    );
    let out = bad.hhi(&["plan", "p.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("p.toml:3") && err.contains("must not carry credentials"),
        "{err}"
    );
    assert!(!err.contains("topsecret"), "{err}");
}
