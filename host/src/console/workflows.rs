//! Workflows: the GBDX workflows of the session's accounts, newest first, each with its state
//! and submission time; a workflow's page shows each task's state and outputs, what each task
//! wrote on stdout and stderr, and the workflow's events, refreshes itself until the workflow
//! is finished, and cancels it while it is not. States and events are said in GBDX's own words
//! (`complete`, `canceled`, `timedout`: the surface's table, [`step_words`]).
//!
//! The same core reads as the GBDX routes ([`crate::runs::Runs::workflows`],
//! [`crate::runs::Runs::workflow`], [`crate::runs::Runs::workflow_events`],
//! [`crate::runs::Runs::task_output`], [`crate::runs::Runs::cancel_workflow`]). Another
//! account's workflow is a 404 here, as another account's run is on the run page: a person
//! browsing learns nothing of what another account holds.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};

use super::layout::{self, Nav, PageQuery, PAGE_SIZE};
use super::session::{NoFields, Posted, Session};
use super::{ConsoleError, PageResult};
use crate::api::gbdx::{event_words, step_words};
use crate::api::AppState;
use crate::registry::{Refusal, RegistryError};
use crate::runs::workflows::{PortInput, StepState, TaskOutput, WorkflowQuery};

const BASE: &str = "/console/workflows";
/// How often a page with a workflow at work reloads (as the run page does).
const REFRESH_SECONDS: u32 = 1;

/// `GET /console/workflows`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(listing): Query<PageQuery>,
) -> PageResult {
    let page = listing.number();
    let workflows = state
        .runs
        .workflows(&session.caller, &WorkflowQuery::default())
        .await?;
    let has_more = workflows.len() > page * PAGE_SIZE;
    let shown: Vec<_> = workflows
        .iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    let at_work = shown.iter().any(|w| !w.state.is_complete());
    let content = html! {
        h1 { "Workflows" }
        p.lede { "GBDX workflows of your account, newest first. " a href="/console/tasks" { "← Tasks" } }
        @if at_work {
            p.notice role="status" data-refresh-seconds=(REFRESH_SECONDS) { "A workflow is still at work: this page refreshes until it is finished." }
        }
        @if shown.is_empty() {
            (layout::empty("No workflows yet.", html! {
                "Open a ready task on " a href="/console/tasks" { "Tasks" } " and submit it from its page, or submit one through the GBDX API ("
                code { "POST /workflows/v1/workflows" } "). It appears here, with each task's outputs."
            }))
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Workflow" } th scope="col" { "Name" } th scope="col" { "State" }
                    th scope="col" { "Submitted" }
                } }
                tbody {
                    @for w in &shown {
                        tr data-workflow=(w.id) {
                            td data-label="Workflow" { a.mono href=(format!("{BASE}/{}", w.id)) { (w.id) } }
                            td data-label="Name" {
                                @match &w.name { Some(name) => (name), None => span.muted { "—" } }
                            }
                            td data-label="State" { (state_badge(w.state)) }
                            td data-label="Submitted" { (layout::time(w.created_at_ms)) " by " (w.submitted_by) }
                        }
                    }
                }
            }
        }
        (layout::pager(BASE, page, has_more, "workflows"))
    };
    Ok(layout::html(
        StatusCode::OK,
        layout::page("Workflows", Some(&session), Nav::Tasks, content),
    ))
}

/// A state as GBDX says it: `pending`, `running`, or once complete what ended it
/// (`succeeded`, `failed`, `timedout`, `canceled`).
fn state_badge(state: StepState) -> Markup {
    let (state, event) = step_words(state);
    layout::badge(if state == "complete" { event } else { state })
}

/// Another account's workflow reads as one that does not exist.
fn unseen(error: RegistryError) -> ConsoleError {
    match error {
        RegistryError::Refused(Refusal::WorkflowOfAnotherAccount { id }) => {
            RegistryError::from(Refusal::WorkflowNotFound { id }).into()
        }
        error => error.into(),
    }
}

fn input_text(input: &PortInput) -> String {
    match input {
        PortInput::Value { name, value } => format!("{name} = {value}"),
        PortInput::Source { name, source } => format!("{name} ← {source}"),
    }
}

/// `GET /console/workflows/{id}`: one workflow, its tasks and its events.
pub async fn workflow_page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let caller = &session.caller;
    let workflow = state.runs.workflow(caller, &id).await.map_err(unseen)?;
    let events = state
        .runs
        .workflow_events(caller, &id)
        .await
        .map_err(unseen)?;
    let mut outputs = Vec::with_capacity(workflow.tasks.len());
    for task in &workflow.tasks {
        outputs.push(
            state
                .runs
                .task_output(caller, &id, &task.id)
                .await
                .map_err(unseen)?,
        );
    }
    let title = workflow.name.clone().unwrap_or_else(|| workflow.id.clone());
    let content = html! {
        h1 { "Workflow " (title) }
        @if !workflow.state.is_complete() {
            p.notice role="status" data-refresh-seconds=(REFRESH_SECONDS) { "This workflow is " (step_words(workflow.state).0) ": the page refreshes until it is finished." }
        }
        section.card {
            div.actions {
                p { "State: " span #workflow-state { (state_badge(workflow.state)) } }
                @if !workflow.state.is_complete() {
                    form method="post" action=(format!("{BASE}/{}/cancel", workflow.id)) data-confirm="Cancel this workflow? Its unfinished tasks are stopped." {
                        (layout::csrf(&session))
                        button.danger type="submit" { "Cancel workflow" }
                    }
                }
            }
            p.muted {
                "Workflow " code { (workflow.id) } " · submitted " (layout::time(workflow.created_at_ms)) " by " (workflow.submitted_by)
                @if let Some(finished) = workflow.finished_at_ms { " · finished " (layout::time(finished)) }
            }
            @if let Some(error) = &workflow.error {
                div.alert role="alert" #workflow-error { (error) }
            }
            h2 { "Tasks" }
            table {
                thead { tr {
                    th scope="col" { "Task" } th scope="col" { "Version" } th scope="col" { "State" }
                    th scope="col" { "Inputs" } th scope="col" { "Outputs or note" }
                } }
                tbody {
                    @for task in &workflow.tasks {
                        tr data-task=(task.name) {
                            td data-label="Task" { (task.name) }
                            td data-label="Version" { (task.task) ":" (task.version) }
                            td data-label="State" { (state_badge(task.state)) }
                            td data-label="Inputs" {
                                @for (i, input) in task.inputs.iter().enumerate() {
                                    @if i > 0 { br; }
                                    (input_text(input))
                                }
                                @if task.inputs.is_empty() { span.muted { "none" } }
                            }
                            td data-label="Outputs or note" class="task-outputs" {
                                @if let Some(note) = &task.error { span.error { (note) } }
                                @for (i, output) in task.outputs.iter().enumerate() {
                                    @if i > 0 { br; }
                                    span.output data-output=(output.name) { (output.name) " = " (output.value) }
                                }
                                @if task.error.is_none() && task.outputs.is_empty() { span.muted { "—" } }
                            }
                        }
                    }
                }
            }
            h2 { "What each task wrote" }
            @for (task, output) in workflow.tasks.iter().zip(&outputs) {
                (task_streams(&task.name, task.state, output))
            }
            h2 { "Events" }
            table #workflow-events {
                thead { tr { th scope="col" { "When" } th scope="col" { "Task" } th scope="col" { "Event" } th scope="col" { "Note" } } }
                tbody {
                    @for event in &events {
                        tr.event {
                            td data-label="When" { (layout::time(event.at_ms)) }
                            td data-label="Task" { (event.task_name) }
                            td data-label="Event" { (event_words(event.event).1) }
                            td data-label="Note" {
                                @match &event.note { Some(note) => (note), None => span.muted { "—" } }
                            }
                        }
                    }
                }
            }
        }
        p { a href=(BASE) { "← All workflows" } }
    };
    Ok(layout::html(
        StatusCode::OK,
        layout::page("Workflow", Some(&session), Nav::Tasks, content),
    ))
}

/// What one task wrote, stdout then stderr, each in its own `<pre>` (as GBDX's
/// `…/tasks/{id}/stdout` and `/stderr` answer it: the first MiB, then a line saying how much
/// more there was).
fn task_streams(name: &str, state: StepState, output: &TaskOutput) -> Markup {
    let stdout = output.stdout.as_deref().filter(|t| !t.is_empty());
    let stderr = output.stderr.as_deref().filter(|t| !t.is_empty());
    html! {
        section.task-streams data-task=(name) {
            h3 { (name) }
            @if stdout.is_none() && stderr.is_none() {
                p.muted.streams-empty {
                    @if matches!(state, StepState::Pending | StepState::Running) { "Nothing written yet." }
                    @else { "This task wrote nothing." }
                }
            }
            @if let Some(text) = stdout {
                h4 { "Standard output" }
                pre.log.log-stdout { (text) }
            }
            @if let Some(text) = stderr {
                h4 { "Standard error" }
                pre.log.log-stderr { (text) }
            }
        }
    }
}

/// `POST /console/workflows/{id}/cancel`: the core's cancel, as GBDX's; the page again.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<NoFields>,
) -> PageResult {
    state
        .runs
        .cancel_workflow(&posted.session.caller, &id)
        .await
        .map_err(unseen)?;
    Ok(Redirect::to(&format!("{BASE}/{id}")).into_response())
}
