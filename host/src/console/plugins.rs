//! Plugins and policies, for members of the server's admin account (`--admin-account`): every
//! plugin with its versions (world, digest, which is active, where it is bound), activate a
//! version, roll back to the one active before; and the policy chain bound to each scope.
//!
//! The registry's plugin operations, as `/v1/plugins` calls them: the admin rule is theirs
//! (activating and rolling back are refused to anyone else there too). The page itself is
//! shown to admins only, as the navigation link is.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::html;

use super::layout::{self, Nav};
use super::session::{NoFields, Posted, Session};
use super::{ConsoleError, PageResult};
use crate::api::AppState;

const BASE: &str = "/console/plugins";

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

/// `GET /console/plugins`.
pub async fn page(State(state): State<AppState>, session: Session) -> PageResult {
    require_admin(&session)?;
    let mut plugins = Vec::new();
    for summary in state.registry.list_plugins().await? {
        plugins.push(state.registry.plugin(&summary.name).await?);
    }
    let bindings = state.registry.list_bindings();
    let content = html! {
        h1 { "Plugins and policies" }
        h2 { "Policy chains" }
        @if bindings.is_empty() {
            (layout::empty("No policy is bound to any scope.", html! {
                "Bind a chain with " code { "PUT /v1/policy-bindings/{scope}" } " (README's plugins example)."
            }))
        } @else {
            table {
                thead { tr { th scope="col" { "Scope" } th scope="col" { "Chain, in order" } } }
                tbody {
                    @for binding in &bindings {
                        tr data-scope=(binding.scope) {
                            td data-label="Scope" { code { (binding.scope) } }
                            td data-label="Chain, in order" {
                                @if binding.chain.is_empty() { span.muted { "none (nothing is checked)" } }
                                @for (i, policy) in binding.chain.iter().enumerate() {
                                    @if i > 0 { " → " }
                                    code { (policy) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Plugins" }
        @for plugin in &plugins {
            section.card data-plugin=(plugin.name) {
                div.actions {
                    h2 { (plugin.name) }
                    span.muted { (plugin.world) }
                    @if plugin.versions.len() > 1 {
                        form method="post" action=(format!("{BASE}/{}/rollback", plugin.name)) {
                            (layout::csrf(&session))
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
                                            (layout::csrf(&session))
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
    };
    Ok(layout::html(
        StatusCode::OK,
        layout::page(
            "Plugins and policies",
            Some(&session),
            Nav::Plugins,
            content,
        ),
    ))
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
