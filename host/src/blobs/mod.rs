//! The content store: blobs addressed by their sha256, kept in a local directory
//! (`<data-dir>/blobs/sha256/<2 hex>/<62 hex>`).
//!
//! Writes go to a temporary file and are renamed into place, so a blob is either whole or absent.
//! Blobs are written after every check of the request that brings them has passed and before the
//! registry row that names them commits: a refused request writes none, and only a commit that
//! fails after its checks (a lost race, a database error) may leave an unreferenced blob behind,
//! never a row pointing at a missing one. Uploads expire (`registry::uploads`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest as _, Sha256};

#[derive(Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        let root = root.join("sha256");
        std::fs::create_dir_all(&root)
            .with_context(|| format!("creating blob store {}", root.display()))?;
        Ok(BlobStore { root })
    }

    /// Stores `bytes` and returns their digest (`sha256:<hex>`).
    pub async fn put(&self, bytes: &[u8]) -> anyhow::Result<String> {
        let digest = digest_of(bytes);
        let hex = &digest["sha256:".len()..];
        let path = self.path_of(hex);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(digest);
        }
        let dir = path.parent().expect("blob paths have a parent");
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(format!(".{hex}.{}", uuid::Uuid::new_v4()));
        tokio::fs::write(&tmp, bytes)
            .await
            .with_context(|| format!("writing {}", tmp.display()))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .with_context(|| format!("renaming into {}", path.display()))?;
        Ok(digest)
    }

    /// The bytes stored under `digest` (`sha256:<hex>`).
    pub async fn get(&self, digest: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.path_of(hex_of(digest)?);
        tokio::fs::read(&path)
            .await
            .with_context(|| format!("reading blob {digest}"))
    }

    /// Removes the blob under `digest`; absent already is fine.
    pub async fn delete(&self, digest: &str) -> anyhow::Result<()> {
        match tokio::fs::remove_file(self.path_of(hex_of(digest)?)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(anyhow::Error::new(e).context(format!("deleting blob {digest}")))
            }
            _ => Ok(()),
        }
    }

    fn path_of(&self, hex: &str) -> PathBuf {
        self.root.join(&hex[..2]).join(&hex[2..])
    }
}

/// The digest (`sha256:<hex>`) a blob of `bytes` is stored under.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex of a `sha256:<64 hex>` digest; anything else is refused (it becomes a path).
fn hex_of(digest: &str) -> anyhow::Result<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .with_context(|| format!("`{digest}` is not a sha256 digest"))
}
