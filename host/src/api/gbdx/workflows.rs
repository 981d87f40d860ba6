//! GBDX workflows: submit, read, cancel, follow by events, read a task's stdout and stderr,
//! list and search, over [`crate::runs::workflows`]. The wire shapes are GBDX's as its client
//! (gbdxtools' `workflow.py`, `simpleworkflows.py`) reads them: a state is a `{state, event}`
//! pair (`complete`/`canceled`, one `l`), events come as `{"Events": [...]}`, a listing or a
//! search as `{"Workflows": [id, ...]}`, and an empty output stream reads `<empty>`.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{caller, json_object, Answer, ErrorBody, Violation, NAMESPACE};
use crate::api::time::iso_instant;
use crate::api::AppState;
use crate::runs::workflows::{
    PortInput, PortValue, StepState, TaskEvent, TaskSpec, WorkflowEvent, WorkflowInfo,
    WorkflowQuery, WorkflowSpec,
};

/// GBDX's `{state, event}` pair: `state` is `pending`, `running` or `complete`; `event` says
/// what happened last (`submitted`, `scheduled`, `started`, `succeeded`, `failed`, `timedout`,
/// `canceled`).
#[derive(Serialize, ToSchema)]
pub struct StatePair {
    pub state: String,
    pub event: String,
}

impl StatePair {
    fn of(state: &str, event: &str) -> Self {
        StatePair {
            state: state.into(),
            event: event.into(),
        }
    }

    /// A workflow's or task's state (see [`step_words`]).
    fn of_step(state: StepState) -> Self {
        let (state, event) = step_words(state);
        Self::of(state, event)
    }

    /// The state a task is in once `event` happened (see [`event_words`]).
    fn of_event(event: TaskEvent) -> Self {
        let (state, event) = event_words(event);
        Self::of(state, event)
    }
}

/// GBDX's words for a workflow's or task's state: `(state, event)`. A task skipped after
/// another failed reads `canceled`, as GBDX showed it. The console's workflow pages say these
/// words too.
pub(crate) fn step_words(state: StepState) -> (&'static str, &'static str) {
    match state {
        StepState::Pending => ("pending", "submitted"),
        StepState::Running => ("running", "started"),
        StepState::Succeeded => ("complete", "succeeded"),
        StepState::Failed => ("complete", "failed"),
        StepState::TimedOut => ("complete", "timedout"),
        StepState::Cancelled | StepState::Skipped => ("complete", "canceled"),
    }
}

/// GBDX's words for an event of a task: the task's state after it, and the event.
pub(crate) fn event_words(event: TaskEvent) -> (&'static str, &'static str) {
    match event {
        TaskEvent::Submitted => ("pending", "submitted"),
        TaskEvent::Scheduled => ("pending", "scheduled"),
        TaskEvent::Started => ("running", "started"),
        TaskEvent::Succeeded => ("complete", "succeeded"),
        TaskEvent::Failed => ("complete", "failed"),
        TaskEvent::TimedOut => ("complete", "timedout"),
        TaskEvent::Cancelled | TaskEvent::Skipped => ("complete", "canceled"),
    }
}

/// A workflow: its state, and each task's.
#[derive(Serialize, ToSchema)]
pub struct WorkflowBody {
    pub id: String,
    pub name: Option<String>,
    /// The user who submitted it.
    pub owner: String,
    /// ISO-8601, UTC.
    pub submitted_time: String,
    /// ISO-8601, UTC; null until it is complete.
    pub completed_time: Option<String>,
    pub state: StatePair,
    /// Why it failed, timed out or was cancelled.
    pub error: Option<String>,
    /// In the order they run.
    pub tasks: Vec<WorkflowTaskBody>,
}

/// One task of a workflow.
#[derive(Serialize, ToSchema)]
pub struct WorkflowTaskBody {
    /// The key of its output streams (`…/tasks/{task_id}/stdout`).
    pub id: String,
    pub name: String,
    /// `name:version`, the version pinned at submission.
    #[serde(rename = "taskType")]
    pub task_type: String,
    pub state: StatePair,
    pub inputs: Vec<PortInput>,
    pub outputs: Vec<PortValue>,
    /// Why it failed, timed out, was cancelled or skipped.
    pub note: Option<String>,
    /// ISO-8601, UTC; null until it starts.
    pub start_time: Option<String>,
}

impl WorkflowBody {
    fn of(workflow: &WorkflowInfo) -> Self {
        WorkflowBody {
            id: workflow.id.clone(),
            name: workflow.name.clone(),
            owner: workflow.submitted_by.clone(),
            submitted_time: iso_instant(workflow.created_at_ms),
            completed_time: workflow.finished_at_ms.map(iso_instant),
            state: StatePair::of_step(workflow.state),
            error: workflow.error.clone(),
            tasks: workflow
                .tasks
                .iter()
                .map(|t| WorkflowTaskBody {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    task_type: format!("{}:{}", t.task, t.version),
                    state: StatePair::of_step(t.state),
                    inputs: t.inputs.clone(),
                    outputs: t.outputs.clone(),
                    note: t.error.clone(),
                    start_time: t.started_at_ms.map(iso_instant),
                })
                .collect(),
        }
    }
}

/// `{"Events": [...]}`, in the order they happened.
#[derive(Serialize, ToSchema)]
pub struct EventsBody {
    #[serde(rename = "Events")]
    pub events: Vec<EventBody>,
}

/// One event of a task.
#[derive(Serialize, ToSchema)]
pub struct EventBody {
    /// The task's name within its workflow.
    pub task: String,
    pub task_id: String,
    /// ISO-8601, UTC.
    pub timestamp: String,
    /// How long ago, in words (`3 minutes ago`).
    pub when: String,
    /// Empty, or why (a failure's error, who cancelled).
    pub note: String,
    /// The task's state after the event.
    pub state: String,
    pub event: String,
}

impl EventBody {
    fn of(event: &WorkflowEvent, now_ms: i64) -> Self {
        let StatePair { state, event: name } = StatePair::of_event(event.event);
        EventBody {
            task: event.task_name.clone(),
            task_id: event.task_id.clone(),
            timestamp: iso_instant(event.at_ms),
            when: time_ago(now_ms - event.at_ms),
            note: event.note.clone().unwrap_or_default(),
            state,
            event: name,
        }
    }
}

/// `3 minutes ago`, from milliseconds.
fn time_ago(elapsed_ms: i64) -> String {
    let seconds = elapsed_ms.max(0) / 1000;
    let (count, unit) = match seconds {
        0..60 => (seconds, "second"),
        60..3_600 => (seconds / 60, "minute"),
        3_600..86_400 => (seconds / 3_600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural} ago")
}

/// `{"Workflows": [id, ...]}`, newest first.
#[derive(Serialize, ToSchema)]
pub struct WorkflowIds {
    #[serde(rename = "Workflows")]
    pub workflows: Vec<String>,
}

/// A workflow to run.
#[derive(ToSchema)]
#[allow(dead_code)] // the document's description of what `submit_workflow` reads
pub struct WorkflowRequest {
    name: Option<String>,
    /// In any order: a task whose input comes from another runs after it.
    #[schema(min_items = 1)]
    tasks: Vec<WorkflowTaskRequest>,
}

/// A task of a workflow to run.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
pub struct WorkflowTaskRequest {
    /// Its name within the workflow (unique); `taskType` when absent.
    name: Option<String>,
    /// A registered task, `name` (its latest ready version) or `name:version`.
    #[schema(rename = "taskType")]
    task_type: String,
    /// The version, when `taskType` names none.
    version: Option<String>,
    /// Each input a `value`, or a `source`: `task:port`, an output of another task.
    inputs: Option<Vec<PortInput>>,
}

/// A search of the caller's account's workflows (gbdxtools' `Workflow.search`).
#[derive(Deserialize, ToSchema)]
pub struct SearchRequest {
    /// Submitted within this many hours; 12 when absent.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 2147483647)]
    pub lookback_h: Option<serde_json::Number>,
    /// A state or an event a workflow is in; `all` (the default) for any.
    pub state: Option<SearchState>,
    /// Submitted by this user (of the caller's account).
    pub owner: Option<String>,
}

/// What a search may filter on: a workflow's `state` or its `event` (see [`StatePair`]).
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SearchState {
    Submitted,
    Scheduled,
    Started,
    Canceled,
    Cancelling,
    Failed,
    Succeeded,
    Timedout,
    Pending,
    Running,
    Complete,
    Waiting,
    All,
}

impl SearchState {
    fn selects(self, pair: &StatePair) -> bool {
        if self == SearchState::All {
            return true;
        }
        let word = serde_json::to_value(self).ok();
        let word = word.as_ref().and_then(Value::as_str).unwrap_or_default();
        pair.state == word || pair.event == word
    }
}

/// How far back a search looks when the request does not say.
const DEFAULT_LOOKBACK_HOURS: u32 = 12;

/// Longest lookback a search takes, in hours (the document's maximum).
const MAX_LOOKBACK_HOURS: u32 = i32::MAX as u32;

/// A whole number of hours from 0 to [`MAX_LOOKBACK_HOURS`], written as JSON writes it
/// (`12` or `12.0`).
fn whole_hours(number: &serde_json::Number) -> Option<u32> {
    let hours = match number.as_u64() {
        Some(whole) => u32::try_from(whole).ok()?,
        None => {
            let float = number.as_f64()?;
            if float.fract() != 0.0 || !(0.0..=f64::from(MAX_LOOKBACK_HOURS)).contains(&float) {
                return None;
            }
            float as u32
        }
    };
    (hours <= MAX_LOOKBACK_HOURS).then_some(hours)
}

fn workflow_id(path: Result<Path<String>, PathRejection>) -> Answer<String> {
    let Path(id) = path.map_err(|r| Violation::Other(StatusCode::BAD_REQUEST, r.body_text()))?;
    Ok(id)
}

/// `POST /workflows`: tasks named by `taskType` (`name` or `name:version`, or `name` with a
/// `version` attribute), inputs given a `value` or wired from a `source` (`task:port`).
#[utoipa::path(post, path = "/workflows/v1/workflows", tag = "workflows",
    request_body(content = WorkflowRequest, content_type = "application/json"),
    responses((status = 201, body = WorkflowBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "a task still registering", body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 500, description = "a task failed registration", body = ErrorBody)))]
pub(super) async fn submit_workflow(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<(StatusCode, Json<WorkflowBody>)> {
    let caller = caller(&state, &headers).await?;
    let workflow = json_object(&bytes, "The workflow")?;
    let bad = |message: String| Violation::Other(StatusCode::BAD_REQUEST, message);
    let listed = workflow
        .get("tasks")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("A workflow needs a `tasks` list".into()))?;
    let mut tasks = Vec::with_capacity(listed.len());
    for task in listed {
        let field = |key: &str| task.get(key).and_then(Value::as_str).map(str::to_string);
        let task_type =
            field("taskType").ok_or_else(|| bad("Every task needs a `taskType`".into()))?;
        let (registered, pinned) = match task_type.split_once(':') {
            Some((name, version)) => (name.to_string(), Some(version.to_string())),
            None => (task_type.clone(), field("version")),
        };
        let inputs: Vec<PortInput> = match task.get("inputs") {
            None | Some(Value::Null) => Vec::new(),
            Some(inputs) => serde_json::from_value(inputs.clone()).map_err(|_| {
                bad(format!(
                    "The inputs of task `{task_type}` must be a list of {{name, value}} or {{name, source}}"
                ))
            })?,
        };
        tasks.push(TaskSpec {
            name: field("name").unwrap_or_else(|| registered.clone()),
            task: registered,
            version: pinned,
            inputs,
        });
    }
    let spec = WorkflowSpec {
        name: workflow
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string),
        tasks,
    };
    let submitted = state.runs.submit_workflow(&caller, NAMESPACE, spec).await?;
    Ok((StatusCode::CREATED, Json(WorkflowBody::of(&submitted))))
}

/// `GET /workflows/{id}`: the workflow's state and each task's state and outputs.
#[utoipa::path(get, path = "/workflows/v1/workflows/{id}", tag = "workflows",
    params(("id" = String, Path, description = "the workflow's id")),
    responses((status = 200, body = WorkflowBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "another account's workflow", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn get_workflow(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Answer<Json<WorkflowBody>> {
    let caller = caller(&state, &headers).await?;
    let id = workflow_id(path)?;
    let workflow = state.runs.workflow(&caller, &id).await?;
    Ok(Json(WorkflowBody::of(&workflow)))
}

/// `POST /workflows/{id}/cancel`: its unfinished tasks are cancelled, a running one stopped;
/// the answer is the workflow as the cancel left it. A complete workflow is a 409, unchanged.
/// Any body is ignored (gbdxtools sends an empty one).
#[utoipa::path(post, path = "/workflows/v1/workflows/{id}/cancel", tag = "workflows",
    params(("id" = String, Path, description = "the workflow's id")),
    responses((status = 200, body = WorkflowBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "another account's workflow", body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "the workflow is complete already", body = ErrorBody)))]
pub(super) async fn cancel_workflow(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Answer<Json<WorkflowBody>> {
    let caller = caller(&state, &headers).await?;
    let id = workflow_id(path)?;
    let workflow = state.runs.cancel_workflow(&caller, &id).await?;
    Ok(Json(WorkflowBody::of(&workflow)))
}

/// `GET /workflows/{id}/events`: every task's events, in the order they happened.
#[utoipa::path(get, path = "/workflows/v1/workflows/{id}/events", tag = "workflows",
    params(("id" = String, Path, description = "the workflow's id")),
    responses((status = 200, body = EventsBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "another account's workflow", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn workflow_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Answer<Json<EventsBody>> {
    let caller = caller(&state, &headers).await?;
    let id = workflow_id(path)?;
    let events = state.runs.workflow_events(&caller, &id).await?;
    let now = crate::store::now_millis();
    Ok(Json(EventsBody {
        events: events.iter().map(|e| EventBody::of(e, now)).collect(),
    }))
}

/// Which output stream of a task.
#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// A task's stream as text; `<empty>` when it wrote nothing (or has not run), as GBDX answered.
async fn task_stream(
    state: &AppState,
    headers: &HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    stream: Stream,
) -> Answer<impl IntoResponse> {
    let caller = caller(state, headers).await?;
    let Path((id, task_id)) =
        path.map_err(|r| Violation::Other(StatusCode::BAD_REQUEST, r.body_text()))?;
    let output = state.runs.task_output(&caller, &id, &task_id).await?;
    let text = match stream {
        Stream::Stdout => output.stdout,
        Stream::Stderr => output.stderr,
    };
    let text = text
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "<empty>".into());
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

/// `GET /workflows/{id}/tasks/{task_id}/stdout`: what the task wrote on stdout (the first MiB,
/// then a line saying how much more there was).
#[utoipa::path(get, path = "/workflows/v1/workflows/{id}/tasks/{task_id}/stdout", tag = "workflows",
    params(("id" = String, Path, description = "the workflow's id"), ("task_id" = String, Path, description = "the task's `id`")),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "another account's workflow", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn task_stdout(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Answer<impl IntoResponse> {
    task_stream(&state, &headers, path, Stream::Stdout).await
}

/// `GET /workflows/{id}/tasks/{task_id}/stderr`: what the task wrote on stderr (as stdout).
#[utoipa::path(get, path = "/workflows/v1/workflows/{id}/tasks/{task_id}/stderr", tag = "workflows",
    params(("id" = String, Path, description = "the workflow's id"), ("task_id" = String, Path, description = "the task's `id`")),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "another account's workflow", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn task_stderr(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Answer<impl IntoResponse> {
    task_stream(&state, &headers, path, Stream::Stderr).await
}

/// `GET /workflows`: the ids of every workflow of the caller's account, newest first.
#[utoipa::path(get, path = "/workflows/v1/workflows", tag = "workflows",
    responses((status = 200, body = WorkflowIds), (status = 401, body = ErrorBody)))]
pub(super) async fn list_workflows(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Answer<Json<WorkflowIds>> {
    let caller = caller(&state, &headers).await?;
    let found = state
        .runs
        .workflows(&caller, &WorkflowQuery::default())
        .await?;
    Ok(Json(WorkflowIds {
        workflows: found.into_iter().map(|w| w.id).collect(),
    }))
}

/// `POST /workflows/search`: the ids of the caller's account's workflows submitted within
/// `lookback_h` hours, in `state`, by `owner`; newest first. `{}` searches with the defaults.
#[utoipa::path(post, path = "/workflows/v1/workflows/search", tag = "workflows",
    request_body(content = SearchRequest, content_type = "application/json"),
    responses((status = 200, body = WorkflowIds), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 413, body = ErrorBody)))]
pub(super) async fn search_workflows(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<Json<WorkflowIds>> {
    let caller = caller(&state, &headers).await?;
    let request: SearchRequest = serde_json::from_slice(&bytes)
        .map_err(|e| Violation::Other(StatusCode::BAD_REQUEST, format!("Invalid search: {e}")))?;
    let hours = match &request.lookback_h {
        None => DEFAULT_LOOKBACK_HOURS,
        Some(hours) => whole_hours(hours).ok_or_else(|| {
            Violation::Other(
                StatusCode::BAD_REQUEST,
                format!("Invalid search: lookback_h must be a whole number of hours from 0 to {MAX_LOOKBACK_HOURS}, not {hours}"),
            )
        })?,
    };
    let lookback_ms = i64::from(hours) * 3_600_000;
    let query = WorkflowQuery {
        since_ms: Some(crate::store::now_millis().saturating_sub(lookback_ms)),
        owner: request.owner,
    };
    let wanted = request.state.unwrap_or(SearchState::All);
    let found = state.runs.workflows(&caller, &query).await?;
    Ok(Json(WorkflowIds {
        workflows: found
            .into_iter()
            .filter(|w| wanted.selects(&StatePair::of_step(w.state)))
            .map(|w| w.id)
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_selects_by_state_or_by_event() {
        let cancelled = StatePair::of_step(StepState::Cancelled);
        assert!(SearchState::Canceled.selects(&cancelled));
        assert!(SearchState::Complete.selects(&cancelled));
        assert!(SearchState::All.selects(&cancelled));
        assert!(!SearchState::Running.selects(&cancelled));
        assert!(!SearchState::Succeeded.selects(&cancelled));
        let running = StatePair::of_step(StepState::Running);
        assert!(SearchState::Started.selects(&running));
        assert!(SearchState::Running.selects(&running));
    }

    #[test]
    fn lookback_hours_are_whole_numbers_within_u32() {
        let hours = |text: &str| whole_hours(&serde_json::from_str(text).unwrap());
        assert_eq!(hours("12"), Some(12));
        assert_eq!(hours("12.0"), Some(12));
        assert_eq!(hours("2147483647"), Some(2_147_483_647));
        assert_eq!(hours("2147483648"), None);
        assert_eq!(hours("2147483648.0"), None);
        assert_eq!(hours("1.5"), None);
        assert_eq!(hours("-1"), None);
        assert_eq!(hours("-0.0"), Some(0));
    }

    #[test]
    fn time_ago_counts_in_the_largest_whole_unit() {
        assert_eq!(time_ago(0), "0 seconds ago");
        assert_eq!(time_ago(1_000), "1 second ago");
        assert_eq!(time_ago(125_000), "2 minutes ago");
        assert_eq!(time_ago(14 * 3_600_000 + 5), "14 hours ago");
        assert_eq!(time_ago(3 * 86_400_000), "3 days ago");
        assert_eq!(time_ago(-5), "0 seconds ago");
    }
}
