//! Plugins and policies, for members of the server's admin account (`--admin-account`): every
//! plugin with its versions (world, digest, which is active, where it is bound), add a version
//! by upload, activate a version, roll back to the one active before; and the policy chain
//! bound to each scope, edited in order and swapped in one change.
//!
//! The registry's plugin and binding operations, as `/v1/plugins` and `/v1/policy-bindings`
//! call them ([`crate::registry::Registry::add_plugin`], [`crate::registry::Registry::set_binding`]):
//! the admin rule and the checks are theirs (anyone else is refused there too), and so are the
//! words of a refusal (`/v1`'s table). The page itself is shown to admins only, as the
//! navigation link is. Which policies approved a version is shown where the version is
//! (My Pipelines, Tasks, Runs).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};

use super::layout::{self, Nav};
use super::session::{NoFields, Posted, PostedFiles, Session};
use super::{ConsoleError, PageResult};
use crate::api::AppState;
use crate::registry::plugin_versions::{PluginDetail, PluginSource};
use crate::registry::RegistryError;

const BASE: &str = "/console/plugins";
const BINDINGS: &str = "/console/policy-bindings";
/// The world of a plugin that can be put in a chain.
const POLICY_WORLD: &str = "validation-policy";
/// Empty positions offered after a chain's policies, to lengthen it.
const SPARE_POSITIONS: usize = 2;

fn require_admin(session: &Session) -> Result<(), ConsoleError> {
    if session.admin {
        Ok(())
    } else {
        Err(ConsoleError::new(
            StatusCode::FORBIDDEN,
            "Plugins and policies are for members of the server's admin account.",
        ))
    }
}

/// A refusal shown on the page again, beside what it concerns.
enum Refused {
    /// Of the upload form: beside `field` (`plugin-name`, `plugin-version`, `component`).
    Upload {
        field: &'static str,
        message: String,
    },
    /// Of the chain form of `scope` (empty: the form for a new scope).
    Chain { scope: String, message: String },
}

/// What was typed into a form that is shown again.
#[derive(Default)]
struct Typed {
    upload: HashMap<String, String>,
    new_scope: String,
}

/// The words of a refusal of the core (`/v1`'s), and the field a finding names.
fn worded(error: RegistryError) -> Result<(Option<String>, String), ConsoleError> {
    let field = match &error {
        RegistryError::Invalid(findings) => findings.first().and_then(|f| f.field.clone()),
        _ => None,
    };
    match ConsoleError::from(error) {
        ConsoleError::Refused { status, message } if status.is_client_error() => {
            Ok((field, message))
        }
        other => Err(other),
    }
}

/// `GET /console/plugins`.
pub async fn page(State(state): State<AppState>, session: Session) -> PageResult {
    require_admin(&session)?;
    render(&state, &session, None, Typed::default()).await
}

async fn render(
    state: &AppState,
    session: &Session,
    refused: Option<Refused>,
    typed: Typed,
) -> PageResult {
    let mut plugins = Vec::new();
    for summary in state.registry.list_plugins().await? {
        plugins.push(state.registry.plugin(&summary.name).await?);
    }
    let policies: Vec<&str> = plugins
        .iter()
        .filter(|p| p.world == POLICY_WORLD && p.active_version.is_some())
        .map(|p| p.name.as_str())
        .collect();
    let bindings = state.registry.list_bindings();
    let status = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let upload_error = |field: &str| match &refused {
        Some(Refused::Upload { field: f, message }) if *f == field => Some(message.as_str()),
        _ => None,
    };
    let chain_error = |scope: &str| match &refused {
        Some(Refused::Chain { scope: s, message }) if s == scope => Some(message.as_str()),
        _ => None,
    };
    let typed_upload = |name: &str| typed.upload.get(name).cloned().unwrap_or_default();
    let content = html! {
        h1 { "Plugins and policies" }
        h2 #chains-title { "Policy chains" }
        p.lede {
            "Each scope's policies run in order on every registration there; the most specific scope wins "
            "(namespace, then type, then surface, then global). Saving a chain swaps it whole, on every server."
        }
        @if bindings.is_empty() {
            (layout::empty("No policy is bound to any scope.", html! {
                "Bind a chain below: name a scope and choose its policies in order."
            }))
        }
        @for binding in &bindings {
            section.card.chain data-scope=(binding.scope) {
                (chain_form(session, &binding.scope, &binding.chain, &policies, chain_error(&binding.scope), false))
            }
        }
        section.card.chain #new-chain {
            (chain_form(session, &typed.new_scope, &[], &policies, chain_error(""), true))
        }
        h2 { "Plugins" }
        section.card #upload aria-labelledby="upload-title" {
            h2 #upload-title { "Add a plugin version" }
            form method="post" action=(BASE) enctype="multipart/form-data" novalidate {
                (layout::csrf(session))
                div.grid {
                    (layout::field("plugin-name", "Plugin name", upload_error("plugin-name"), html! {
                        input #plugin-name name="plugin-name" type="text" value=(typed_upload("plugin-name")) autocomplete="off"
                            placeholder="release-only" aria-describedby=[upload_error("plugin-name").map(|_| "plugin-name-error")];
                    }))
                    (layout::field("plugin-version", "Version", upload_error("plugin-version"), html! {
                        input #plugin-version name="plugin-version" type="text" value=(typed_upload("plugin-version")) autocomplete="off"
                            placeholder="1.0.0" aria-describedby=[upload_error("plugin-version").map(|_| "plugin-version-error")];
                    }))
                }
                (layout::field("component", "Component (.wasm)", upload_error("component"), html! {
                    input #component name="component" type="file" accept=".wasm,application/wasm"
                        aria-describedby=(if upload_error("component").is_some() { "component-hint component-error" } else { "component-hint" });
                    p.hint #component-hint {
                        "A WebAssembly component built against " code { "pipewright:plugin" } " (a policy or a type handler), at most "
                        (crate::api::MAX_BODY_BYTES >> 20) " MiB."
                    }
                }))
                div.field.check {
                    label for="activate" {
                        input #activate name="activate" type="checkbox" value="true" checked[typed_upload("activate") == "true"];
                        " Activate it at once"
                    }
                }
                button type="submit" { "Add version" }
            }
        }
        @for plugin in &plugins { (plugin_card(session, plugin)) }
    };
    Ok(layout::html(
        status,
        layout::page("Plugins and policies", Some(session), Nav::Plugins, content),
    ))
}

/// The chain of `scope` as a form: one choice per position, in order, and spare positions to
/// lengthen it; a blank `scope` is the form for a scope not bound yet.
fn chain_form(
    session: &Session,
    scope: &str,
    chain: &[String],
    policies: &[&str],
    error: Option<&str>,
    new: bool,
) -> Markup {
    let slug: String = if new {
        "new".into()
    } else {
        scope
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    };
    let positions = chain.len() + SPARE_POSITIONS;
    let error_id = if new {
        format!("scope-{slug}-error")
    } else {
        format!("chain-{slug}-error")
    };
    html! {
        form method="post" action=(BINDINGS) novalidate {
            (layout::csrf(session))
            @if new {
                h3 { "Bind a new scope" }
                (layout::field(&format!("scope-{slug}"), "Scope", error, html! {
                    input id=(format!("scope-{slug}")) name="scope" type="text" value=(scope) autocomplete="off"
                        placeholder="namespace:alice, type:jupyter, surface:gbdx or global"
                        aria-describedby=[error.map(|_| error_id.clone())];
                }))
            } @else {
                h3 { code { (scope) } }
                input type="hidden" name="scope" value=(scope);
                @if let Some(error) = error {
                    p.error id=(error_id) role="alert" { (error) }
                }
            }
            ol.chain-positions {
                @for position in 0..positions {
                    @let id = format!("chain-{slug}-{position}");
                    @let current = chain.get(position).map(String::as_str).unwrap_or_default();
                    li {
                        label for=(id) { "Policy " (position + 1) }
                        select id=(id) name=(format!("chain-{position}")) {
                            option value="" selected[current.is_empty()] { "— none —" }
                            @for policy in policies {
                                option value=(policy) selected[*policy == current] { (policy) }
                            }
                            // A bound policy no longer loaded stays choosable, to be seen.
                            @if !current.is_empty() && !policies.contains(&current) {
                                option value=(current) selected { (current) " (not loaded)" }
                            }
                        }
                    }
                }
            }
            @if chain.is_empty() && !new { p.muted { "No policy: nothing is checked here." } }
            button type="submit" aria-label=(if new { "Bind the new scope".to_string() } else { format!("Save the chain of {scope}") }) {
                (if new { "Bind" } else { "Save chain" })
            }
        }
    }
}

fn plugin_card(session: &Session, plugin: &PluginDetail) -> Markup {
    html! {
        section.card data-plugin=(plugin.name) {
            div.actions {
                h2 { (plugin.name) }
                span.muted { (plugin.world) }
                @if plugin.versions.len() > 1 {
                    form method="post" action=(format!("{BASE}/{}/rollback", plugin.name)) {
                        (layout::csrf(session))
                        button.secondary type="submit" aria-label=(format!("Roll back {}", plugin.name)) { "Roll back" }
                    }
                }
            }
            table {
                thead { tr {
                    th scope="col" { "Version" } th scope="col" { "State" } th scope="col" { "Digest" }
                    th scope="col" { "Bound in" } th scope="col" { "Added" } th scope="col" { "Action" }
                } }
                tbody {
                    @for v in plugin.versions.iter().rev() {
                        tr data-version=(v.version) {
                            td data-label="Version" { (v.version) @if v.builtin { " " span.muted { "(built in)" } } }
                            td data-label="State" { (layout::badge(if v.active { "active" } else { "inactive" })) }
                            td data-label="Digest" { code { (v.digest) } }
                            td data-label="Bound in" {
                                @if v.bound_in.is_empty() { span.muted { "—" } }
                                @for scope in &v.bound_in { code { (scope) } " " }
                            }
                            td data-label="Added" { (layout::time(v.added_at_ms)) " by " (v.added_by) }
                            td data-label="Action" {
                                @if !v.active {
                                    form method="post" action=(format!("{BASE}/{}/versions/{}/activate", plugin.name, v.version)) {
                                        (layout::csrf(session))
                                        button.secondary type="submit" aria-label=(format!("Activate {}@{}", plugin.name, v.version)) { "Activate" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /console/plugins`: adds a version by upload (the core call `POST
/// /v1/plugins/{name}/versions/{version}` makes with a component body).
pub async fn upload(State(state): State<AppState>, posted: PostedFiles) -> PageResult {
    let PostedFiles {
        session,
        fields,
        mut files,
        unread,
    } = posted;
    require_admin(&session)?;
    let typed = Typed {
        upload: fields.clone(),
        ..Typed::default()
    };
    let refuse = |field: &'static str, message: String| Refused::Upload { field, message };
    if let Some((_, reason)) = unread {
        return render(&state, &session, Some(refuse("component", reason)), typed).await;
    }
    let text = |name: &str| {
        fields
            .get(name)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let (name, version) = (text("plugin-name"), text("plugin-version"));
    let component = files.remove("component").filter(|f| !f.bytes.is_empty());
    // The name and version are the core's to judge (as for `/v1/plugins`); the file is this
    // form's body, as the component is the API's.
    let Some(component) = component else {
        let message = "Choose the component file (.wasm).".to_string();
        return render(&state, &session, Some(refuse("component", message)), typed).await;
    };
    match state
        .registry
        .add_plugin(
            &session.caller,
            &name,
            &version,
            PluginSource::Upload(component.bytes.to_vec()),
            text("activate") == "true",
        )
        .await
    {
        Ok(_) => Ok(Redirect::to(BASE).into_response()),
        Err(error) => {
            let (field, message) = worded(error)?;
            let field = match field.as_deref() {
                Some("name") => "plugin-name",
                Some("version") => "plugin-version",
                _ => "component",
            };
            render(&state, &session, Some(refuse(field, message)), typed).await
        }
    }
}

/// `POST /console/policy-bindings`: the chain of a scope (positions `chain-0`, `chain-1`…,
/// blanks skipped) swapped whole by the core call `PUT /v1/policy-bindings/{scope}` makes.
pub async fn set_chain(
    State(state): State<AppState>,
    posted: Posted<HashMap<String, String>>,
) -> PageResult {
    let Posted { session, form } = posted;
    require_admin(&session)?;
    let scope = form
        .get("scope")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mut positions: Vec<(usize, &str)> = form
        .iter()
        .filter_map(|(key, value)| {
            let position = key.strip_prefix("chain-")?.parse().ok()?;
            Some((position, value.trim())).filter(|(_, v)| !v.is_empty())
        })
        .collect();
    positions.sort();
    let chain: Vec<String> = positions.into_iter().map(|(_, p)| p.to_string()).collect();
    let bound = state.registry.list_bindings();
    // The form it came from: the scope's own, or the new-scope form.
    let form_scope = if bound.iter().any(|b| b.scope == scope) {
        scope.clone()
    } else {
        String::new()
    };
    let refused = match state
        .registry
        .set_binding(&session.caller, &scope, chain)
        .await
    {
        Ok(_) => None,
        Err(error) => Some(worded(error)?.1),
    };
    match refused {
        None => Ok(Redirect::to(BASE).into_response()),
        Some(message) => {
            let typed = Typed {
                new_scope: if form_scope.is_empty() {
                    scope
                } else {
                    String::new()
                },
                ..Typed::default()
            };
            let refused = Refused::Chain {
                scope: form_scope,
                message,
            };
            render(&state, &session, Some(refused), typed).await
        }
    }
}

/// `POST /console/plugins/{name}/versions/{version}/activate`.
pub async fn activate(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    posted: Posted<NoFields>,
) -> PageResult {
    state
        .registry
        .activate_plugin(&posted.session.caller, &name, &version)
        .await?;
    Ok(Redirect::to(BASE).into_response())
}

/// `POST /console/plugins/{name}/rollback`.
pub async fn rollback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<NoFields>,
) -> PageResult {
    state
        .registry
        .rollback_plugin(&posted.session.caller, &name)
        .await?;
    Ok(Redirect::to(BASE).into_response())
}
