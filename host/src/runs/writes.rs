//! Group commit of run records: every write of a run's row (accepted, running, finished) is
//! queued, and whoever holds the writer's turn commits all that is queued in one transaction.
//!
//! Why: SQLite has one writer at a time. Runs finishing together on several connections made
//! all but one fail with `SQLITE_BUSY` and sleep in SQLite's busy handler (a millisecond and
//! up) before retrying; one writer at a time never collides with itself, and a batch pays one
//! commit. Alone (no concurrent run), a write is one statement in autocommit, as without
//! batching. A write is answered only after its transaction committed, so a caller that answers
//! its client afterwards has its record in the store. When a batch fails (a row whose pipeline
//! was deleted meanwhile, say), its writes are retried one by one, so one bad row fails only
//! its own write. Lease renewals do not go through here: they are rare and may wait.
//!
//! A write may also be queued *behind* the answer ([`RunWrites::write_behind`]): the caller
//! goes on at once and a task of its own commits the write, with whatever else is queued,
//! right after. That takes the commit off a synchronous run's answer (the run's last write).
//! Reads of runs call [`RunWrites::flush`] first, so a client reading what it was answered
//! finds it on this server; another replica finds it once committed (a commit's time later).
//! A crash or power loss in between loses it, which README states; a shutdown commits it.
//!
//! Where a batch is committed:
//! - **SQLite**: on a connection of its own ([`rows::direct`]), synchronously on the writer's
//!   thread. A commit in WAL mode is an append to the log, tens of microseconds; going through
//!   the pool instead costs two thread hand-offs to sqlx's connection thread, and every write
//!   from another pooled connection than the last made SQLite drop and re-read its page cache.
//!   When another connection holds the write lock (a registration's transaction, another
//!   server on the same file), the batch waits for it on a blocking thread instead. Every
//!   [`CHECKPOINT_EVERY`] commits, the log is checkpointed there too, never on the runtime's
//!   threads (the connection does not checkpoint by itself).
//! - **PostgreSQL** (or an in-memory SQLite): through the pool. A batch holding others' writes
//!   commits on a task of its own, so a caller dropped midway (its client hung up) cannot drop
//!   them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::store::{runs as rows, Store};

use crate::registry::RegistryError;

/// One write of a run's row, owning its values (it crosses to the writer task).
#[derive(Debug)]
pub(super) enum RunWrite {
    Insert(NewRunRow),
    SetState(StateChangeRow),
}

impl RunWrite {
    fn run_id(&self) -> &str {
        match self {
            RunWrite::Insert(row) => &row.id,
            RunWrite::SetState(change) => &change.id,
        }
    }
}

/// [`rows::StateChange`], owned.
#[derive(Debug)]
pub(super) struct StateChangeRow {
    pub id: String,
    pub state: &'static str,
    pub outputs: Option<String>,
    pub error: Option<String>,
    pub lease_until: Option<i64>,
    pub now: i64,
    pub logs: Option<String>,
}

impl StateChangeRow {
    fn as_state_change(&self) -> rows::StateChange<'_> {
        rows::StateChange {
            id: &self.id,
            state: self.state,
            outputs: self.outputs.as_deref(),
            error: self.error.as_deref(),
            lease_until: self.lease_until,
            now: self.now,
            logs: self.logs.as_deref(),
        }
    }
}

/// [`rows::NewRun`], owned.
#[derive(Debug)]
pub(super) struct NewRunRow {
    pub id: String,
    pub pipeline_id: String,
    pub version: String,
    pub submitted_by: String,
    pub account_id: String,
    pub state: &'static str,
    pub inputs: String,
    pub outputs: Option<String>,
    pub error: Option<String>,
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub now: i64,
    pub logs: Option<String>,
}

impl NewRunRow {
    fn as_new_run(&self) -> rows::NewRun<'_> {
        rows::NewRun {
            id: &self.id,
            pipeline_id: &self.pipeline_id,
            version: &self.version,
            submitted_by: &self.submitted_by,
            account_id: &self.account_id,
            state: self.state,
            inputs: &self.inputs,
            outputs: self.outputs.as_deref(),
            error: self.error.as_deref(),
            lease_until: self.lease_until,
            created_at: self.created_at,
            now: self.now,
            logs: self.logs.as_deref(),
        }
    }
}

/// A queued write and who waits for its commit: None for a write behind the answer, whose
/// failure is only logged (its caller has gone on).
type Queued = (RunWrite, Option<oneshot::Sender<Result<(), String>>>);

/// Commits on SQLite's own connection between two checkpoints. A checkpoint costs two syncs
/// (milliseconds here) and a copy of each page written; rarer ones spread the syncs over more
/// runs, for a larger log (about 20 MB at 2048 single-run commits).
const CHECKPOINT_EVERY: u64 = 2048;

/// How long a batch waits for the write lock that another connection holds (the pool's
/// `busy_timeout`).
const BUSY_WAIT: Duration = Duration::from_secs(10);

/// The queue, and the writer's turn.
pub struct RunWrites {
    store: Store,
    /// SQLite's connection of its own (see the module doc); None: the pool.
    direct: Option<Arc<Direct>>,
    queued: Mutex<Vec<Queued>>,
    turn: tokio::sync::Mutex<()>,
    /// A task is on its way to commit writes queued behind ([`Self::write_behind`]).
    committing: AtomicBool,
}

struct Direct {
    conn: Mutex<rusqlite::Connection>,
    /// Batches committed on it (checkpoints are counted in them).
    commits: AtomicU64,
}

impl RunWrites {
    pub fn new(store: Store) -> Self {
        let direct = store.sqlite_file().and_then(|file| {
            match rows::direct::open(&file) {
                Ok(conn) => Some(Arc::new(Direct {
                    conn: Mutex::new(conn),
                    commits: AtomicU64::new(0),
                })),
                Err(error) => {
                    // Slower, not wrong.
                    tracing::warn!(file = %file.display(), %error, "no connection of its own for run records; they go through the pool");
                    None
                }
            }
        });
        RunWrites {
            store,
            direct,
            queued: Mutex::default(),
            turn: tokio::sync::Mutex::const_new(()),
            committing: AtomicBool::new(false),
        }
    }

    /// Commits `write` (in a batch with others queued meanwhile); returns once committed.
    pub(super) async fn write(&self, write: RunWrite) -> Result<(), RegistryError> {
        let (done, mut committed) = oneshot::channel();
        self.queued.lock().unwrap().push((write, Some(done)));
        let turn = self.turn.lock().await;
        match committed.try_recv() {
            // The writer before us committed ours with its batch.
            Ok(result) => return outcome(Some(result)),
            Err(oneshot::error::TryRecvError::Closed) => return outcome(None),
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        // Ours, unless a writer dropped midway left it to its batch's own task.
        self.commit_queued().await;
        drop(turn);
        outcome(committed.await.ok())
    }

    /// Queues `write` to be committed right after, by a task of its own (with whatever else is
    /// queued then), and returns at once. See the module doc for what a reader sees meanwhile.
    pub(super) fn write_behind(self: &Arc<Self>, write: RunWrite) {
        self.queued.lock().unwrap().push((write, None));
        // One committing task at a time: later writes join its batch, or the next one's.
        if !self.committing.swap(true, Ordering::AcqRel) {
            let writes = self.clone();
            tokio::spawn(async move {
                let turn = writes.turn.lock().await;
                // Cleared before the batch is taken: a write queued after this starts a task.
                writes.committing.store(false, Ordering::Release);
                writes.commit_queued().await;
                drop(turn);
            });
        }
    }

    /// Returns once every write queued before it is committed (or failed).
    pub(super) async fn flush(&self) {
        if self.queued.lock().unwrap().is_empty() {
            if let Ok(_turn) = self.turn.try_lock() {
                return;
            }
        }
        // A batch being committed finishes before the turn is ours.
        let turn = self.turn.lock().await;
        self.commit_queued().await;
        drop(turn);
    }

    /// Commits everything queued, holding the writer's turn.
    async fn commit_queued(&self) {
        let batch = std::mem::take(&mut *self.queued.lock().unwrap());
        match (&self.direct, batch.len()) {
            (_, 0) => {}
            (Some(direct), _) => self.commit_direct(direct, batch).await,
            (None, 1) => write_batch(&self.store, batch).await,
            (None, _) => {
                let store = self.store.clone();
                let _ = tokio::spawn(async move { write_batch(&store, batch).await }).await;
            }
        }
    }

    /// Commits `batch` on SQLite's own connection: here, unless the write lock is taken or a
    /// checkpoint is due; then on a blocking thread (which answers the batch even if we are
    /// dropped). That thread waits for the lock, and checkpoints after its commit while we
    /// still hold the turn: with no write of ours in between, the checkpoint catches up with
    /// the whole log, and the next commit starts it over, so the log stays small.
    async fn commit_direct(&self, direct: &Arc<Direct>, batch: Vec<Queued>) {
        let checkpoint = direct.commits.fetch_add(1, Ordering::Relaxed) % CHECKPOINT_EVERY
            == CHECKPOINT_EVERY - 1;
        // A blocking thread left by a dropped writer may still hold it: never wait for it here.
        let batch = match direct.conn.try_lock() {
            Ok(conn) if !checkpoint => match try_commit_direct(&conn, batch) {
                Ok(()) => return,
                Err(batch) => batch,
            },
            _ => batch,
        };
        let direct = direct.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let conn = direct.conn.lock().unwrap_or_else(|e| e.into_inner());
            let _ = conn.busy_timeout(BUSY_WAIT);
            commit_direct(&conn, batch);
            if checkpoint {
                if let Err(error) = rows::direct::checkpoint(&conn) {
                    tracing::warn!(%error, "could not checkpoint the SQLite log");
                }
            }
            let _ = conn.busy_timeout(Duration::ZERO);
        })
        .await;
    }
}

/// Commits and answers `batch`, or gives it back with nothing written when that needs waiting:
/// another connection holds the write lock, or a failed batch is to be retried one write at a
/// time (each of which may have to wait for the lock).
fn try_commit_direct(conn: &rusqlite::Connection, batch: Vec<Queued>) -> Result<(), Vec<Queued>> {
    match apply_direct(conn, &batch) {
        Ok(()) => answer(conn, batch, Ok(())),
        Err(error) if batch.len() == 1 && !rows::direct::is_busy(&error) => {
            answer(conn, batch, Err(error))
        }
        Err(_) => return Err(batch),
    }
    Ok(())
}

/// Commits and answers `batch`, waiting for the write lock as the connection is set to.
fn commit_direct(conn: &rusqlite::Connection, batch: Vec<Queued>) {
    let outcome = apply_direct(conn, &batch);
    answer(conn, batch, outcome);
}

/// Answers each write of `batch` with `outcome`; a failed batch is retried one write at a time.
fn answer(conn: &rusqlite::Connection, batch: Vec<Queued>, outcome: rusqlite::Result<()>) {
    match outcome {
        Ok(()) => {
            for (write, done) in batch {
                settle(&write, done, Ok(()));
            }
        }
        Err(error) if batch.len() == 1 => {
            for (write, done) in batch {
                settle(&write, done, Err(error.to_string()));
            }
        }
        Err(_) => {
            for (write, done) in batch {
                let alone = apply_one_direct(conn, &write);
                settle(&write, done, alone.map_err(|e| e.to_string()));
            }
        }
    }
}

/// Tells a write's caller how its commit went; a write behind the answer has no one waiting,
/// so its failure is logged and counted.
fn settle(
    write: &RunWrite,
    done: Option<oneshot::Sender<Result<(), String>>>,
    result: Result<(), String>,
) {
    match (done, result) {
        (Some(done), result) => {
            let _ = done.send(result);
        }
        (None, Ok(())) => {}
        (None, Err(error)) => {
            metrics::counter!("pipewright_run_records_lost_total").increment(1);
            tracing::error!(run = write.run_id(), %error, "a run's record could not be written after its answer");
        }
    }
}

/// One statement in autocommit alone; else one transaction (rolled back on failure).
fn apply_direct(conn: &rusqlite::Connection, batch: &[Queued]) -> rusqlite::Result<()> {
    if let [(write, _)] = batch {
        return apply_one_direct(conn, write);
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let applied = batch
        .iter()
        .try_for_each(|(write, _)| apply_one_direct(conn, write))
        .and_then(|()| conn.execute_batch("COMMIT"));
    if applied.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    applied
}

fn apply_one_direct(conn: &rusqlite::Connection, write: &RunWrite) -> rusqlite::Result<()> {
    match write {
        RunWrite::Insert(row) => rows::direct::insert_run(conn, &row.as_new_run()),
        RunWrite::SetState(change) => rows::direct::set_state(conn, &change.as_state_change()),
    }
}

fn outcome(committed: Option<Result<(), String>>) -> Result<(), RegistryError> {
    match committed {
        Some(Ok(())) => Ok(()),
        Some(Err(error)) => Err(RegistryError::Internal(anyhow::anyhow!(
            "recording a run: {error}"
        ))),
        None => Err(RegistryError::Internal(anyhow::anyhow!(
            "recording a run: its batch was abandoned"
        ))),
    }
}

/// Commits `batch` and answers each of its writes.
async fn write_batch(store: &Store, mut batch: Vec<Queued>) {
    let outcome = if batch.len() == 1 {
        // Alone: one statement in autocommit, no BEGIN/COMMIT round trips.
        apply_alone(store, &batch[0].0).await
    } else {
        apply_together(store, &batch).await
    };
    match outcome {
        Ok(()) => {
            for (write, done) in batch {
                settle(&write, done, Ok(()));
            }
        }
        Err(error) if batch.len() == 1 => {
            let (write, done) = batch.pop().expect("one write");
            settle(&write, done, Err(error.to_string()));
        }
        Err(_) => {
            for (write, done) in batch {
                let outcome = apply_alone(store, &write).await;
                settle(&write, done, outcome.map_err(|e| e.to_string()));
            }
        }
    }
}

async fn apply_alone(store: &Store, write: &RunWrite) -> sqlx::Result<()> {
    let mut conn = store.pool().acquire().await?;
    apply(&mut conn, write).await
}

async fn apply_together(store: &Store, batch: &[Queued]) -> sqlx::Result<()> {
    let mut tx = store.begin().await?;
    for (write, _) in batch {
        apply(&mut tx, write).await?;
    }
    tx.commit().await
}

async fn apply(conn: &mut sqlx::AnyConnection, write: &RunWrite) -> sqlx::Result<()> {
    match write {
        RunWrite::Insert(row) => rows::insert_run(conn, &row.as_new_run()).await,
        RunWrite::SetState(change) => rows::set_state(conn, &change.as_state_change()).await,
    }
}
