//! Uploaded files (`/v4/files`): each belongs to the account that uploaded it, within that
//! account's quota, and expires once nothing references it.
//!
//! An upload is a row of `uploads` (the account, the name, the size) over a blob. A run's file
//! input names a blob by digest; [`Registry::may_use_file`] lets it name only an upload of the
//! caller's accounts or a file of a version the caller may read, so knowing another tenant's
//! digest gives nothing. The quota is checked before the blob is written, so a refused upload
//! leaves no blob behind. [`Registry::spawn_upload_sweeper`] deletes rows older than the
//! configured time to live, and their blobs when nothing else (another upload, a version, a
//! plugin, a run) names them.
//!
//! Not covered: two uploads of one account racing past the quota together may both be kept (the
//! check and the insert are not one atomic step across replicas); the overshoot is at most one
//! upload per concurrent request. An upload of the very bytes whose last upload the sweeper is
//! expiring at that moment may find its blob deleted under it (its row stays; a run then
//! reports the file unreadable); the sweep runs once a minute over rows a day old, so this needs
//! the same bytes uploaded again within that window.

use std::time::Duration;

use serde::Serialize;

use crate::store::{self, uploads as rows};

use super::{Caller, Refusal, Registry, RegistryError};

/// How much one account may keep uploaded, and for how long an upload lives.
#[derive(Clone, Debug)]
pub struct UploadLimits {
    pub max_files: u64,
    pub max_bytes: u64,
    /// An upload older than this is deleted (its blob too, when nothing else names it).
    pub time_to_live: Duration,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            max_files: 1000,
            max_bytes: 1 << 30,
            time_to_live: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// An upload refused by its account's quota: what the account holds and what it may.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub account: String,
    pub files: u64,
    pub bytes: u64,
    pub max_files: u64,
    pub max_bytes: u64,
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "upload quota exceeded: account {} holds {} file(s), {} bytes; the limit is {} file(s), {} bytes",
            self.account, self.files, self.bytes, self.max_files, self.max_bytes
        )
    }
}

/// A stored upload.
#[derive(Clone, Debug, Serialize)]
pub struct UploadInfo {
    pub id: String,
    pub digest: String,
    pub name: String,
    pub size: u64,
    pub created_at_ms: i64,
}

impl From<rows::UploadRow> for UploadInfo {
    fn from(row: rows::UploadRow) -> Self {
        UploadInfo {
            id: row.id,
            digest: row.digest,
            name: row.name,
            size: row.size.max(0) as u64,
            created_at_ms: row.created_at,
        }
    }
}

/// How often the sweeper looks for expired uploads, and how many it takes per look.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const SWEEP_BATCH: i64 = 500;

impl Registry {
    /// Keeps `bytes` as an upload of the caller's account named `name`, within its quota.
    pub async fn store_upload(
        &self,
        caller: &Caller,
        name: &str,
        bytes: &[u8],
    ) -> Result<UploadInfo, RegistryError> {
        let limits = &self.upload_limits;
        let mut conn = self.store.pool().acquire().await?;
        let (files, held) = rows::usage(&mut conn, &caller.account_id).await?;
        let (files, held) = (files.max(0) as u64, held.max(0) as u64);
        if files + 1 > limits.max_files || held + bytes.len() as u64 > limits.max_bytes {
            return Err(RegistryError::QuotaExceeded(QuotaExceeded {
                account: caller.account.clone(),
                files,
                bytes: held,
                max_files: limits.max_files,
                max_bytes: limits.max_bytes,
            }));
        }
        // The row first: a blob that fails to be written takes its row back with it, and a row
        // that fails to be written leaves no blob behind.
        let digest = crate::blobs::digest_of(bytes);
        let id = uuid::Uuid::now_v7().to_string();
        let created_at = store::now_millis();
        rows::insert(
            &mut conn,
            &rows::NewUpload {
                id: &id,
                account_id: &caller.account_id,
                digest: &digest,
                name,
                size: bytes.len() as i64,
                uploaded_by: &caller.user_id,
                created_at,
            },
        )
        .await?;
        // No database connection held while the bytes travel (to S3, it may be a while).
        drop(conn);
        if let Err(error) = self.blobs.put(bytes).await {
            let mut conn = self.store.pool().acquire().await?;
            rows::delete(&mut conn, &id).await?;
            return Err(error.into());
        }
        Ok(UploadInfo {
            id,
            digest,
            name: name.to_string(),
            size: bytes.len() as u64,
            created_at_ms: created_at,
        })
    }

    /// The uploads of the caller's account, oldest first (at most its quota's count).
    pub async fn list_uploads(&self, caller: &Caller) -> Result<Vec<UploadInfo>, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        Ok(rows::of_account(&mut conn, &caller.account_id)
            .await?
            .into_iter()
            .map(UploadInfo::from)
            .collect())
    }

    /// An upload of one of the caller's accounts; another's, or one that expired, is not found
    /// alike.
    pub async fn upload(&self, caller: &Caller, id: &str) -> Result<UploadInfo, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let not_found = || Refusal::UploadNotFound { id: id.to_string() };
        let row = rows::by_id(&mut conn, id).await?.ok_or_else(not_found)?;
        if !self.acts_for(&mut conn, caller, &row.account_id).await? {
            return Err(not_found().into());
        }
        Ok(row.into())
    }

    /// Whether the caller may hand the blob `digest` to a run: an upload of one of its accounts,
    /// or a file of a version it may read.
    pub async fn may_use_file(&self, caller: &Caller, digest: &str) -> Result<bool, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        Ok(rows::user_may_use(&mut conn, digest, &caller.user_id).await?)
    }

    /// Deletes uploads past their time to live, and the blobs nothing else names; returns how
    /// many uploads went.
    pub async fn expire_uploads(&self) -> Result<usize, RegistryError> {
        let before = store::now_millis() - self.upload_limits.time_to_live.as_millis() as i64;
        let mut conn = self.store.pool().acquire().await?;
        let expired = rows::older_than(&mut conn, before, SWEEP_BATCH).await?;
        for (id, digest) in &expired {
            rows::delete(&mut conn, id).await?;
            if !rows::blob_referenced(&mut conn, digest).await? {
                self.blobs.delete(digest).await?;
            }
        }
        if !expired.is_empty() {
            tracing::info!(count = expired.len(), "expired uploads deleted");
        }
        Ok(expired.len())
    }

    /// Runs [`Self::expire_uploads`] every [`SWEEP_EVERY`] until aborted.
    pub fn spawn_upload_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                if let Err(error) = registry.expire_uploads().await {
                    tracing::warn!(error = %error, "expiring uploads");
                }
            }
        })
    }
}
