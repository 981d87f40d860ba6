//! My Pipelines: the Acumos Workbench catalog. The session's pipelines (owned and
//! collaborated, active and archived) grouped by project; Create Pipeline; archive,
//! unarchive, delete; Launch, which opens a new tab that says the notebook server is starting
//! (with the time it has taken so far) until the launch answers, then goes to the service. A
//! pipeline's own page updates its name, version and description and shows its history of
//! renames.
//!
//! Every operation is the Workbench core's ([`crate::registry::workbench`]), as the Acumos
//! surface calls it; a refusal is worded by that surface's table ([`acumos::Refusal::worded`],
//! the seed's messages) and shown beside the field it concerns.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, Nav, PageQuery, PAGE_SIZE};
use super::session::{NoFields, Posted, Session};
use super::{ConsoleError, PageResult};
use crate::api::acumos::{self, Check, Op};
use crate::api::AppState;
use crate::registry::workbench::{NewRecord, RecordUpdate, WorkbenchError, WorkbenchPipeline};

const BASE: &str = "/console/pipelines";

/// What was typed into Create Pipeline, kept when it is refused.
#[derive(Deserialize, Default, Clone)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default, rename = "type")]
    pipeline_type: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    project: String,
}

/// A refusal to show: beside a field of Create Pipeline (by name), or above the list.
struct Shown {
    status: StatusCode,
    field: Option<&'static str>,
    message: String,
}

/// The field of Create Pipeline a check of the seed concerns.
fn field_of(check: Check) -> Option<&'static str> {
    match check {
        Check::NameMissing | Check::InvalidName | Check::Duplicate => Some("name"),
        Check::InvalidVersion => Some("version"),
        Check::TypeMissing | Check::InvalidType => Some("type"),
        Check::ProjectNotFound => Some("project"),
        _ => None,
    }
}

impl Shown {
    /// The message to show beside field `name`, when the refusal concerns it.
    fn beside<'a>(refused: Option<&'a Shown>, name: &str) -> Option<&'a str> {
        refused
            .filter(|r| r.field == Some(name))
            .map(|r| r.message.as_str())
    }
}

fn shown(op: Op, error: WorkbenchError) -> Shown {
    let (check, refusal) = acumos::Refusal::worded(op, error);
    Shown {
        status: refusal.status(),
        field: check.and_then(field_of),
        message: refusal.message().to_string(),
    }
}

/// `GET /console/pipelines`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(listing): Query<PageQuery>,
) -> PageResult {
    render(
        &state,
        &session,
        listing.number(),
        None,
        CreateForm::default(),
    )
    .await
}

async fn render(
    state: &AppState,
    session: &Session,
    page: usize,
    refused: Option<Shown>,
    typed: CreateForm,
) -> PageResult {
    let page = page.max(1);
    let records = state
        .registry
        .list_records(&session.caller, None)
        .await
        .map_err(|e| {
            let shown = shown(Op::List, e);
            ConsoleError::new(shown.status, shown.message)
        })?;
    // One entry per project a pipeline is in (one for those in none, listed last); by project,
    // then the most recently changed first, then by name.
    let mut entries: Vec<(Option<&str>, &WorkbenchPipeline)> = records
        .iter()
        .flat_map(|record| {
            let projects: Vec<Option<&str>> = match record.projects.as_slice() {
                [] => vec![None],
                projects => projects.iter().map(|p| Some(p.name.as_str())).collect(),
            };
            projects.into_iter().map(move |project| (project, record))
        })
        .collect();
    entries.sort_by_key(|(project, r)| {
        (
            project.is_none(),
            *project,
            std::cmp::Reverse(r.modified_at_ms),
            r.name.as_str(),
        )
    });
    let has_more = entries.len() > page * PAGE_SIZE;
    let projects = state.registry.list_projects(&session.caller).await?;
    let types = state.registry.pipeline_types();
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let field_error = |name: &str| Shown::beside(refused.as_ref(), name);
    let general_error = refused.as_ref().filter(|r| r.field.is_none());

    let mut groups: Vec<(Option<&str>, Vec<&WorkbenchPipeline>)> = Vec::new();
    for (project, record) in entries
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
    {
        match groups.last_mut() {
            Some((last, list)) if *last == project => list.push(record),
            _ => groups.push((project, vec![record])),
        }
    }

    let content = html! {
        h1 { "My Pipelines" }
        p.lede { "Your Workbench pipelines and those of your account you collaborate on, active and archived, by project." }
        @if let Some(refused) = general_error {
            div.alert role="alert" { (refused.message) }
        }
        @if groups.is_empty() {
            (layout::empty("You have no pipelines yet.", html! {
                "Create one below: give it a name, a version and a type. It then appears here, and Launch opens it."
            }))
        }
        @for (project, list) in &groups {
            h2 { (project.unwrap_or("In no project")) }
            table {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Version" } th scope="col" { "Type" }
                    th scope="col" { "Owner" } th scope="col" { "State" } th scope="col" { "Changed" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for record in list { (row(session, record)) }
                }
            }
        }
        (layout::pager(BASE, page, has_more, "pipelines"))
        section.card #create aria-labelledby="create-title" {
            h2 #create-title { "Create Pipeline" }
            form method="post" action=(BASE) novalidate {
                (layout::csrf(session))
                div.grid {
                    (layout::field("name", "Name", field_error("name"), html! {
                        input #name name="name" type="text" value=(typed.name) autocomplete="off"
                            aria-describedby=[field_error("name").map(|_| "name-error")];
                    }))
                    (layout::field("version", "Version", field_error("version"), html! {
                        input #version name="version" type="text" value=(typed.version) placeholder="1.0.0"
                            aria-describedby=[field_error("version").map(|_| "version-error")];
                    }))
                    (layout::field("type", "Type", field_error("type"), html! {
                        select #type name="type" aria-describedby=[field_error("type").map(|_| "type-error")] {
                            option value="" { "Choose a type…" }
                            @for t in &types {
                                option value=(t.id) selected[typed.pipeline_type == t.id] { (t.display_name) }
                            }
                        }
                    }))
                    (layout::field("project", "Project", field_error("project"), html! {
                        select #project name="project" aria-describedby=[field_error("project").map(|_| "project-error")] {
                            option value="" { "No project" }
                            @for p in &projects {
                                option value=(p.id) selected[typed.project == p.id] { (p.name) }
                            }
                        }
                    }))
                }
                (layout::field("description", "Description", None, html! {
                    textarea #description name="description" rows="2" { (typed.description) }
                }))
                button type="submit" { "Create Pipeline" }
            }
        }
    };
    Ok(layout::html(
        status,
        layout::page("My Pipelines", Some(session), Nav::Pipelines, content),
    ))
}

fn row(session: &Session, record: &WorkbenchPipeline) -> Markup {
    let id = &record.id;
    let label = format!(
        "{}{}",
        record.name,
        record
            .version
            .as_deref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default()
    );
    html! {
        tr data-pipeline=(record.name) {
            td data-label="Name" {
                a href=(format!("{BASE}/{id}")) aria-label=(format!("{label}: details, update and history")) { strong { (record.name) } }
                @if let Some(description) = &record.description { br; span.muted { (description) } }
            }
            td data-label="Version" { (record.version.as_deref().unwrap_or("—")) (layout::approved_by(&record.approved_by)) }
            td data-label="Type" { (record.pipeline_type) }
            td data-label="Owner" {
                (record.owner)
                @if !record.collaborators.is_empty() {
                    br; span.muted { "with " (record.collaborators.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")) }
                }
            }
            td data-label="State" { (layout::badge(if record.archived { "archived" } else { "active" })) }
            td data-label="Changed" { (layout::time(record.modified_at_ms)) }
            td data-label="Actions" {
                div.actions {
                    @if !record.archived {
                        a.button href=(format!("{BASE}/{id}/launch")) target="_blank" aria-label=(format!("Launch {label} (opens a new tab)")) { "Launch" }
                    }
                    @if let Some(url) = &record.service_url {
                        a href=(url) target="_blank" rel="noopener noreferrer" aria-label=(format!("Open {label}'s service in a new tab")) { "Open ↗" }
                    }
                    form method="post" action=(format!("{BASE}/{id}/archive")) {
                        (layout::csrf(session))
                        input type="hidden" name="archived" value=(if record.archived { "false" } else { "true" });
                        button.secondary type="submit" aria-label=(format!("{} {label}", if record.archived { "Unarchive" } else { "Archive" })) {
                            (if record.archived { "Unarchive" } else { "Archive" })
                        }
                    }
                    form method="post" action=(format!("{BASE}/{id}/delete")) data-confirm=(format!("Delete {label} and its working copy? This cannot be undone.")) {
                        (layout::csrf(session))
                        button.danger type="submit" aria-label=(format!("Delete {label}")) { "Delete" }
                    }
                }
            }
        }
    }
}

fn given(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// `POST /console/pipelines`: Create Pipeline.
pub async fn create(State(state): State<AppState>, posted: Posted<CreateForm>) -> PageResult {
    let Posted { session, form } = posted;
    let new = NewRecord {
        name: given(&form.name),
        version: given(&form.version),
        pipeline_type: given(&form.pipeline_type),
        kernel_type: None,
        description: given(&form.description),
        project_ids: given(&form.project).into_iter().collect(),
    };
    match state.registry.create_record(&session.caller, new).await {
        Ok(_) => Ok(Redirect::to(BASE).into_response()),
        Err(error) => render(&state, &session, 1, Some(shown(Op::Create, error)), form).await,
    }
}

#[derive(Deserialize)]
pub struct ArchiveForm {
    archived: bool,
}

/// `POST /console/pipelines/{id}/archive`: archives (`archived=true`) or unarchives.
pub async fn archive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<ArchiveForm>,
) -> PageResult {
    let Posted { session, form } = posted;
    match state
        .registry
        .set_record_archived(&session.caller, &id, form.archived, None)
        .await
    {
        Ok(_) => Ok(Redirect::to(BASE).into_response()),
        Err(error) => refused(&state, &session, Op::Archive, error).await,
    }
}

/// `POST /console/pipelines/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<NoFields>,
) -> PageResult {
    let session = posted.session;
    match state.registry.delete_record(&session.caller, &id).await {
        Ok(()) => Ok(Redirect::to(BASE).into_response()),
        Err(error) => refused(&state, &session, Op::Delete, error).await,
    }
}

/// `GET /console/pipelines/{id}/launch` (opened in a new tab by Launch): says the notebook
/// server is starting, and posts the launch at once (the script, in the background; without
/// it, a button does). The page stays in view, its clock running, until the launch answers:
/// then the tab goes to the service, or the refusal is shown. Nothing is kept between the two
/// requests, so any replica may answer either.
pub async fn launch_page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> PageResult {
    // Opened from another site's page (behind a gateway no cookie is needed): nothing starts
    // until the person says so.
    let start_at_once = !super::session::sent_from_elsewhere(&headers);
    let record = state
        .registry
        .record(&session.caller, &id, None)
        .await
        .map_err(|error| {
            let shown = shown(Op::Launch, error);
            ConsoleError::new(shown.status, shown.message)
        })?;
    let content = html! {
        h1 { "Launching " (record.name) }
        section.card #launch-progress {
            @if start_at_once {
                p role="status" aria-live="polite" {
                    span.spinner aria-hidden="true" {}
                    "Starting the notebook server for " strong { (record.name) }
                    @if let Some(version) = &record.version { " " (version) }
                    "… this can take a minute the first time. "
                    span.muted { "Waiting " span data-elapsed { "0" } " s." }
                }
            } @else {
                p { "This page was opened from another site: start the notebook server for " strong { (record.name) } " only if you meant to." }
            }
            form method="post" action=(format!("{BASE}/{id}/launch")) data-launch[start_at_once] {
                (layout::csrf(&session))
                button type="submit" { "Start the notebook server" }
            }
            p.hint { "When it is up, this tab opens it. " a href=(BASE) { "Back to My Pipelines" } }
        }
    };
    Ok(layout::html(
        StatusCode::OK,
        layout::page(
            &format!("Launching {}", record.name),
            Some(&session),
            Nav::Pipelines,
            content,
        ),
    ))
}

/// The launch form: `answer=location` (sent by the launch page's script, which stays on its
/// page meanwhile) asks for the service URL as text instead of a redirect to it.
#[derive(Deserialize)]
pub struct LaunchForm {
    #[serde(default)]
    answer: Option<String>,
}

/// `POST /console/pipelines/{id}/launch` (from the launch page): launches and goes to the
/// service.
pub async fn launch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<LaunchForm>,
) -> PageResult {
    let Posted { session, form } = posted;
    match state
        .registry
        .launch_record(&session.caller, &id, None)
        .await
    {
        Ok(launched) => {
            let url = launched.service_url.unwrap_or_else(|| BASE.to_string());
            Ok(match form.answer.as_deref() {
                // The launch page's script: where to go, as text.
                Some("location") => (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; charset=utf-8",
                    )],
                    url,
                )
                    .into_response(),
                _ => Redirect::to(&url).into_response(),
            })
        }
        Err(error) => {
            let shown = shown(Op::Launch, error);
            Err(ConsoleError::new(shown.status, shown.message))
        }
    }
}

/// The list again, with the refusal above it.
async fn refused(state: &AppState, session: &Session, op: Op, error: WorkbenchError) -> PageResult {
    let mut shown = shown(op, error);
    shown.field = None;
    render(state, session, 1, Some(shown), CreateForm::default()).await
}

/// What was typed into a pipeline's update form.
#[derive(Deserialize, Default, Clone)]
pub struct UpdateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    description: String,
}

/// `GET /console/pipelines/{id}`: one pipeline, its update form and its history of renames.
pub async fn pipeline_page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    render_pipeline(&state, &session, &id, None, None).await
}

async fn render_pipeline(
    state: &AppState,
    session: &Session,
    id: &str,
    refused: Option<Shown>,
    typed: Option<UpdateForm>,
) -> PageResult {
    let fail = |op: Op| {
        move |error| {
            let shown = shown(op, error);
            ConsoleError::new(shown.status, shown.message)
        }
    };
    let record = state
        .registry
        .record(&session.caller, id, None)
        .await
        .map_err(fail(Op::Get))?;
    let history = state
        .registry
        .record_history(&session.caller, id)
        .await
        .map_err(fail(Op::Get))?;
    let typed = typed.unwrap_or_else(|| UpdateForm {
        name: record.name.clone(),
        version: record.version.clone().unwrap_or_default(),
        description: record.description.clone().unwrap_or_default(),
    });
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let field_error = |name: &str| Shown::beside(refused.as_ref(), name);
    let general_error = refused.as_ref().filter(|r| r.field.is_none());
    let content = html! {
        h1 { (record.name) @if let Some(version) = &record.version { " " span.muted { (version) } } }
        p.lede {
            a href=(BASE) { "← My Pipelines" } " · " (record.pipeline_type) " · owned by " (record.owner)
            " · " (layout::badge(if record.archived { "archived" } else { "active" }))
        }
        @if let Some(refused) = general_error {
            div.alert role="alert" { (refused.message) }
        }
        section.card #pipeline-details {
            (layout::approved_by(&record.approved_by))
            p.muted {
                "Created " (layout::time(record.created_at_ms)) " · changed " (layout::time(record.modified_at_ms))
                @if !record.projects.is_empty() {
                    " · in " (record.projects.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "))
                }
            }
        }
        section.card #update aria-labelledby="update-title" {
            h2 #update-title { "Update" }
            @if record.archived {
                p.muted { "An archived pipeline cannot be changed: unarchive it on My Pipelines first." }
            } @else {
                form method="post" action=(format!("{BASE}/{id}")) novalidate {
                    (layout::csrf(session))
                    div.grid {
                        (layout::field("name", "Name", field_error("name"), html! {
                            input #name name="name" type="text" value=(typed.name) autocomplete="off"
                                aria-describedby=[field_error("name").map(|_| "name-error")];
                        }))
                        (layout::field("version", "Version", field_error("version"), html! {
                            input #version name="version" type="text" value=(typed.version)
                                aria-describedby=[field_error("version").map(|_| "version-error")];
                        }))
                    }
                    (layout::field("description", "Description", None, html! {
                        textarea #description name="description" rows="2" { (typed.description) }
                    }))
                    button type="submit" { "Save" }
                }
            }
        }
        section.card #history aria-labelledby="history-title" {
            h2 #history-title { "History of renames" }
            @if history.is_empty() {
                p.muted.history-empty { "Never renamed: a change of name or version is listed here, with who made it." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "Was named" } th scope="col" { "Version" } th scope="col" { "Changed by" } th scope="col" { "When" }
                    } }
                    tbody {
                        @for entry in history.iter().rev() {
                            tr.rename {
                                td data-label="Was named" { (entry.name) }
                                td data-label="Version" { (entry.version.as_deref().unwrap_or("—")) }
                                td data-label="Changed by" { (entry.changed_by) }
                                td data-label="When" { (layout::time(entry.changed_at_ms)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::html(
        status,
        layout::page(&record.name, Some(session), Nav::Pipelines, content),
    ))
}

/// `POST /console/pipelines/{id}`: the update, as the Workbench's `PUT …/pipelines/{id}`.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<UpdateForm>,
) -> PageResult {
    let Posted { session, form } = posted;
    let update = RecordUpdate {
        name: given(&form.name),
        version: Some(form.version.trim().to_string()),
        description: Some(form.description.trim().to_string()),
        project_ids: Vec::new(),
    };
    match state
        .registry
        .update_record(&session.caller, &id, update)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("{BASE}/{id}")).into_response()),
        Err(error) => {
            let refused = shown(Op::Update, error);
            if refused.status == StatusCode::NOT_FOUND || refused.status == StatusCode::FORBIDDEN {
                return Err(ConsoleError::new(refused.status, refused.message));
            }
            render_pipeline(&state, &session, &id, Some(refused), Some(form)).await
        }
    }
}
