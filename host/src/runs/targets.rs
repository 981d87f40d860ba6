//! What a run runs: its target (the pipeline, the ready version with its files, and the
//! manifest read from its definition), cached in memory between runs ([`RunTargets`]), and how
//! a run's arguments bind to the manifest's declared inputs ([`bind_inputs`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pipewright_manifest::RunManifest;

use crate::registry::changes::CHANGES_POLL;
use crate::registry::pipelines::not_a_member;
use crate::registry::{Caller, RegistryError, VersionInfo};
use crate::store::{name_key, pipelines};

use super::engine::InputValue;
use super::submit::{RunArgument, RunSubmission};
use super::{Runs, Value};

/// The manifest of a runnable version, read from its definition. Err (every run's
/// `input_error`) when it names no component (nor a Python graph).
pub(super) fn manifest(definition: &serde_json::Value) -> Result<RunManifest, String> {
    let manifest = RunManifest::from_json(definition).unwrap_or_default();
    if manifest.component.is_none() && manifest.python_graph().is_none() {
        return Err("the pipeline's manifest names no component".into());
    }
    Ok(manifest)
}

/// A ready runnable version as runs need it: its pipeline, the version with its files, and its
/// manifest read (or why it cannot be: every run of it is then an `input_error`).
pub(super) struct RunTarget {
    pub(super) pipeline: pipelines::PipelineRow,
    pub(super) version: VersionInfo,
    pub(super) manifest: Result<RunManifest, String>,
}

/// `namespace/name[:version]` by keys; no version: the latest ready one.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct RunTargetKey {
    namespace: String,
    name: String,
    version: Option<String>,
}

/// Run targets, each with the namespace's change counter (migration 0004) it was read at: that
/// counter moves in the commit of any change to the versions of the namespace (set, states,
/// definitions, files), so an entry is used only while nothing it holds can have changed.
///
/// A run does not read that counter each time: an entry checked against the store less than
/// [`CHANGES_POLL`] ago is used as it is, unless this server changed a namespace since (the
/// registry's change generation, [`crate::registry::Registry::change_generation`], moved after
/// each such commit). So a change made through this server is
/// seen by its next run, and one made through another server within [`CHANGES_POLL`], the same
/// bound as for policy bindings and plugin activations. Membership of the owner is kept only
/// when found (members are never removed); a non-member is checked against the store each time.
#[derive(Default)]
pub struct RunTargets {
    entries: Mutex<HashMap<RunTargetKey, CachedTarget>>,
}

pub(super) struct CachedTarget {
    revision: i64,
    target: Arc<RunTarget>,
    /// When the counter was last read equal to `revision`, and this server's generation then.
    checked_at: Instant,
    generation: u64,
    /// Callers found members of the owning account.
    members: HashSet<String>,
}

/// Targets kept at most; past it the cache starts over (a cheap bound, not an LRU).
const MAX_RUN_TARGETS: usize = 1024;

impl RunTargets {
    /// The target, if it was checked recently enough to run as it is for `user_id`.
    pub(super) fn fresh(
        &self,
        key: &RunTargetKey,
        user_id: &str,
        generation: u64,
    ) -> Option<Arc<RunTarget>> {
        let entries = self.entries.lock().unwrap();
        let entry = entries.get(key)?;
        (entry.generation == generation
            && entry.checked_at.elapsed() < CHANGES_POLL
            && entry.members.contains(user_id))
        .then(|| entry.target.clone())
    }

    pub(super) fn get(&self, key: &RunTargetKey) -> Option<(i64, Arc<RunTarget>)> {
        let entries = self.entries.lock().unwrap();
        entries.get(key).map(|e| (e.revision, e.target.clone()))
    }

    /// The store's counter still reads `revision` for the entry, and `user_id` is a member.
    pub(super) fn confirm(
        &self,
        key: &RunTargetKey,
        revision: i64,
        generation: u64,
        user_id: &str,
    ) {
        let mut entries = self.entries.lock().unwrap();
        if let Some(entry) = entries.get_mut(key).filter(|e| e.revision == revision) {
            entry.checked_at = Instant::now();
            entry.generation = generation;
            entry.members.insert(user_id.to_string());
        }
    }

    pub(super) fn put(
        &self,
        key: RunTargetKey,
        revision: i64,
        generation: u64,
        target: Arc<RunTarget>,
        member: &str,
    ) {
        let mut entries = self.entries.lock().unwrap();
        if entries.len() >= MAX_RUN_TARGETS && !entries.contains_key(&key) {
            entries.clear();
        }
        // Keep the newest: a slow reader must not put back an older target.
        if entries.get(&key).is_none_or(|e| e.revision <= revision) {
            let entry = CachedTarget {
                revision,
                target,
                checked_at: Instant::now(),
                generation,
                members: HashSet::from([member.to_string()]),
            };
            entries.insert(key, entry);
        }
    }
}

/// The manifest type a value is of.
pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Integer(_) => "integer",
        Value::Float(_) => "float",
        Value::Boolean(_) => "boolean",
        Value::Dictionary(_) => "dictionary",
        Value::Array(_) => "array",
        Value::File(_) => "file",
    }
}

/// Pairs the arguments with the manifest's inputs, converting where the manifest is more
/// precise (an integer `1` for a boolean input, an integer for a float). Err is an
/// `input_error` message.
pub(super) fn bind_inputs(
    manifest: &RunManifest,
    arguments: Vec<RunArgument>,
) -> Result<Vec<(String, InputValue)>, String> {
    let inputs = manifest.inputs.as_slice();
    if arguments.len() != inputs.len() {
        return Err(format!(
            "the pipeline takes {} input(s) ({}), not {}",
            inputs.len(),
            inputs
                .iter()
                .map(|p| format!("{}: {}", p.name, p.r#type.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
            arguments.len()
        ));
    }
    let mut bound = Vec::with_capacity(arguments.len());
    for (port, argument) in inputs.iter().zip(arguments) {
        let (name, expected) = (&port.name, port.r#type.as_str());
        let input = match (expected, argument) {
            ("file", RunArgument::File { file_name, digest }) => {
                InputValue::StoredFile { file_name, digest }
            }
            ("file", RunArgument::FileBytes { file_name, bytes }) => {
                InputValue::File { file_name, bytes }
            }
            // Fetched before binding (`Runs::submit_run`): never here.
            ("file", RunArgument::FileAt { url, .. }) => {
                return Err(format!("input `{name}`: {url} was not fetched"))
            }
            (
                _,
                RunArgument::File { .. }
                | RunArgument::FileBytes { .. }
                | RunArgument::FileAt { .. },
            ) => return Err(format!("input `{name}` is a {expected}, not a file")),
            ("boolean", RunArgument::Value(Value::Integer(i))) if i == 0 || i == 1 => {
                InputValue::Value(Value::Boolean(i == 1))
            }
            ("float", RunArgument::Value(Value::Integer(i))) => {
                InputValue::Value(Value::Float(i as f64))
            }
            (_, RunArgument::Value(value)) if kind_of(&value) == expected => {
                InputValue::Value(value)
            }
            (_, RunArgument::Value(value)) => {
                return Err(format!(
                    "input `{name}` is a {expected}, not a {}",
                    kind_of(&value)
                ))
            }
        };
        bound.push((name.clone(), input));
    }
    Ok(bound)
}

impl Runs {
    /// What `submission` runs, checked against the caller: from memory while recently checked
    /// (see [`RunTargets`]); else the namespace's change counter and the caller's membership of
    /// the owner are read in one query, and the target itself only when the counter moved.
    pub(super) async fn run_target(
        &self,
        caller: &Caller,
        submission: &RunSubmission,
    ) -> Result<Arc<RunTarget>, RegistryError> {
        let key = RunTargetKey {
            namespace: name_key(&submission.namespace),
            name: name_key(&submission.name),
            version: submission.version.as_deref().map(name_key),
        };
        // Before the store: a change committed after this read is not missed.
        let generation = self.registry.change_generation();
        if let Some(target) = self.targets.fresh(&key, &caller.user_id, generation) {
            return Ok(target);
        }
        let mut conn = self.store().pool().acquire().await?;
        let cached = self.targets.get(&key);
        let (revision, member) = match &cached {
            Some((_, target)) => {
                pipelines::namespace_revision_and_membership(
                    &mut conn,
                    &key.namespace,
                    &target.pipeline.owner_account_id,
                    &caller.user_id,
                )
                .await?
            }
            None => (
                pipelines::namespace_revision(&mut conn, &key.namespace).await?,
                false,
            ),
        };
        let target = match cached {
            Some((at, target)) if at == revision => {
                if !member {
                    return Err(not_a_member(&target.pipeline, caller));
                }
                self.targets
                    .confirm(&key, revision, generation, &caller.user_id);
                target
            }
            _ => {
                self.registry
                    .require_namespace_member(&mut conn, caller, &submission.namespace)
                    .await?;
                // Read after the counter: a change in between makes this entry one that the
                // next run re-reads, never one that is kept past a change.
                let (pipeline, version) = self
                    .registry
                    .resolve_reference(
                        &mut conn,
                        &submission.namespace,
                        &submission.name,
                        submission.version.as_deref(),
                    )
                    .await?;
                // Running takes the owner's capacity and sees its files: the owning account's
                // only.
                self.registry
                    .require_owner(&mut conn, caller, &pipeline)
                    .await?;
                let target = Arc::new(RunTarget {
                    manifest: manifest(&version.definition),
                    pipeline,
                    version,
                });
                self.targets
                    .put(key, revision, generation, target.clone(), &caller.user_id);
                target
            }
        };
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_definition_without_a_component_runs_nothing() {
        for definition in [json!(null), json!([]), json!({}), json!({"component": 7})] {
            assert_eq!(
                manifest(&definition).err().as_deref(),
                Some("the pipeline's manifest names no component"),
                "{definition}"
            );
        }
        // Ports that are not a list are read as none, as ever.
        let read = manifest(&json!({"component": "c.wasm", "inputs": "text"})).unwrap();
        assert!(read.inputs.as_slice().is_empty());
    }

    #[test]
    fn arguments_bind_to_the_declared_inputs() {
        let read = manifest(&json!({"component": "c.wasm", "inputs": [
            {"name": "flag", "type": "boolean"}, {"name": "ratio", "type": "float"},
            {"name": "data", "type": "file"}, {"name": "odd", "type": "pkl"}]}))
        .unwrap();
        let value = |v: Value| RunArgument::Value(v);
        let file = || RunArgument::File {
            file_name: "a.csv".into(),
            digest: "sha256:1".into(),
        };
        let bound = bind_inputs(
            &read,
            vec![
                value(Value::Integer(1)),
                value(Value::Integer(2)),
                file(),
                value(Value::String("x".into())),
            ],
        );
        assert_eq!(bound.unwrap_err(), "input `odd` is a pkl, not a string");
        let cases = [
            (
                vec![value(Value::Integer(1))],
                "the pipeline takes 4 input(s) (flag: boolean, ratio: float, data: file, odd: pkl), not 1",
            ),
            (
                vec![value(Value::Integer(2)), value(Value::Integer(2)), file(), file()],
                "input `flag` is a boolean, not a integer",
            ),
            (
                vec![value(Value::Boolean(true)), file(), file(), file()],
                "input `ratio` is a float, not a file",
            ),
        ];
        for (arguments, refusal) in cases {
            assert_eq!(bind_inputs(&read, arguments).unwrap_err(), refusal);
        }
        let bound = bind_inputs(
            &manifest(&json!({"component": "c.wasm", "inputs": [
                {"name": "flag", "type": "boolean"}, {"name": "ratio", "type": "float"}]}))
            .unwrap(),
            vec![value(Value::Integer(0)), value(Value::Integer(3))],
        )
        .unwrap();
        assert!(matches!(
            &bound[..],
            [(_, InputValue::Value(Value::Boolean(false))), (_, InputValue::Value(Value::Float(f)))] if *f == 3.0
        ));
    }
}
