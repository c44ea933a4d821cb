//! Where the remote is and how to reach it: the URL (from `--remote`, `HHI_REMOTE` or the
//! pipeline's `[pipeline] remote`), and S3 credentials from the environment or the standard
//! AWS files, never from the pipeline file.

use anyhow::{Context, bail};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as OsPath;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A remote's address: an S3 bucket and prefix, or a folder on a shared filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteUrl {
    S3 { bucket: String, prefix: String },
    File { dir: PathBuf },
}

impl std::fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            RemoteUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            RemoteUrl::File { dir } => write!(f, "file://{}", dir.display()),
        }
    }
}

/// Parses `s3://bucket[/prefix]` or `file:///absolute/folder`. Credentials in the URL are
/// refused: the URL is written in pipeline files, lock files and logs.
pub fn parse_url(s: &str) -> Result<RemoteUrl, String> {
    let url = url::Url::parse(s).map_err(|e| {
        format!("`{s}` is not a URL ({e}); use s3://bucket/prefix or file:///shared/folder")
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the remote URL must not carry credentials (`user:…@`): set \
                    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use ~/.aws/credentials"
                .into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{s}`: a remote URL takes no `?query` or `#fragment`; settings such as the \
             endpoint come from AWS_ENDPOINT_URL and AWS_REGION"
        ));
    }
    match url.scheme() {
        "s3" | "s3a" => {
            let bucket = url.host_str().unwrap_or_default().to_string();
            if bucket.is_empty() {
                return Err(format!("`{s}` names no bucket: use s3://bucket/prefix"));
            }
            let prefix = url.path().trim_matches('/').to_string();
            Ok(RemoteUrl::S3 { bucket, prefix })
        }
        "file" => {
            if url.host_str().is_some_and(|h| !h.is_empty()) {
                return Err(format!(
                    "`{s}`: a file remote is a local path, file:///absolute/folder (three slashes)"
                ));
            }
            let dir = url
                .to_file_path()
                .map_err(|()| format!("`{s}` is not an absolute file path"))?;
            Ok(RemoteUrl::File { dir })
        }
        other => Err(format!(
            "remote scheme `{other}:` is not supported; use s3://bucket/prefix or \
             file:///shared/folder"
        )),
    }
}

/// How long a request may take before the remote counts as down: a cache that hangs is
/// worse than no cache, so these are far below `object_store`'s defaults (3 minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_TIMEOUT: Duration = Duration::from_secs(20);

/// Opens the object store for `url`, returning it with the prefix every key goes under.
pub fn open(url: &RemoteUrl) -> anyhow::Result<(Arc<dyn ObjectStore>, OsPath)> {
    match url {
        RemoteUrl::File { dir } => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the remote folder {}", dir.display()))?;
            let fs = LocalFileSystem::new_with_prefix(dir)
                .with_context(|| format!("opening the remote folder {}", dir.display()))?;
            Ok((Arc::new(fs), OsPath::default()))
        }
        RemoteUrl::S3 { bucket, prefix } => {
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
            let files = aws_files();
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            if let (None, Some(id), Some(secret)) = (
                env("AWS_ACCESS_KEY_ID"),
                files.get("aws_access_key_id"),
                files.get("aws_secret_access_key"),
            ) {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
                if let Some(t) = files.get("aws_session_token") {
                    b = b.with_token(t);
                }
            }
            let region = env("AWS_REGION")
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .or_else(|| files.get("region").cloned());
            b = b.with_region(region.unwrap_or_else(|| "us-east-1".into()));
            let endpoint = env("AWS_ENDPOINT_URL_S3")
                .or_else(|| env("AWS_ENDPOINT_URL"))
                .or_else(|| env("AWS_ENDPOINT"))
                .or_else(|| files.get("endpoint_url").cloned());
            if let Some(e) = &endpoint {
                b = b.with_endpoint(e);
                // A local S3-compatible server (MinIO, moto, Ceph) is usually plain HTTP
                // and addressed by path, not by a bucket subdomain.
                if e.starts_with("http://") {
                    b = b.with_allow_http(true);
                }
                b = b.with_virtual_hosted_style_request(false);
            }
            let client = object_store::ClientOptions::new()
                .with_connect_timeout(CONNECT_TIMEOUT)
                .with_allow_http(
                    endpoint
                        .as_deref()
                        .is_some_and(|e| e.starts_with("http://")),
                );
            let retry = object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: RETRY_TIMEOUT,
                ..Default::default()
            };
            let s3 = b
                .with_client_options(client)
                .with_retry(retry)
                .build()
                .context("configuring the S3 client (check AWS_REGION and AWS_ENDPOINT_URL)")?;
            Ok((Arc::new(s3), OsPath::from(prefix.as_str())))
        }
    }
}

/// The keys of the active profile (`AWS_PROFILE`, else `default`) in the standard AWS
/// files: `~/.aws/credentials` (or `AWS_SHARED_CREDENTIALS_FILE`) and `~/.aws/config` (or
/// `AWS_CONFIG_FILE`, where a profile's section is `[profile NAME]`). Credentials there
/// are what `aws` itself would use; `object_store` reads only the environment.
fn aws_files() -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let path = |var: &str, name: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let sections = [
        (
            path("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            profile.clone(),
        ),
        (
            path("AWS_CONFIG_FILE", "config"),
            if profile == "default" {
                "default".into()
            } else {
                format!("profile {profile}")
            },
        ),
    ];
    for (file, section) in sections {
        let Some(file) = file else { continue };
        let Ok(ini) = ini::Ini::load_from_file(&file) else {
            continue;
        };
        if let Some(props) = ini.section(Some(section.as_str())) {
            for (k, v) in props.iter() {
                out.entry(k.to_ascii_lowercase())
                    .or_insert_with(|| v.to_string());
            }
        }
    }
    out
}

/// Where the remote comes from, strongest first: `--remote`/`--no-remote`, `HHI_REMOTE`,
/// then the pipeline's `[pipeline] remote`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum RemoteChoice {
    /// `HHI_REMOTE`, else the pipeline's.
    #[default]
    Default,
    Off,
    Url(String),
}

impl RemoteChoice {
    /// The URL in force for a pipeline that names `from_file`, with where it came from.
    pub fn resolve(&self, from_file: Option<&RemoteUrl>) -> anyhow::Result<Option<RemoteUrl>> {
        match self {
            RemoteChoice::Off => Ok(None),
            RemoteChoice::Url(u) => parse_url(u)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("--remote: {e}")),
            RemoteChoice::Default => match std::env::var("HHI_REMOTE") {
                Ok(u) if !u.is_empty() => parse_url(&u)
                    .map(Some)
                    .map_err(|e| anyhow::anyhow!("HHI_REMOTE: {e}")),
                _ => Ok(from_file.cloned()),
            },
        }
    }
}

/// Refuses a `file://` remote that is the store itself (every object would be "fetched"
/// from where it already is, and `gc` would delete the team's cache).
pub fn check_not_the_store(url: &RemoteUrl, store_root: &std::path::Path) -> anyhow::Result<()> {
    if let RemoteUrl::File { dir } = url {
        let a = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        let b = std::fs::canonicalize(store_root).unwrap_or_else(|_| store_root.to_path_buf());
        if a == b {
            bail!(
                "the remote {url} is the store itself; a remote is a separate folder (or bucket) that stores share"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_credentials_in_them_are_refused() {
        assert_eq!(
            parse_url("s3://lab-cache/hhi/v1").unwrap(),
            RemoteUrl::S3 {
                bucket: "lab-cache".into(),
                prefix: "hhi/v1".into()
            }
        );
        assert_eq!(parse_url("s3://b").unwrap().to_string(), "s3://b");
        assert_eq!(
            parse_url("file:///shared/cache").unwrap(),
            RemoteUrl::File {
                dir: "/shared/cache".into()
            }
        );
        let e = parse_url("s3://AKIA:secret@bucket/x").unwrap_err();
        assert!(
            e.contains("must not carry credentials")
                && !e.contains("secret")
                && !e.contains("AKIA"),
            "{e}"
        );
        assert!(parse_url("gs://b/x").unwrap_err().contains("not supported"));
        assert!(
            parse_url("file://host/x")
                .unwrap_err()
                .contains("three slashes")
        );
        assert!(parse_url("bucket/x").unwrap_err().contains("not a URL"));
        assert!(
            parse_url("s3://b/x?endpoint=y")
                .unwrap_err()
                .contains("no `?query`")
        );
    }
}
