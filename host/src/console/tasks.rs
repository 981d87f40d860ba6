//! Tasks: the GBDX tasks (the shared `gbdx` namespace, readable by everyone as the GBDX
//! surface's `GET /tasks` is), each with its versions, their registration state, attempts and
//! last error. While a version is still registering the page refreshes itself.
//!
//! The registry's own listing and version reads, as `/v1` and GBDX call them.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use maud::html;
use serde::Deserialize;

use super::layout::{self, Nav, PAGE_SIZE};
use super::session::Session;
use super::PageResult;
use crate::api::AppState;
use crate::registry::{VersionInfo, VersionState, GBDX_NAMESPACE};

const BASE: &str = "/console/tasks";
/// How often a page with a registration in progress reloads.
const REFRESH_SECONDS: u32 = 2;

#[derive(Deserialize, Default)]
pub struct Listing {
    page: Option<usize>,
}

/// `GET /console/tasks`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(listing): Query<Listing>,
) -> PageResult {
    let page = listing.page.unwrap_or(1).max(1);
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
                " with its definition (README's GBDX example shows one). It appears here while it registers."
            }))
        }
        @for (task, versions) in &shown {
            section.card data-task=(task.name) {
                h2 { (task.name) }
                p.muted {
                    "Owned by " (task.owner)
                    @if let Some(description) = &task.description { " · " (description) }
                }
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
                        }
                    }
                }
            }
        }
        (layout::pager(BASE, page, has_more))
    };
    Ok(layout::html(
        StatusCode::OK,
        layout::page("Tasks", Some(&session), Nav::Tasks, content),
    ))
}
