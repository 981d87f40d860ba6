//! The web console: the Workbench, the tasks, the runs and the plugins in a browser, served by
//! the server itself at `/` and under `/console`. Pages are rendered on the server ([`maud`]:
//! HTML written in Rust, escaped and checked when compiled); the one stylesheet and the one
//! small script ship inside the binary ([`layout`]). No build step, nothing fetched elsewhere.
//!
//! Who is looking ([`session`]): a person signs in with an API token and is known by an
//! `HttpOnly`, `SameSite=Strict` cookie naming a session kept in the store
//! ([`crate::registry::sessions`]), or, behind a gateway the server trusts, by the gateway's
//! header; every form that changes something carries a CSRF token, checked before the handler
//! runs ([`session::Posted`], [`session::PostedFiles`] for forms with files). A session acts as
//! its caller: every page calls the same core operations as the API surfaces do (the
//! [`crate::registry::Registry`], the [`crate::runs::Runs`]), so it sees and may do exactly what
//! that caller may through the API, and the refusals are worded by the surfaces' own tables
//! (Acumos's for the Workbench, GBDX's for submitting a workflow, `/v1`'s for the rest).
//!
//! One file per page: [`pipelines`] (My Pipelines, the Acumos Workbench catalog; a pipeline's
//! page; launching), [`tasks`] (GBDX tasks; a task's page, which submits a workflow of it),
//! [`workflows`] (GBDX workflows, reached from Tasks), [`runs`] (Mystic's runnable pipelines,
//! their run forms and runs), [`plugins`] (plugins and policy chains, for the admin account).
//!
//! The routes are one more [`Routes`] surface (`console`) in [`crate::api::app`], so the route
//! list, and the cross-account matrix that walks it, cover them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::api::error::ApiError;
use crate::api::routes::Routes;
use crate::registry::RegistryError;
use crate::route;

mod layout;
mod pipelines;
mod plugins;
mod runs;
mod session;
mod tasks;
mod workflows;

/// Where the console's pages live.
pub const PREFIX: &str = "/console";

pub fn routes() -> Routes {
    let routes = Routes::new("console").with_error_shape(|status, message| {
        ConsoleError::Refused { status, message }.into_response()
    });
    let routes = route!(routes, "/", get(session::home));
    let routes = route!(routes, "/console/assets/{file}", get(layout::asset));
    let routes = route!(
        routes,
        "/console/sign-in",
        get(session::sign_in_page).post(session::sign_in)
    );
    let routes = route!(routes, "/console/sign-out", post(session::sign_out));
    let routes = route!(
        routes,
        "/console/pipelines",
        get(pipelines::page).post(pipelines::create)
    );
    let routes = route!(
        routes,
        "/console/pipelines/{id}/archive",
        post(pipelines::archive)
    );
    let routes = route!(
        routes,
        "/console/pipelines/{id}/delete",
        post(pipelines::delete)
    );
    let routes = route!(
        routes,
        "/console/pipelines/{id}/launch",
        get(pipelines::launch_page).post(pipelines::launch)
    );
    let routes = route!(
        routes,
        "/console/pipelines/{id}",
        get(pipelines::pipeline_page).post(pipelines::update)
    );
    let routes = route!(routes, "/console/tasks", get(tasks::page));
    let routes = route!(
        routes,
        "/console/tasks/{name}",
        get(tasks::task_page).post(tasks::submit_workflow)
    );
    let routes = route!(routes, "/console/workflows", get(workflows::page));
    let routes = route!(
        routes,
        "/console/workflows/{id}",
        get(workflows::workflow_page)
    );
    let routes = route!(
        routes,
        "/console/workflows/{id}/cancel",
        post(workflows::cancel)
    );
    let routes = route!(routes, "/console/runs", get(runs::page));
    let routes = route!(
        routes,
        "/console/runs/new/{namespace}/{name}",
        get(runs::form).post(runs::submit)
    );
    let routes = route!(routes, "/console/runs/{id}", get(runs::run_page));
    let routes = route!(
        routes,
        "/console/plugins",
        get(plugins::page).post(plugins::upload)
    );
    let routes = route!(routes, "/console/policy-bindings", post(plugins::set_chain));
    let routes = route!(
        routes,
        "/console/plugins/{name}/versions/{version}/activate",
        post(plugins::activate)
    );
    route!(
        routes,
        "/console/plugins/{name}/rollback",
        post(plugins::rollback)
    )
}

/// Why a console request was not answered with its page.
#[derive(Debug)]
pub enum ConsoleError {
    /// No session (never signed in, signed out, or ended): a page read goes to the sign-in
    /// page, a form post is refused.
    SignedOut { reading: bool },
    /// A form posted without this session's CSRF token: refused, nothing changed.
    CrossSite,
    /// A refusal, worded by the surface whose rule it is.
    Refused { status: StatusCode, message: String },
}

impl ConsoleError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ConsoleError::Refused {
            status,
            message: message.into(),
        }
    }
}

/// A refusal of the core outside the Workbench, in `/v1`'s words (the console's native
/// language); a 5xx says little and is logged by that conversion.
impl From<RegistryError> for ConsoleError {
    fn from(error: RegistryError) -> Self {
        let api = ApiError::from(error);
        ConsoleError::Refused {
            status: api.status,
            message: api.message,
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ConsoleError::SignedOut { reading: true } => {
                return Redirect::to(session::SIGN_IN).into_response()
            }
            ConsoleError::SignedOut { reading: false } => (
                StatusCode::UNAUTHORIZED,
                "You are signed out (or your session ended): sign in again.".to_string(),
            ),
            ConsoleError::CrossSite => (
                StatusCode::FORBIDDEN,
                "This form was not sent from this console's own page, or that page is out of \
                 date: nothing was changed. Reload the page and try again."
                    .to_string(),
            ),
            ConsoleError::Refused { status, message } => (status, message),
        };
        layout::html(status, layout::error_page(status, &message))
    }
}

type PageResult = Result<Response, ConsoleError>;
