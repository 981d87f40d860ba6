//! What every page shares: the shell with the persistent navigation, labelled fields with their
//! error beside them, times, pagers, and the headers every page is sent with. The stylesheet
//! and the script (`assets/`) are compiled into the binary and served from
//! `/console/assets/{file}`; the Content-Security-Policy allows nothing else (no inline script,
//! nothing from another origin).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::session::{Session, SIGN_IN};
use crate::api::time::iso_instant;

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

/// Rows per page of every long list.
pub const PAGE_SIZE: usize = 20;

/// Which page of the navigation is open.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// Signing in, or an error page: no page is current.
    None,
    Pipelines,
    Tasks,
    Runs,
    Plugins,
}

/// A page as sent: HTML, never cached (it shows one session's records), never framed, and with
/// a policy that lets only this server's own stylesheet and script run.
pub fn html(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The page shell: the navigation (when signed in) and `content`.
pub fn page(title: &str, session: Option<&Session>, current: Nav, content: Markup) -> Markup {
    let link = |nav: Nav, href: &str, label: &str| {
        html! {
            li { a href=(href) aria-current=[(nav == current).then_some("page")] { (label) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · pipewright" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "pipewright" }
                    @if let Some(session) = session {
                        nav aria-label="Main" {
                            ul {
                                (link(Nav::Pipelines, "/console/pipelines", "My Pipelines"))
                                (link(Nav::Tasks, "/console/tasks", "Tasks"))
                                (link(Nav::Runs, "/console/runs", "Runs"))
                                @if session.admin {
                                    (link(Nav::Plugins, "/console/plugins", "Plugins and policies"))
                                }
                            }
                        }
                        @if session.via_gateway {
                            p.signout {
                                span.who { (session.caller.user) " · " (session.caller.account) " · signed in by your gateway" }
                            }
                        } @else {
                            form.signout method="post" action="/console/sign-out" {
                                (csrf(session))
                                span.who { (session.caller.user) " · " (session.caller.account) }
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main tabindex="-1" { (content) }
            }
        }
    }
}

/// The hidden field that every form of a session carries.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf_token); }
}

/// A labelled form field with its error (if any) beside it, tied to the control by
/// `aria-describedby="{name}-error"`.
pub fn field(name: &str, label: &str, error: Option<&str>, control: Markup) -> Markup {
    html! {
        div.field.invalid[error.is_some()] {
            label for=(name) { (label) }
            (control)
            @if let Some(error) = error {
                p.error id=(format!("{name}-error")) role="alert" { (error) }
            }
        }
    }
}

/// A time, in UTC as sent; the script rewrites it in the browser's time zone.
pub fn time(ms: i64) -> Markup {
    let iso = iso_instant(ms);
    html! { time datetime=(iso) { (iso.replace('T', " ").trim_end_matches('Z')) " UTC" } }
}

/// The `?page=N` of a list cut into pages ([`pager`]'s links).
#[derive(serde::Deserialize, Default)]
pub struct PageQuery {
    page: Option<usize>,
}

impl PageQuery {
    /// The page asked for, from 1 (the first when none or 0 is asked).
    pub fn number(&self) -> usize {
        self.page.unwrap_or(1).max(1)
    }
}

/// Previous and next links of a list cut into pages (`?page=N`, from 1); `what` names the
/// list (the navigation's label: a page may have two).
pub fn pager(base: &str, page: usize, has_more: bool, what: &str) -> Markup {
    html! {
        @if page > 1 || has_more {
            nav.pager aria-label=(format!("Pages of {what}")) {
                @if page > 1 {
                    a href=(format!("{base}?page={}", page - 1)) rel="prev" { "← Previous" }
                }
                span { "Page " (page) }
                @if has_more {
                    a href=(format!("{base}?page={}", page + 1)) rel="next" { "Next →" }
                }
            }
        }
    }
}

/// A state as a small badge (`ready`, `failed`, `running`…).
pub fn badge(state: &str) -> Markup {
    html! { span class=(format!("badge state-{state}")) { (state.replace('_', " ")) } }
}

/// The policies that approved a version (`plugin@version`, in the chain's order).
pub fn approved_by(policies: &[String]) -> Markup {
    html! {
        span.approved.muted data-approved-by=(policies.join(" ")) {
            @if policies.is_empty() { "approved by no policy" }
            @else { "approved by " (policies.join(", ")) }
        }
    }
}

/// An empty list: what it would hold, and what to do next.
pub fn empty(what: &str, next: Markup) -> Markup {
    html! { div.empty { p { strong { (what) } } p { (next) } } }
}

pub fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    page(
        title,
        None,
        Nav::None,
        html! {
            section.card.narrow {
                h1 { (title) }
                p.error role="alert" { (message) }
                p { a href="/" { "Back to the console" } " · " a href=(SIGN_IN) { "Sign in" } }
            }
        },
    )
}

/// `GET /console/assets/{file}`: the stylesheet and the script compiled in.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.css" => (STYLESHEET, "text/css; charset=utf-8"),
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => {
            return super::ConsoleError::new(StatusCode::NOT_FOUND, "No such file.").into_response()
        }
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
