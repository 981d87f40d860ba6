//! Tasks: the GBDX tasks (the shared `gbdx` namespace, readable by everyone as the GBDX
//! surface's `GET /tasks` is), each with its versions, their registration state, attempts and
//! last error. While a version is still registering the page refreshes itself. A task's own
//! page shows each version's definition (as `GET /tasks/{name}:{version}` answers it) and a
//! form that submits a one-task workflow of it: a field per input port of the definition, the
//! version left to GBDX's rule (the latest ready one) or pinned.
//!
//! The registry's own listing and version reads, as `/v1` and GBDX call them; the submission is
//! [`crate::runs::Runs::submit_workflow`], as GBDX's `POST /workflows` calls it, and a refusal
//! is worded by GBDX's table ([`Violation`]: "… has been submitted for registration").

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};
use serde_json::Value as Json;

use super::layout::{self, Nav, PageQuery, PAGE_SIZE};
use super::session::{Posted, Session};
use super::PageResult;
use crate::api::gbdx::Violation;
use crate::api::AppState;
use crate::registry::{VersionInfo, VersionState, GBDX_NAMESPACE};
use crate::runs::workflows::{PortInput, TaskSpec, WorkflowSpec};

const BASE: &str = "/console/tasks";
/// How often a page with a registration in progress reloads.
const REFRESH_SECONDS: u32 = 2;

/// `GET /console/tasks`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(listing): Query<PageQuery>,
) -> PageResult {
    let page = listing.number();
    let tasks = state
        .registry
        .list_pipelines(&session.caller, Some(GBDX_NAMESPACE))
        .await?;
    let has_more = tasks.len() > page * PAGE_SIZE;
    let mut shown = Vec::new();
    for task in tasks.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE) {
        let versions: Vec<VersionInfo> = state
            .registry
            .list_versions(&session.caller, GBDX_NAMESPACE, &task.name)
            .await?
            .into_iter()
            .rev()
            .collect();
        shown.push((task, versions));
    }
    let registering = shown
        .iter()
        .flat_map(|(_, versions)| versions)
        .any(|v| v.state == VersionState::Registering);
    let content = html! {
        h1 { "Tasks" }
        p.lede {
            "GBDX tasks and their versions. A version is usable in workflows once it is ready. "
            a href="/console/workflows" { "Your workflows →" }
        }
        @if registering {
            p.notice role="status" data-refresh-seconds=(REFRESH_SECONDS) {
                "A version is still registering: this page refreshes every " (REFRESH_SECONDS) " seconds until it is ready or failed."
            }
        }
        @if shown.is_empty() {
            (layout::empty("No tasks are registered yet.", html! {
                "Register one through the GBDX API: " code { "POST /workflows/v1/tasks" }
                " with its definition (README's GBDX example shows one). It appears here while it registers; "
                "once it is ready, open it here to run it in a workflow."
            }))
        }
        @for (task, versions) in &shown {
            section.card data-task=(task.name) {
                h2 { a href=(format!("{BASE}/{}", task.name)) { (task.name) } }
                p.muted {
                    "Owned by " (task.owner)
                    @if let Some(description) = &task.description { " · " (description) }
                }
                (versions_table(versions, false))
            }
        }
        (layout::pager(BASE, page, has_more, "tasks"))
    };
    Ok(layout::html(
        StatusCode::OK,
        layout::page("Tasks", Some(&session), Nav::Tasks, content),
    ))
}

/// The versions of a task, newest first; with each one's definition when `definitions`.
fn versions_table(versions: &[VersionInfo], definitions: bool) -> Markup {
    html! {
        table {
            thead { tr {
                th scope="col" { "Version" } th scope="col" { "State" } th scope="col" { "Attempts" }
                th scope="col" { "Last error" } th scope="col" { "Registered" } th scope="col" { "Digest" }
            } }
            tbody {
                @for v in versions {
                    tr data-version=(v.version) {
                        td data-label="Version" { (v.version) }
                        td data-label="State" {
                            (layout::badge(v.state.as_str()))
                            @if v.state == VersionState::Ready { (layout::approved_by(&v.approved_by)) }
                        }
                        td data-label="Attempts" { (v.registration.attempts) }
                        td data-label="Last error" {
                            @match &v.registration.last_error {
                                Some(error) => span.error { (error) },
                                None => span.muted { "—" },
                            }
                        }
                        td data-label="Registered" { (layout::time(v.registered_at_ms)) " by " (v.registered_by) }
                        td data-label="Digest" {
                            @match &v.content_digest {
                                Some(digest) => code { (digest) },
                                None => span.muted { "—" },
                            }
                        }
                    }
                    @if definitions {
                        tr.definition data-version=(v.version) {
                            td colspan="6" data-label="Definition" {
                                details {
                                    summary { "Definition of " (v.version) }
                                    pre.mono { (serde_json::to_string_pretty(&v.definition).unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An input port of a task's definition, as `inputPortDescriptors` declares it.
struct InputPort {
    name: String,
    kind: String,
    required: bool,
    description: Option<String>,
}

fn input_ports(definition: &Json) -> Vec<InputPort> {
    definition
        .get("inputPortDescriptors")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|port| {
            let text = |key: &str| port.get(key).and_then(Json::as_str).map(str::to_string);
            Some(InputPort {
                name: text("name")?,
                kind: text("type").unwrap_or_else(|| "string".into()),
                required: port
                    .get("required")
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
                description: text("description"),
            })
        })
        .collect()
}

/// `GET /console/tasks/{name}`: a task, its versions with their definitions, and the form
/// that runs it in a workflow.
pub async fn task_page(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
) -> PageResult {
    render_task(&state, &session, &name, None, &HashMap::new()).await
}

async fn render_task(
    state: &AppState,
    session: &Session,
    name: &str,
    refused: Option<(StatusCode, String)>,
    typed: &HashMap<String, String>,
) -> PageResult {
    let versions: Vec<VersionInfo> = state
        .registry
        .list_versions(&session.caller, GBDX_NAMESPACE, name)
        .await?
        .into_iter()
        .rev()
        .collect();
    let registering = versions
        .iter()
        .any(|v| v.state == VersionState::Registering);
    // The form is made from the version GBDX would run: the latest ready one.
    let latest = versions.iter().find(|v| v.state == VersionState::Ready);
    let typed_of = |key: &str| typed.get(key).cloned().unwrap_or_default();
    let content = html! {
        h1 { "Task " (name) }
        p.lede { a href=(BASE) { "← Tasks" } " · " a href="/console/workflows" { "Your workflows" } }
        @if registering && refused.is_none() {
            p.notice role="status" data-refresh-seconds=(REFRESH_SECONDS) {
                "A version is still registering: this page refreshes every " (REFRESH_SECONDS) " seconds until it is ready or failed."
            }
        }
        section.card {
            h2 { "Versions" }
            (versions_table(&versions, true))
        }
        section.card #run-task aria-labelledby="run-task-title" {
            h2 #run-task-title { "Run in a workflow" }
            @match latest {
                None => p.muted { "No version is ready yet: a workflow can run this task once one is." },
                Some(latest) => {
                    @if let Some((_, message)) = &refused {
                        div.alert role="alert" #workflow-error { (message) }
                    }
                    form method="post" action=(format!("{BASE}/{name}")) novalidate {
                        (layout::csrf(session))
                        div.grid {
                            (layout::field("workflow-name", "Workflow name (optional)", None, html! {
                                input #workflow-name name="workflow-name" type="text" value=(typed_of("workflow-name")) autocomplete="off";
                            }))
                            (layout::field("version", "Version", None, html! {
                                select #version name="version" aria-describedby="version-hint" {
                                    option value="" { "Latest ready (" (latest.version) ")" }
                                    @for v in &versions {
                                        option value=(v.version) selected[typed_of("version") == v.version] {
                                            (v.version) " (" (v.state.as_str()) ")"
                                        }
                                    }
                                }
                                p.hint #version-hint { "As GBDX does: without a version the latest ready one runs; a version still registering cannot." }
                            }))
                        }
                        @let ports = input_ports(&latest.definition);
                        @if ports.is_empty() { p.muted { "This task declares no input ports." } }
                        @for (i, port) in ports.iter().enumerate() {
                            @let key = format!("port-{i}");
                            @let field_name = format!("port:{}", port.name);
                            @let hint = format!("{key}-hint");
                            (layout::field(&key, &format!("{} ({}{})", port.name, port.kind, if port.required { ", required" } else { "" }), None, html! {
                                input id=(key) name=(field_name) type="text" value=(typed_of(&field_name)) autocomplete="off"
                                    aria-describedby=[port.description.as_ref().map(|_| hint.clone())];
                                @if let Some(description) = &port.description { p.hint id=(hint) { (description) } }
                            }))
                        }
                        button type="submit" { "Submit workflow" }
                    }
                }
            }
        }
    };
    let status = refused
        .as_ref()
        .map_or(StatusCode::OK, |(status, _)| *status);
    Ok(layout::html(
        status,
        layout::page(&format!("Task {name}"), Some(session), Nav::Tasks, content),
    ))
}

/// `POST /console/tasks/{name}`: a one-task workflow of it, each port given a value by name
/// (blank ports left out), submitted as GBDX's `POST /workflows` submits; its page next.
pub async fn submit_workflow(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<HashMap<String, String>>,
) -> PageResult {
    let Posted { session, form } = posted;
    let given = |key: &str| {
        form.get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    // Each port's value by the port's name (`port:{name}`), whichever version runs.
    let mut given_ports: Vec<(&str, &str)> = form
        .iter()
        .filter_map(|(key, value)| Some((key.strip_prefix("port:")?, value.trim())))
        .filter(|(_, value)| !value.is_empty())
        .collect();
    given_ports.sort();
    let inputs = given_ports
        .into_iter()
        .map(|(name, value)| PortInput::Value {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect();
    let version = given("version");
    let spec = WorkflowSpec {
        name: given("workflow-name"),
        tasks: vec![TaskSpec {
            name: name.clone(),
            task: name.clone(),
            version,
            inputs,
        }],
    };
    match state
        .runs
        .submit_workflow(&session.caller, GBDX_NAMESPACE, spec)
        .await
    {
        Ok(workflow) => {
            Ok(Redirect::to(&format!("/console/workflows/{}", workflow.id)).into_response())
        }
        Err(error) => {
            let refused = Violation::from(error).wording();
            render_task(&state, &session, &name, Some(refused), &form).await
        }
    }
}
