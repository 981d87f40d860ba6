//! Group commit of run records: every write of a run's row (accepted, running, finished) is
//! queued, and whoever holds the writer's turn commits all that is queued in one transaction.
//!
//! Why: SQLite has one writer at a time. Runs finishing together on several connections made
//! all but one fail with `SQLITE_BUSY` and sleep in SQLite's busy handler (a millisecond and
//! up) before retrying; one writer at a time never collides with itself, and a batch pays one
//! commit. Alone (no concurrent run), a write is one statement in autocommit on the caller's
//! task, as without batching. A write is answered only after its transaction committed, so a
//! caller that answers its client afterwards has its record in the store. When a batch fails (a
//! row whose pipeline was deleted meanwhile, say), its writes are retried one by one, so one bad
//! row fails only its own write. A batch holding others' writes commits on a task of its own,
//! so a caller dropped midway (its client hung up) cannot drop them. Lease renewals do not go
//! through here: they are rare and may wait.

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::store::{runs as rows, Store};

use super::RegistryError;

/// One write of a run's row, owning its values (it crosses to the writer task).
#[derive(Debug)]
pub(super) enum RunWrite {
    Insert(NewRunRow),
    SetState {
        id: String,
        state: &'static str,
        outputs: Option<String>,
        error: Option<String>,
        lease_until: Option<i64>,
        now: i64,
    },
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
}

type Queued = (RunWrite, oneshot::Sender<Result<(), String>>);

/// The queue, and the writer's turn.
pub struct RunWrites {
    store: Store,
    queued: Mutex<Vec<Queued>>,
    turn: tokio::sync::Mutex<()>,
}

impl RunWrites {
    pub fn new(store: Store) -> Self {
        RunWrites {
            store,
            queued: Mutex::default(),
            turn: tokio::sync::Mutex::const_new(()),
        }
    }

    /// Commits `write` (in a batch with others queued meanwhile); returns once committed.
    pub(super) async fn write(&self, write: RunWrite) -> Result<(), RegistryError> {
        let (done, mut committed) = oneshot::channel();
        self.queued.lock().unwrap().push((write, done));
        let turn = self.turn.lock().await;
        match committed.try_recv() {
            // The writer before us committed ours with its batch.
            Ok(result) => return outcome(Some(result)),
            Err(oneshot::error::TryRecvError::Closed) => return outcome(None),
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        // Ours, unless a writer dropped midway left it to its batch's own task.
        let batch = std::mem::take(&mut *self.queued.lock().unwrap());
        match batch.len() {
            0 => {}
            1 => write_batch(&self.store, batch).await,
            _ => {
                let store = self.store.clone();
                let _ = tokio::spawn(async move { write_batch(&store, batch).await }).await;
            }
        }
        drop(turn);
        outcome(committed.await.ok())
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
            for (_, done) in batch {
                let _ = done.send(Ok(()));
            }
        }
        Err(error) if batch.len() == 1 => {
            let (_, done) = batch.pop().expect("one write");
            let _ = done.send(Err(error.to_string()));
        }
        Err(_) => {
            for (write, done) in batch {
                let outcome = apply_alone(store, &write).await;
                let _ = done.send(outcome.map_err(|e| e.to_string()));
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
        RunWrite::Insert(row) => {
            rows::insert_run(
                conn,
                &rows::NewRun {
                    id: &row.id,
                    pipeline_id: &row.pipeline_id,
                    version: &row.version,
                    submitted_by: &row.submitted_by,
                    account_id: &row.account_id,
                    state: row.state,
                    inputs: &row.inputs,
                    outputs: row.outputs.as_deref(),
                    error: row.error.as_deref(),
                    lease_until: row.lease_until,
                    created_at: row.created_at,
                    now: row.now,
                },
            )
            .await
        }
        RunWrite::SetState {
            id,
            state,
            outputs,
            error,
            lease_until,
            now,
        } => {
            rows::set_state(
                conn,
                id,
                state,
                outputs.as_deref(),
                error.as_deref(),
                *lease_until,
                *now,
            )
            .await
        }
    }
}
