//! Signing in and out, the session cookie, and the CSRF check on every form.
//!
//! The cookie (`pw_console`) holds the session's secret only: `HttpOnly` (no script reads it),
//! `SameSite=Strict` (no other site's page sends it), `Secure` when the public URL is https.
//! Every state-changing request is a POST read through [`Posted`], which refuses it unless its
//! `csrf` field is the session's own token, before the handler runs: a handler that takes a
//! `Posted` cannot forget the check. Signing in has no session yet; a sign-in posted from
//! another site (the browser says so in `Sec-Fetch-Site`) is refused, so no page elsewhere can
//! sign a visitor in as someone else.
//!
//! Behind a gateway the server trusts (`--trust-gateway-header`, read as the Acumos surface
//! reads it: [`crate::api::gateway_user`]), the gateway's header is the sign-in: every request
//! acts as the user it names (added on first sight, as there), no cookie is needed and there
//! is nothing to sign out of here. The header comes with every request, cross-site ones too,
//! so the forms still carry a CSRF token: the user's own, an HMAC of their id under the
//! server's link key (the same on every replica, unguessable elsewhere).

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::layout::{self, Nav};
use super::{ConsoleError, PageResult};
use crate::api::AppState;
use crate::registry::sessions::{ConsoleSession, SESSION_LIFETIME};
use crate::registry::{Caller, RegistryError};

const COOKIE: &str = "pw_console";
pub const SIGN_IN: &str = "/console/sign-in";
/// Where a signed-in person lands.
pub const HOME: &str = "/console/pipelines";
/// Forms are small: a pipeline's fields, a run's inputs.
const MAX_FORM_BYTES: usize = 1 << 20;

/// The session of a request: who it acts as, and the token its forms carry.
#[derive(Clone, Debug)]
pub struct Session {
    pub caller: Caller,
    pub csrf_token: String,
    /// Whether the caller acts for the admin account (the plugins page is theirs).
    pub admin: bool,
    /// Signed in by a trusted gateway's header, not by a session of this console.
    pub via_gateway: bool,
}

fn cookie_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// The CSRF token of a user signed in by the gateway: HMAC-SHA256 of their id under the link
/// key.
fn gateway_csrf_token(state: &AppState, caller: &Caller) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&state.link_key).expect("any key length");
    mac.update(b"console-csrf\0");
    mac.update(caller.user_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, ConsoleError> {
    if let Some(user) = crate::api::gateway_user(&state.config, headers) {
        let caller = match state.registry.caller_for_user(user).await {
            Ok(caller) => caller,
            // A header that is no user name: no one is signed in.
            Err(RegistryError::Invalid(_)) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        tracing::Span::current().record("user", caller.user.as_str());
        let admin = state.registry.is_admin(&caller).await?;
        return Ok(Some(Session {
            csrf_token: gateway_csrf_token(state, &caller),
            caller,
            admin,
            via_gateway: true,
        }));
    }
    let Some(secret) = cookie_secret(headers) else {
        return Ok(None);
    };
    let ConsoleSession { caller, csrf_token } = match state.registry.session(secret).await {
        Ok(session) => session,
        Err(RegistryError::Unauthenticated) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    tracing::Span::current().record("user", caller.user.as_str());
    let admin = state.registry.is_admin(&caller).await?;
    Ok(Some(Session {
        caller,
        csrf_token,
        admin,
        via_gateway: false,
    }))
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let reading = parts.method == Method::GET || parts.method == Method::HEAD;
        session_of(state, &parts.headers)
            .await?
            .ok_or(ConsoleError::SignedOut { reading })
    }
}

/// A form posted by a session: refused unless its `csrf` field is the session's token.
pub struct Posted<T> {
    pub session: Session,
    pub form: T,
}

/// The form of a button that posts nothing but its CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}

#[derive(Deserialize, Default)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| {
                ConsoleError::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.")
            })?;
        let CsrfField { csrf } = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        if !session.csrf_matches(&csrf) {
            tracing::warn!(user = %session.caller.user, path = %parts.uri.path(), "console form refused: no valid CSRF token");
            return Err(ConsoleError::CrossSite);
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|error| {
            ConsoleError::new(
                StatusCode::BAD_REQUEST,
                format!("The form could not be read: {error}"),
            )
        })?;
        Ok(Posted { session, form })
    }
}

/// A file of a form with files, as the browser sent it.
pub struct SentFile {
    /// The file's own name (its last path segment; empty when none was chosen).
    pub name: String,
    pub bytes: axum::body::Bytes,
}

/// A form with files (`multipart/form-data`) posted by a session: refused unless its `csrf`
/// field (the first of every such form) is the session's token. A file the server could not
/// take whole (past the body limit) is named in `unread` with why, to be shown beside its
/// field; the fields after it are not read.
pub struct PostedFiles {
    pub session: Session,
    pub fields: std::collections::HashMap<String, String>,
    pub files: std::collections::HashMap<String, SentFile>,
    pub unread: Option<(String, String)>,
}

impl FromRequest<AppState> for PostedFiles {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let path = parts.uri.path().to_string();
        let mut multipart =
            axum::extract::Multipart::from_request(Request::from_parts(parts, body), state)
                .await
                .map_err(|rejection| {
                    ConsoleError::new(
                        StatusCode::BAD_REQUEST,
                        format!("The form could not be read: {}", rejection.body_text()),
                    )
                })?;
        let mut fields = std::collections::HashMap::new();
        let mut files = std::collections::HashMap::new();
        let mut unread = None;
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(error) => {
                    unread = Some((String::new(), unread_reason(&error)));
                    break;
                }
            };
            let name = field.name().unwrap_or_default().to_string();
            match field.file_name().map(file_name_of) {
                Some(file_name) => match field.bytes().await {
                    Ok(bytes) => {
                        files.insert(
                            name,
                            SentFile {
                                name: file_name,
                                bytes,
                            },
                        );
                    }
                    Err(error) => {
                        unread = Some((name, unread_reason(&error)));
                        break;
                    }
                },
                None => match field.text().await {
                    Ok(text) => {
                        fields.insert(name, text);
                    }
                    Err(error) => {
                        unread = Some((name, unread_reason(&error)));
                        break;
                    }
                },
            }
        }
        let presented = fields.get("csrf").map(String::as_str).unwrap_or_default();
        if !session.csrf_matches(presented) {
            tracing::warn!(user = %session.caller.user, path = %path, "console form refused: no valid CSRF token");
            return Err(ConsoleError::CrossSite);
        }
        Ok(PostedFiles {
            session,
            fields,
            files,
            unread,
        })
    }
}

/// Why a part of a form with files could not be read, for a person.
fn unread_reason(error: &axum::extract::multipart::MultipartError) -> String {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "This file is larger than the server takes in one form ({} MiB): run with it through the API instead.",
            crate::api::MAX_BODY_BYTES >> 20
        )
    } else {
        format!("The file could not be read whole: {}", error.body_text())
    }
}

/// The last segment of the name a file was sent with (some browsers send a path).
fn file_name_of(sent: &str) -> String {
    sent.rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .to_string()
}

impl Session {
    fn csrf_matches(&self, presented: &str) -> bool {
        ConsoleSession {
            caller: self.caller.clone(),
            csrf_token: self.csrf_token.clone(),
        }
        .csrf_matches(presented)
    }
}

/// Whether the browser says this request comes from another site's page (`Sec-Fetch-Site`):
/// what signing in refuses, and what the launch page does not act on by itself.
pub fn sent_from_elsewhere(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site" || site == "same-site")
}

/// `GET /`: the console, or signing in first.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    Ok(match session_of(&state, &headers).await? {
        Some(_) => Redirect::to(HOME).into_response(),
        None => Redirect::to(SIGN_IN).into_response(),
    })
}

pub async fn sign_in_page(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    if session_of(&state, &headers).await?.is_some() {
        return Ok(Redirect::to(HOME).into_response());
    }
    Ok(sign_in_form(StatusCode::OK, None))
}

fn sign_in_form(status: StatusCode, error: Option<&str>) -> Response {
    let content = html! {
        section.card.narrow {
            h1 { "Sign in" }
            p { "Paste an API token, as " code { "pipewright token create --user NAME" } " prints it (" code { "pw_…" } ")." }
            form method="post" action=(SIGN_IN) {
                (layout::field("token", "API token", error, html! {
                    input #token name="token" type="password" required autocomplete="off"
                        spellcheck="false" placeholder="pw_…" aria-invalid=[error.map(|_| "true")]
                        aria-describedby=[error.map(|_| "token-error")];
                }))
                button type="submit" { "Sign in" }
            }
        }
    };
    layout::html(status, layout::page("Sign in", None, Nav::None, content))
}

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
}

/// `POST /console/sign-in`: opens a session for the token and sets its cookie.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    if sent_from_elsewhere(&headers) {
        return Err(ConsoleError::CrossSite);
    }
    let SignIn { token } = serde_urlencoded::from_bytes(&body).map_err(|e| {
        ConsoleError::new(
            StatusCode::BAD_REQUEST,
            format!("The form could not be read: {e}"),
        )
    })?;
    let opened = match state.registry.open_session(token.trim()).await {
        Ok(opened) => opened,
        Err(RegistryError::Unauthenticated) => {
            return Ok(sign_in_form(
                StatusCode::UNAUTHORIZED,
                Some("This token is not valid: check it was copied whole, as `pipewright token create` printed it."),
            ))
        }
        Err(other) => return Err(other.into()),
    };
    let secure = state
        .config
        .public_url
        .as_deref()
        .is_some_and(|url| url.starts_with("https://"));
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        opened.secret,
        SESSION_LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut response = Redirect::to(HOME).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("hex and ascii"),
    );
    Ok(response)
}

/// `POST /console/sign-out`: ends the session everywhere and clears the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    _posted: Posted<NoFields>,
) -> PageResult {
    if let Some(secret) = cookie_secret(&headers) {
        state.registry.close_session(secret).await?;
    }
    let mut response = Redirect::to(SIGN_IN).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("pw_console=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}
