//! The pipeline store's working copies: one git repository per workbench pipeline, at
//! `<workcopy-dir>/{uuid}` (default `<data-dir>/pipelines`; its `repositoryUrl` is
//! `/pipelines/{uuid}`), seeded with the
//! type handler's `scaffold` files in a first commit. A launched pipeline server (JupyterHub,
//! Zeppelin) saves into it.
//!
//! Creation and removal are two-phase so that the registry can keep a record and its working
//! copy in step with its database transaction (nothing half-written): a new copy is built in a
//! `.new-…` folder and renamed into place; a removed one is first renamed to
//! `.trash-…`, which [`Removal::finish`] deletes after the commit and [`Removal::undo`]
//! puts back if the commit failed.
//!
//! The folder may be shared by replicas (`--workcopy-dir` on a shared volume), so a staging
//! folder seen at start may be another replica's create or delete in progress, not a crash's
//! leftover. Each staging name carries the time it was made (`.new-{uuid}.{unix millis}`), and
//! the sweep at open removes only those older than [`STALE_AFTER`]: far longer than any create
//! or removal takes (a git init of a few files; one database commit), and it works across
//! machines, where an owner's pid or host name could not be checked. Names from before the
//! stamp fall back to the folder's modification time.
//!
//! Everything here blocks (file system, libgit2): async callers use `spawn_blocking`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

/// One file to write, its path relative to the working copy's root.
pub struct SeedFile<'a> {
    pub path: &'a str,
    pub contents: &'a [u8],
}

#[derive(Clone, Debug)]
pub struct WorkingCopies {
    root: PathBuf,
}

const NEW_PREFIX: &str = ".new-";
const TRASH_PREFIX: &str = ".trash-";

/// A staging folder older than this is a crash's leftover, swept at start; a younger one may be
/// another replica's work in progress (see the module doc).
pub const STALE_AFTER: Duration = Duration::from_secs(60 * 60);

impl WorkingCopies {
    /// Opens (creating) the folder of working copies and sweeps what a crash left behind long
    /// enough ago ([`STALE_AFTER`]).
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(root)
            .with_context(|| format!("creating the pipeline store {}", root.display()))?;
        let now = SystemTime::now();
        for entry in fs::read_dir(root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with(NEW_PREFIX) || name.starts_with(TRASH_PREFIX)) {
                continue;
            }
            let made = staged_at(&name).or_else(|| entry.metadata().ok()?.modified().ok());
            let age = made.and_then(|made| now.duration_since(made).ok());
            if age.is_none_or(|age| age < STALE_AFTER) {
                continue; // perhaps another replica's create or removal in progress
            }
            tracing::warn!(path = %entry.path().display(), "removing a working copy left half-made or half-removed");
            // Another replica sweeping at the same moment may have taken it already.
            if let Err(error) = fs::remove_dir_all(entry.path()) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    tracing::error!(path = %entry.path().display(), %error, "could not sweep a leftover working copy");
                }
            }
        }
        Ok(WorkingCopies {
            root: root.to_path_buf(),
        })
    }

    /// A staging folder's path: `prefix`, the pipeline id and the time it is made.
    fn staging_path(&self, prefix: &str, id: &uuid::Uuid) -> PathBuf {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        self.root.join(format!("{prefix}{id}.{millis}"))
    }

    /// The wire form of a pipeline's location, as Acumos gives it.
    pub fn repository_url(id: &uuid::Uuid) -> String {
        format!("/pipelines/{id}")
    }

    /// The working copy of pipeline `id` on disk. Taking a `Uuid` keeps any other string (and
    /// so any path trick) out.
    pub fn path(&self, id: &uuid::Uuid) -> PathBuf {
        self.root.join(id.to_string())
    }

    /// Makes the working copy of `id`: a git repository holding `files` in one commit by
    /// `author`. Fails if it exists already.
    pub fn create(
        &self,
        id: &uuid::Uuid,
        files: &[SeedFile<'_>],
        author: &str,
        message: &str,
    ) -> anyhow::Result<PathBuf> {
        let target = self.path(id);
        anyhow::ensure!(
            !target.exists(),
            "working copy {} exists already",
            target.display()
        );
        let staging = self.staging_path(NEW_PREFIX, id);
        let made = seed_repository(&staging, files, author, message)
            .and_then(|()| fs::rename(&staging, &target).map_err(anyhow::Error::from));
        if let Err(error) = made {
            let _ = fs::remove_dir_all(&staging);
            return Err(error.context(format!("creating working copy {}", target.display())));
        }
        Ok(target)
    }

    /// Removes the working copy of `id` as far as can be undone: see [`Removal`]. A pipeline
    /// without a working copy (never made) gives a removal that does nothing.
    pub fn remove(&self, id: &uuid::Uuid) -> anyhow::Result<Removal> {
        let target = self.path(id);
        let trash = self.staging_path(TRASH_PREFIX, id);
        if !target.exists() {
            return Ok(Removal { moved: None });
        }
        fs::rename(&target, &trash)
            .with_context(|| format!("moving working copy {} aside", target.display()))?;
        Ok(Removal {
            moved: Some((target, trash)),
        })
    }

    /// Deletes the working copy of `id` outright (undoing a [`create`](Self::create) whose
    /// record could not be committed).
    pub fn discard(&self, id: &uuid::Uuid) {
        let target = self.path(id);
        if let Err(error) = fs::remove_dir_all(&target) {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::error!(path = %target.display(), %error, "could not discard a working copy");
            }
        }
    }
}

/// A working copy moved aside: gone for readers, still restorable.
#[must_use = "finish() or undo() the removal"]
pub struct Removal {
    moved: Option<(PathBuf, PathBuf)>,
}

impl Removal {
    /// The record is gone: delete the files for good.
    pub fn finish(self) {
        if let Some((_, trash)) = self.moved {
            if let Err(error) = fs::remove_dir_all(&trash) {
                tracing::error!(path = %trash.display(), %error, "could not delete a removed working copy; it is swept at the next start");
            }
        }
    }

    /// The record stays: put the working copy back.
    pub fn undo(self) -> anyhow::Result<()> {
        if let Some((target, trash)) = self.moved {
            fs::rename(&trash, &target)
                .with_context(|| format!("restoring working copy {}", target.display()))?;
        }
        Ok(())
    }
}

/// When the staging folder `name` was made, from its stamp; None for a name without one.
fn staged_at(name: &str) -> Option<SystemTime> {
    let (_, millis) = name.rsplit_once('.')?;
    let millis: u64 = millis.parse().ok()?;
    UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}

fn seed_repository(
    dir: &Path,
    files: &[SeedFile<'_>],
    author: &str,
    message: &str,
) -> anyhow::Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    let repo =
        git2::Repository::init(dir).with_context(|| format!("git init {}", dir.display()))?;
    let mut index = repo.index()?;
    for file in files {
        let path = dir.join(file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, file.contents).with_context(|| format!("writing {}", path.display()))?;
        index.add_path(Path::new(file.path))?;
    }
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    // The server commits on the user's behalf; it has no e-mail address for them.
    let signature = git2::Signature::now(author, &format!("{author}@pipewright.invalid"))?;
    repo.commit(Some("HEAD"), &signature, &signature, message, &tree, &[])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_seeds_a_commit_and_remove_can_be_undone() {
        let dir = tempfile::tempdir().unwrap();
        let copies = WorkingCopies::open(dir.path()).unwrap();
        let id = uuid::Uuid::new_v4();
        let path = copies
            .create(
                &id,
                &[
                    SeedFile {
                        path: "notebook.ipynb",
                        contents: b"{}",
                    },
                    SeedFile {
                        path: "data/readme.md",
                        contents: b"hi",
                    },
                ],
                "alice",
                "Create pipeline",
            )
            .unwrap();
        assert_eq!(fs::read(path.join("data/readme.md")).unwrap(), b"hi");
        let repo = git2::Repository::open(&path).unwrap();
        let head = repo.head().unwrap().peel_to_commit().unwrap();
        assert_eq!(head.message(), Some("Create pipeline"));
        assert_eq!(head.author().name(), Some("alice"));
        assert!(head
            .tree()
            .unwrap()
            .get_path(Path::new("notebook.ipynb"))
            .is_ok());
        assert!(
            copies.create(&id, &[], "alice", "again").is_err(),
            "a second create must not overwrite"
        );

        let removal = copies.remove(&id).unwrap();
        assert!(!path.exists());
        removal.undo().unwrap();
        assert!(path.join("notebook.ipynb").exists());
        copies.remove(&id).unwrap().finish();
        assert!(!path.exists());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no trash left"
        );
    }

    #[test]
    fn open_sweeps_only_leftovers_older_than_any_work_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let stamp = |age: Duration| {
            (SystemTime::now() - age)
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis()
        };
        let old = stamp(STALE_AFTER + Duration::from_secs(60));
        let young = stamp(Duration::from_secs(5));
        let id = uuid::Uuid::new_v4();
        fs::create_dir_all(dir.path().join(format!(".new-{id}.{old}/a"))).unwrap();
        fs::create_dir_all(dir.path().join(format!(".trash-{id}.{old}"))).unwrap();
        // Another replica's create and removal in progress.
        let in_progress = [format!(".new-{id}.{young}"), format!(".trash-{id}.{young}")];
        for name in &in_progress {
            fs::create_dir_all(dir.path().join(name)).unwrap();
        }
        // An unstamped name (an older server's) made just now: its mtime says it is young.
        fs::create_dir_all(dir.path().join(".new-legacy")).unwrap();
        fs::create_dir_all(dir.path().join("kept")).unwrap();
        WorkingCopies::open(dir.path()).unwrap();
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected = vec![".new-legacy".to_string(), "kept".to_string()];
        expected.extend(in_progress);
        expected.sort();
        assert_eq!(left, expected);
    }
}
