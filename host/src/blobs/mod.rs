//! The content store: blobs addressed by their sha256, kept in a local directory
//! (`<data-dir>/blobs/sha256/<2 hex>/<62 hex>`).
//!
//! Writes go to a temporary file and are renamed into place, so a blob is either whole or absent.
//! Blobs are written before the registry row that names them commits; a failed request may leave
//! an unreferenced blob behind, never a row pointing at a missing one.

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
        let hex = hex::encode(Sha256::digest(bytes));
        let path = self.path_of(&hex);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(format!("sha256:{hex}"));
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
        Ok(format!("sha256:{hex}"))
    }

    /// The bytes stored under `digest` (`sha256:<hex>`).
    pub async fn get(&self, digest: &str) -> anyhow::Result<Vec<u8>> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        let hex = hex.with_context(|| format!("`{digest}` is not a sha256 digest"))?;
        let path = self.path_of(hex);
        tokio::fs::read(&path)
            .await
            .with_context(|| format!("reading blob {digest}"))
    }

    /// Whether the store takes writes now (`/readyz`): writes a small probe file beside the
    /// blobs and removes it. A stat would miss a read-only or full disk; this costs one tiny
    /// write per check. Another backend answers the same question its own way (an object store:
    /// put and delete a probe key). Does not check that stored blobs are still readable.
    pub async fn probe(&self) -> anyhow::Result<()> {
        let probe = self.root.join(format!(".probe-{}", uuid::Uuid::new_v4()));
        tokio::fs::write(&probe, b"probe")
            .await
            .with_context(|| format!("writing {}", probe.display()))?;
        tokio::fs::remove_file(&probe)
            .await
            .with_context(|| format!("removing {}", probe.display()))
    }

    fn path_of(&self, hex: &str) -> PathBuf {
        self.root.join(&hex[..2]).join(&hex[2..])
    }
}
