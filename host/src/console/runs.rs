//! Runnable pipelines and their runs (Mystic): the runnable pipelines the session may read,
//! each with its typed inputs; a run form generated from the manifest of the latest ready
//! version; the runs of the session's accounts with state, outputs and error. A page showing a
//! run still at work refreshes itself until it is finished.
//!
//! A run from the form is the same submission Mystic's `POST /v4/runs` makes
//! ([`crate::runs::Runs::submit_run`], in the background, waiting for capacity): the inputs are
//! checked against the manifest there, and a bad one is recorded as the run's `input_error`.
//! Here a field is only read as its declared type (a number, JSON), and one that cannot be is
//! shown beside the field before anything is submitted. A file input is a file chosen in the
//! form (`multipart/form-data`), kept as an upload of the account by the same core call as
//! Mystic's `POST /v4/files` and named in the run as Mystic's client names an upload; a file
//! missing, past the body limit or past the account's quota is shown beside its field.
//!
//! A run's page also shows what its component printed (the same
//! [`crate::runs::Runs::run_logs`] Mystic's `GET /v4/logs/run/{id}` answers from), and links
//! each file output by Mystic's signed download link ([`crate::api::mystic::FileLinks`]).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};
use pipewright_manifest::{Port, PortType, RunManifest};
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::layout::{self, Nav, PAGE_SIZE};
use super::session::{PostedFiles, Session};
use super::{ConsoleError, PageResult};
use crate::api::mystic::{upload_path, FileLinks, RUNNABLE_TYPE};
use crate::api::AppState;
use crate::registry::{RegistryError, VersionInfo};
use crate::runs::{RunArgument, RunLogs, RunRecord, RunState, RunSubmission, Value};

const BASE: &str = "/console/runs";
const REFRESH_SECONDS: u32 = 1;

#[derive(Deserialize, Default)]
pub struct Listing {
    /// Runs older than this one (the next page of runs).
    before: Option<String>,
    /// The page of runnable pipelines, from 1.
    page: Option<usize>,
}

fn unfinished(state: RunState) -> bool {
    matches!(state, RunState::Created | RunState::Running)
}

/// `GET /console/runs`: the runnable pipelines, then the runs.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(listing): Query<Listing>,
) -> PageResult {
    let caller = &session.caller;
    let page = listing.page.unwrap_or(1).max(1);
    let all_runnable: Vec<_> = state
        .registry
        .list_pipelines(caller, None)
        .await?
        .into_iter()
        .filter(|pipeline| pipeline.pipeline_type == RUNNABLE_TYPE)
        .collect();
    let more_runnable = all_runnable.len() > page * PAGE_SIZE;
    let mut runnable = Vec::new();
    for pipeline in all_runnable
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
    {
        // A pipeline with no ready version yet is listed without inputs.
        let latest = state
            .registry
            .version(caller, &pipeline.namespace, &pipeline.name, None)
            .await
            .ok();
        runnable.push((pipeline, latest));
    }
    let mut runs = state
        .runs
        .list_runs(caller, listing.before.as_deref(), PAGE_SIZE as u32 + 1)
        .await?;
    let has_more = runs.len() > PAGE_SIZE;
    runs.truncate(PAGE_SIZE);
    let at_work = runs.iter().any(|run| unfinished(run.state));
    let content = html! {
        h1 { "Runs" }
        @if at_work {
            p.notice role="status" data-refresh-seconds=(REFRESH_SECONDS) { "A run is still at work: this page refreshes until it is finished." }
        }
        h2 { "Runnable pipelines" }
        @if runnable.is_empty() {
            (layout::empty("You have no runnable pipelines yet.", html! {
                "Push one with " code { "pipewright pipeline push DIR --server URL --token TOKEN" }
                " (README's Mystic example builds one); then run it from here."
            }))
        } @else {
            table {
                thead { tr { th scope="col" { "Pipeline" } th scope="col" { "Latest" } th scope="col" { "Inputs" } th scope="col" { "Run" } } }
                tbody {
                    @for (pipeline, latest) in &runnable {
                        @let pointer = format!("{}/{}", pipeline.namespace, pipeline.name);
                        tr data-pipeline=(pointer) {
                            td data-label="Pipeline" {
                                strong { (pointer) }
                                @if let Some(description) = &pipeline.description { br; span.muted { (description) } }
                            }
                            td data-label="Latest" {
                                @match latest {
                                    Some(v) => { (v.version) (layout::approved_by(&v.approved_by)) },
                                    None => span.muted { "no ready version" },
                                }
                            }
                            td data-label="Inputs" {
                                @if let Some(v) = latest { (inputs_summary(&manifest_of(v))) }
                            }
                            td data-label="Run" {
                                @if latest.is_some() {
                                    a.button href=(format!("{BASE}/new/{pointer}")) aria-label=(format!("Run {pointer}")) { "Run…" }
                                }
                            }
                        }
                    }
                }
            }
        }
        (layout::pager(BASE, page, more_runnable, "runnable pipelines"))
        h2 { "Recent runs" }
        @if runs.is_empty() && listing.before.is_none() {
            (layout::empty("No runs yet.", html! { "Choose Run… beside a pipeline above: its run appears here, with its outputs." }))
        } @else {
            table {
                thead { tr { th scope="col" { "Run" } th scope="col" { "Pipeline" } th scope="col" { "State" } th scope="col" { "Outputs or error" } th scope="col" { "Submitted" } } }
                tbody {
                    @for run in &runs {
                        tr data-run=(run.id) {
                            td data-label="Run" { a.mono href=(format!("{BASE}/{}", run.id)) { (run.id) } }
                            td data-label="Pipeline" { (run.pipeline) ":" (run.version) }
                            td data-label="State" { (layout::badge(run.state.as_str())) }
                            td data-label="Outputs or error" { (outcome_summary(run)) }
                            td data-label="Submitted" { (layout::time(run.created_at_ms)) }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages of runs" {
                @if listing.before.is_some() { a href=(BASE) { "← Newest" } }
                @if has_more {
                    @if let Some(last) = runs.last() {
                        a href=(format!("{BASE}?before={}", last.id)) rel="next" { "Older →" }
                    }
                }
            }
        }
    };
    Ok(layout::html(
        StatusCode::OK,
        layout::page("Runs", Some(&session), Nav::Runs, content),
    ))
}

fn manifest_of(version: &VersionInfo) -> RunManifest {
    RunManifest::from_json(&version.definition).unwrap_or_default()
}

fn inputs_summary(manifest: &RunManifest) -> Markup {
    html! {
        @for (i, port) in manifest.inputs.as_slice().iter().enumerate() {
            @if i > 0 { ", " }
            (port.name) ": " code { (port.r#type.as_str()) }
        }
        @if manifest.inputs.as_slice().is_empty() { span.muted { "none" } }
    }
}

fn outcome_summary(run: &RunRecord) -> Markup {
    html! {
        @if let Some(error) = &run.error {
            span.error { (error.kind) ": " (error.message) }
        } @else if run.state == RunState::Completed {
            @for (i, output) in run.outputs.iter().enumerate() {
                @if i > 0 { ", " }
                (output_text(output))
            }
        } @else {
            span.muted { "—" }
        }
    }
}

fn output_text(output: &crate::runs::RunOutput) -> String {
    match (&output.file, &output.value) {
        (Some(file), _) => format!("{} ({} bytes)", file.name, file.size),
        (None, Json::String(text)) => text.clone(),
        (None, value) => value.to_string(),
    }
}

/// `GET /console/runs/new/{namespace}/{name}`: the run form of the latest ready version.
pub async fn form(
    State(state): State<AppState>,
    session: Session,
    Path((namespace, name)): Path<(String, String)>,
) -> PageResult {
    let version = state
        .registry
        .version(&session.caller, &namespace, &name, None)
        .await?;
    Ok(run_form(
        StatusCode::OK,
        &session,
        &version,
        &HashMap::new(),
        &HashMap::new(),
    ))
}

fn run_form(
    status: StatusCode,
    session: &Session,
    version: &VersionInfo,
    typed: &HashMap<String, String>,
    errors: &HashMap<String, String>,
) -> axum::response::Response {
    let manifest = manifest_of(version);
    let pointer = format!("{}/{}", version.namespace, version.name);
    let content = html! {
        h1 { "Run " (pointer) ":" (version.version) }
        @if let Some(description) = &manifest.description { p.lede { (description) } }
        section.card {
            form method="post" action=(format!("{BASE}/new/{pointer}")) enctype="multipart/form-data" novalidate {
                (layout::csrf(session))
                @if manifest.inputs.as_slice().is_empty() {
                    p.muted { "This pipeline takes no inputs." }
                }
                @for (i, port) in manifest.inputs.as_slice().iter().enumerate() {
                    (input_field(i, port, typed, errors))
                }
                button type="submit" { "Run" }
                " "
                a href=(BASE) { "Cancel" }
            }
        }
    };
    layout::html(
        status,
        layout::page(&format!("Run {pointer}"), Some(session), Nav::Runs, content),
    )
}

/// One input's control, by its declared type; its form name is `input-{index}`.
fn input_field(
    index: usize,
    port: &Port,
    typed: &HashMap<String, String>,
    errors: &HashMap<String, String>,
) -> Markup {
    let key = format!("input-{index}");
    let value = typed.get(&key).map(String::as_str).unwrap_or_default();
    let error = errors.get(&key).map(String::as_str);
    let label = format!("{} ({})", port.name, port.r#type.as_str());
    let described = error.map(|_| format!("{key}-error"));
    let control = match &port.r#type {
        PortType::Integer => {
            html! { input id=(key) name=(key) type="number" step="1" value=(value) required aria-describedby=[described]; }
        }
        PortType::Float => {
            html! { input id=(key) name=(key) type="number" step="any" value=(value) required aria-describedby=[described]; }
        }
        PortType::Boolean => html! {
            select id=(key) name=(key) aria-describedby=[described] {
                option value="true" selected[value == "true"] { "true" }
                option value="false" selected[value == "false"] { "false" }
            }
        },
        PortType::Dictionary | PortType::Array => html! {
            textarea id=(key) name=(key) rows="3" class="mono" aria-describedby=[described]
                placeholder=(if port.r#type == PortType::Dictionary { "{\"key\": \"value\"}" } else { "[1, 2, 3]" }) { (value) }
        },
        PortType::File => {
            let hint = format!("{key}-hint");
            let described = match &described {
                Some(error) => format!("{hint} {error}"),
                None => hint.clone(),
            };
            html! {
                input id=(key) name=(key) type="file" required aria-describedby=(described);
                p.hint id=(hint) {
                    "Uploaded to your account's files (as " code { "POST /v4/files" } " does), at most "
                    (crate::api::MAX_BODY_BYTES >> 20) " MiB, within your account's upload quota."
                    @if !errors.is_empty() { " Choose the file again: a browser does not keep it when a form is shown again." }
                }
            }
        }
        _ => {
            html! { input id=(key) name=(key) type="text" value=(value) aria-describedby=[described]; }
        }
    };
    layout::field(&key, &label, error, control)
}

/// A field as the value of its declared type; Err: why it is not one.
fn argument(port: &Port, text: &str) -> Result<(RunArgument, Json), String> {
    let kind = port.r#type.as_str();
    let parse_json = |what: &str, check: fn(&Json) -> bool| {
        serde_json::from_str::<Json>(text)
            .ok()
            .filter(check)
            .ok_or_else(|| format!("Enter {what} in JSON."))
    };
    let (value, sent) = match &port.r#type {
        PortType::Integer => {
            let n: i64 = text
                .trim()
                .parse()
                .map_err(|_| "Enter a whole number.".to_string())?;
            (Value::Integer(n), json!(n))
        }
        PortType::Float => {
            let f: f64 = text
                .trim()
                .parse()
                .map_err(|_| "Enter a number.".to_string())?;
            (Value::Float(f), json!(f))
        }
        PortType::Boolean => {
            let b = text == "true";
            (Value::Boolean(b), json!(b))
        }
        PortType::Dictionary => {
            let v = parse_json("an object", Json::is_object)?;
            (Value::Dictionary(v.to_string()), v)
        }
        PortType::Array => {
            let v = parse_json("a list", Json::is_array)?;
            (Value::Array(v.to_string()), v)
        }
        PortType::File => unreachable!("file inputs are uploads, read apart"),
        _ => (Value::String(text.to_string()), json!(text)),
    };
    Ok((
        RunArgument::Value(value),
        json!({"type": kind, "value": sent}),
    ))
}

/// `POST /console/runs/new/{namespace}/{name}`: keeps each file as an upload of the account
/// (the core call `POST /v4/files` makes), submits the run and opens its page. A field that
/// cannot be read as its type, a file missing, too large or past the quota: the form again,
/// the reason beside the field, nothing submitted.
pub async fn submit(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    posted: PostedFiles,
) -> PageResult {
    let PostedFiles {
        session,
        fields,
        mut files,
        unread,
    } = posted;
    let version = state
        .registry
        .version(&session.caller, &namespace, &name, None)
        .await?;
    let manifest = manifest_of(&version);
    let ports = manifest.inputs.as_slice();
    let mut errors = HashMap::new();
    if let Some((field, reason)) = unread {
        // A part past the body limit: beside its field (or the first file field when the
        // browser's part had no name we know).
        let field = Some(field)
            .filter(|f| f.starts_with("input-"))
            .or_else(|| {
                ports
                    .iter()
                    .position(|p| p.r#type == PortType::File)
                    .map(|i| format!("input-{i}"))
            })
            .unwrap_or_else(|| "input-0".into());
        errors.insert(field, reason);
    }
    // Each value read as its type first: nothing is uploaded for a form that goes back.
    let mut values = Vec::with_capacity(ports.len());
    for (i, port) in ports.iter().enumerate() {
        let key = format!("input-{i}");
        if port.r#type == PortType::File {
            let chosen = files.remove(&key).filter(|f| !f.name.is_empty());
            if chosen.is_none() && !errors.contains_key(&key) {
                errors.insert(key, "Choose a file.".into());
            }
            values.push(Err(chosen));
            continue;
        }
        let text = fields.get(&key).map(String::as_str).unwrap_or_default();
        match argument(port, text) {
            Ok(value) => values.push(Ok(value)),
            Err(message) => {
                errors.insert(key, message);
                values.push(Err(None));
            }
        }
    }
    let refused = |errors: &HashMap<String, String>| {
        run_form(
            StatusCode::UNPROCESSABLE_ENTITY,
            &session,
            &version,
            &fields,
            errors,
        )
    };
    if !errors.is_empty() {
        return Ok(refused(&errors));
    }
    let mut inputs = Vec::with_capacity(ports.len());
    let mut sent = Vec::with_capacity(ports.len());
    for (i, value) in values.into_iter().enumerate() {
        let (argument, as_sent) = match value {
            Ok(value) => value,
            Err(file) => {
                let file = file.expect("a file for each file input, checked above");
                let upload = match state
                    .registry
                    .store_upload(&session.caller, &file.name, &file.bytes)
                    .await
                {
                    Ok(upload) => upload,
                    Err(error @ RegistryError::QuotaExceeded(_)) => {
                        let ConsoleError::Refused { message, .. } = ConsoleError::from(error)
                        else {
                            unreachable!("a registry error is a refusal")
                        };
                        errors.insert(format!("input-{i}"), message);
                        return Ok(refused(&errors));
                    }
                    Err(other) => return Err(other.into()),
                };
                // As Mystic's client sends an uploaded file.
                let as_sent = json!({"type": "file", "value": null, "file_name": upload.name,
                                     "file_path": upload_path(&upload)});
                (
                    RunArgument::File {
                        file_name: upload.name.clone(),
                        digest: upload.digest.clone(),
                    },
                    as_sent,
                )
            }
        };
        inputs.push(argument);
        sent.push(as_sent);
    }
    let submission = RunSubmission {
        namespace,
        name,
        // The version the form was made from.
        version: Some(version.version.clone()),
        inputs,
        inputs_as_sent: Json::Array(sent),
        background: true,
        wait_for_resources: true,
        refused_input: None,
    };
    let run = state.runs.submit_run(&session.caller, submission).await?;
    Ok(Redirect::to(&format!("{BASE}/{}", run.id)).into_response())
}

/// `GET /console/runs/{id}`: one run.
pub async fn run_page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let run = state
        .runs
        .run_record(&session.caller, &id)
        .await
        .map_err(ConsoleError::from)?;
    let logs = state.runs.run_logs(&session.caller, &id).await?;
    let links = FileLinks::new(&state);
    let content = html! {
        h1 { "Run of " (run.pipeline) ":" (run.version) }
        @if unfinished(run.state) {
            p.notice role="status" data-refresh-seconds=(REFRESH_SECONDS) { "This run is " (run.state.as_str()) ": the page refreshes until it is finished." }
        }
        section.card {
            p { "State: " span #run-state { (layout::badge(run.state.as_str())) } }
            p.muted { "Run " code { (run.id) } " · submitted " (layout::time(run.created_at_ms)) " · last change " (layout::time(run.updated_at_ms)) }
            h2 { "Inputs" }
            pre { (serde_json::to_string_pretty(&run.inputs).unwrap_or_default()) }
            @if let Some(error) = &run.error {
                h2 { "Error" }
                div.alert role="alert" #run-error { strong { (error.kind) } ": " (error.message) }
            }
            @if run.state == RunState::Completed {
                h2 { "Outputs" }
                @if run.outputs.is_empty() { p.muted { "This run gave no outputs." } }
                table {
                    thead { tr { th scope="col" { "Output" } th scope="col" { "Type" } th scope="col" { "Value" } } }
                    tbody {
                        @for output in &run.outputs {
                            tr.output {
                                td data-label="Output" { (output.name) }
                                td data-label="Type" { code { (output.kind) } }
                                td data-label="Value" class="output-value" {
                                    @if let Some(file) = &output.file {
                                        a.download href=(links.link(&file.digest, &file.name)) download=(file.name) {
                                            "Download " (file.name)
                                        }
                                        " (" (file.size) " bytes)"
                                    } @else {
                                        (output_text(output))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card #run-log aria-labelledby="run-log-title" {
            h2 #run-log-title { "Log" }
            (log_of(&run, &logs))
        }
        p { a href=(BASE) { "← All runs" } }
    };
    Ok(layout::html(
        StatusCode::OK,
        layout::page("Run", Some(&session), Nav::Runs, content),
    ))
}

/// What the run printed, stdout then stderr, each in its own `<pre>`.
fn log_of(run: &RunRecord, logs: &RunLogs) -> Markup {
    let streams = [
        ("Standard output", "stdout", &logs.stdout),
        ("Standard error", "stderr", &logs.stderr),
    ];
    html! {
        @if unfinished(run.state) {
            p.muted { "What this run prints is shown when it is finished." }
        } @else if logs.stdout.is_empty() && logs.stderr.is_empty() {
            p.muted.log-empty { "This run printed nothing." }
        } @else {
            @for (title, stream, text) in streams {
                @if !text.is_empty() {
                    h3 { (title) }
                    pre class=(format!("log log-{stream}")) { (text) }
                }
            }
        }
    }
}
