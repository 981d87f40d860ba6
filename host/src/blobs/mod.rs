//! The content store: blobs addressed by their sha256 (versions' files, Mystic uploads, run
//! outputs, plugin components), kept at `sha256/<2 hex>/<62 hex>` under one root that is either
//! a local directory (`<data-dir>/blobs`, the embedded default) or an S3-compatible bucket and
//! prefix (`--blob-store s3://BUCKET/PREFIX`, which replicas share).
//!
//! The root is chosen once at start ([`BlobLocation`]); everything else sees one [`BlobStore`]
//! over an `object_store` handle, so one code path serves both: `LocalFileSystem` writes a
//! staging file, syncs it and links it into place (the directory synced too), S3 publishes an
//! object whole, so either way a blob is whole or absent, and durable once `put` returns. Puts
//! are `PutMode::Create`: the content decides the name, so an object that exists already holds
//! these very bytes, and finding it is success.
//!
//! Blobs are written after every check of the request that brings them has passed and before the
//! registry row that names them commits: a refused request writes none, and only a commit that
//! fails after its checks (a lost race, a database error) may leave an unreferenced blob behind,
//! never a row pointing at a missing one. Uploads expire (`registry::uploads`), and their bytes
//! with them when nothing else names them ([`BlobStore::delete`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutPayload};
use sha2::{Digest as _, Sha256};

/// Where the blobs live: `--blob-store s3://BUCKET[/PREFIX]`, or the data directory's `blobs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobLocation {
    /// A directory of this machine: only this replica sees it.
    Local(PathBuf),
    /// A bucket of an S3-compatible store, reached as the standard `AWS_*` environment says
    /// (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ALLOW_HTTP`, ...). Objects go under `prefix` (may be empty).
    S3 { bucket: String, prefix: String },
}

impl BlobLocation {
    /// Whether other machines reach the same blobs (a replica on a local directory is alone).
    pub fn is_shared(&self) -> bool {
        matches!(self, BlobLocation::S3 { .. })
    }
}

impl fmt::Display for BlobLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobLocation::Local(dir) => write!(f, "{}", dir.display()),
            BlobLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            BlobLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// `--blob-store` values the server does not understand.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlobLocationError {
    #[error("`{0}` is not an s3://BUCKET[/PREFIX] URL (leave --blob-store out for the local directory <data-dir>/blobs)")]
    NotS3(String),
    #[error("`{0}` names no bucket: s3://BUCKET[/PREFIX]")]
    NoBucket(String),
}

impl FromStr for BlobLocation {
    type Err = BlobLocationError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| BlobLocationError::NotS3(url.to_string()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(BlobLocationError::NoBucket(url.to_string()));
        }
        Ok(BlobLocation::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("`{0}` is not a sha256 digest")]
    NotADigest(String),
    #[error("blob {digest} is not in the blob store {location}")]
    Missing { digest: String, location: Arc<str> },
    #[error("reading blob {digest} from {location}")]
    Read {
        digest: String,
        location: Arc<str>,
        source: object_store::Error,
    },
    #[error("writing blob {digest} to {location}")]
    Write {
        digest: String,
        location: Arc<str>,
        source: object_store::Error,
    },
    #[error("deleting blob {digest} from {location}")]
    Delete {
        digest: String,
        location: Arc<str>,
        source: object_store::Error,
    },
}

/// The blob store every module uses; cheap to clone.
#[derive(Clone)]
pub struct BlobStore {
    objects: Arc<dyn ObjectStore>,
    /// Where the blobs are, for messages (`s3://bucket/prefix` or a directory).
    location: Arc<str>,
    shared: bool,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore")
            .field("location", &self.location)
            .finish()
    }
}

impl BlobStore {
    /// Opens the store at `location`: creates a local directory; for S3, only builds the client
    /// (the first request finds out whether the bucket is reachable) from the `AWS_*`
    /// environment, then `s3_settings` over it (`object_store`'s S3 keys, e.g.
    /// `("aws_endpoint", "http://127.0.0.1:9000")`; the command line gives none, an embedding
    /// program or a test may).
    pub fn open(location: &BlobLocation, s3_settings: &[(String, String)]) -> anyhow::Result<Self> {
        let objects: Arc<dyn ObjectStore> = match location {
            BlobLocation::Local(root) => {
                std::fs::create_dir_all(root)
                    .with_context(|| format!("creating blob store {}", root.display()))?;
                Arc::new(
                    LocalFileSystem::new_with_prefix(root)
                        .with_context(|| format!("opening blob store {}", root.display()))?
                        // A put returns once the file and the directory entries leading to it
                        // are on disk, as an S3 put is durable once answered: the row that names
                        // a blob commits synced (`synchronous = FULL`), and must not outlive it
                        // in a power loss.
                        .with_fsync(true),
                )
            }
            BlobLocation::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::from_env();
                for (key, value) in s3_settings {
                    let key: AmazonS3ConfigKey = key
                        .parse()
                        .with_context(|| format!("`{key}` is not an S3 setting"))?;
                    builder = builder.with_config(key, value);
                }
                let bucket_store = builder.with_bucket_name(bucket).build().with_context(|| {
                    format!("configuring the S3 client for {location} (AWS_* environment)")
                })?;
                if prefix.is_empty() {
                    Arc::new(bucket_store)
                } else {
                    Arc::new(PrefixStore::new(bucket_store, prefix.as_str()))
                }
            }
        };
        Ok(BlobStore {
            objects,
            location: location.to_string().into(),
            shared: location.is_shared(),
        })
    }

    /// The local directory `root` (as [`BlobLocation::Local`]).
    pub fn local(root: &Path) -> anyhow::Result<Self> {
        Self::open(&BlobLocation::Local(root.to_path_buf()), &[])
    }

    /// Whether other machines see these blobs.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Where the blobs are (`s3://bucket/prefix` or a directory).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Stores `bytes` and returns their digest (`sha256:<hex>`).
    pub async fn put(&self, bytes: &[u8]) -> Result<String, BlobError> {
        let digest = digest_of(bytes);
        let payload = PutPayload::from(bytes.to_vec());
        match self
            .objects
            .put_opts(
                &object_path(hex_of(&digest)?),
                payload,
                PutMode::Create.into(),
            )
            .await
        {
            // Another request (or replica) stored the same content first: the same bytes.
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(digest),
            Err(source) => Err(BlobError::Write {
                digest,
                location: self.location.clone(),
                source,
            }),
        }
    }

    /// The bytes stored under `digest` (`sha256:<hex>`).
    pub async fn get(&self, digest: &str) -> Result<Vec<u8>, BlobError> {
        let read = match self.objects.get(&object_path(hex_of(digest)?)).await {
            Ok(found) => found.bytes().await,
            Err(error) => Err(error),
        };
        match read {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::Missing {
                digest: digest.to_string(),
                location: self.location.clone(),
            }),
            Err(source) => Err(BlobError::Read {
                digest: digest.to_string(),
                location: self.location.clone(),
                source,
            }),
        }
    }

    /// Removes the blob under `digest`; absent already is fine.
    pub async fn delete(&self, digest: &str) -> Result<(), BlobError> {
        match self.objects.delete(&object_path(hex_of(digest)?)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(BlobError::Delete {
                digest: digest.to_string(),
                location: self.location.clone(),
                source,
            }),
        }
    }

    /// Whether the store takes writes now (`/readyz`): puts a small probe object beside the
    /// blobs and deletes it. A listing or a stat would miss a read-only disk or a bucket that
    /// refuses writes. Does not check that stored blobs are still readable.
    pub async fn probe(&self) -> anyhow::Result<()> {
        let probe = ObjectPath::from(format!("probe/{}", uuid::Uuid::new_v4()));
        self.objects
            .put(&probe, PutPayload::from_static(b"probe"))
            .await
            .with_context(|| format!("writing a probe to {}", self.location))?;
        self.objects
            .delete(&probe)
            .await
            .with_context(|| format!("deleting a probe from {}", self.location))
    }
}

/// `sha256/<2 hex>/<62 hex>`: the local directory's layout from before the object store, kept
/// so existing data directories read as they are.
fn object_path(hex: &str) -> ObjectPath {
    ObjectPath::from_iter(["sha256", &hex[..2], &hex[2..]])
}

/// The digest (`sha256:<hex>`) a blob of `bytes` is stored under.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex of a `sha256:<64 hex>` digest; anything else is refused (it becomes a path).
fn hex_of(digest: &str) -> Result<&str, BlobError> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| BlobError::NotADigest(digest.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_store_urls() {
        assert_eq!(
            "s3://bucket".parse(),
            Ok(BlobLocation::S3 {
                bucket: "bucket".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            "s3://bucket/a/b/".parse(),
            Ok(BlobLocation::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            })
        );
        assert!(matches!(
            "s3:///x".parse::<BlobLocation>(),
            Err(BlobLocationError::NoBucket(_))
        ));
        assert!(matches!(
            "/var/blobs".parse::<BlobLocation>(),
            Err(BlobLocationError::NotS3(_))
        ));
    }

    #[tokio::test]
    async fn local_store_keeps_the_directory_layout_and_puts_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let digest = store.put(b"hello").await.unwrap();
        assert_eq!(
            store.put(b"hello").await.unwrap(),
            digest,
            "a second put is fine"
        );
        let hex = digest.strip_prefix("sha256:").unwrap();
        let on_disk = dir.path().join("sha256").join(&hex[..2]).join(&hex[2..]);
        assert_eq!(std::fs::read(on_disk).unwrap(), b"hello");
        assert_eq!(store.get(&digest).await.unwrap(), b"hello");
        let absent = format!("sha256:{}", "0".repeat(64));
        assert!(matches!(
            store.get(&absent).await,
            Err(BlobError::Missing { .. })
        ));
        assert!(matches!(
            store.get("md5:x").await,
            Err(BlobError::NotADigest(_))
        ));
        let staged: Vec<_> = walk(dir.path())
            .into_iter()
            .filter(|p| p.to_string_lossy().contains('#'))
            .collect();
        assert!(staged.is_empty(), "no staging files left: {staged:?}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(walk(&path));
            } else {
                found.push(path);
            }
        }
        found
    }
}
