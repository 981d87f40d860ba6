//! `launch` through Zeppelin's notebook REST API: one note per pipeline, in the folder
//! `pipelines/{pipeline id}/`.
//!
//! The operator grants this plugin Zeppelin's API (`{url}/api`) and the config key `url` (its
//! public base). The sequence, through the host's `http-fetch`:
//! 1. `GET /api/notebook` lists the notes (`{"status":"OK","body":[{"id","path"}]}`; Zeppelin
//!    0.8 says `name` where 0.9+ says `path`, with or without a leading `/`). A note in the
//!    pipeline's folder is reused, so a relaunch (or a renamed pipeline) finds the same note.
//! 2. Otherwise `POST /api/notebook` with `{"name": "pipelines/{id}/{pipeline name}",
//!    "paragraphs": [...]}` creates it; the answer's `body` is the new note id (200 since 0.8,
//!    201 in older releases).
//!
//! The service URL is `{url}/#/notebook/{noteId}`. Zeppelin's errors (`{"status": "NOT_FOUND",
//! "message": ...}`) are quoted in the plugin error.

use pipewright_sdk::type_handler::service::{excerpt, json_request, Transport};
use pipewright_sdk::type_handler::{LaunchContext, LaunchInfo, PluginError, Property};
use serde_json::{json, Value};

/// The configured public base URL, without a trailing `/`.
pub fn zeppelin_url(configured: Option<String>) -> Result<String, PluginError> {
    configured
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            PluginError::new(
                "launch-unavailable",
                "no Zeppelin is configured for plugin zeppelin (the operator sets --zeppelin-url)",
            )
        })
}

/// The folder of a pipeline's notes: `pipelines/{id}/` (id lowercased, checked).
pub fn note_folder(pipeline_id: &str) -> Result<String, PluginError> {
    let id = pipeline_id.trim().to_lowercase();
    let safe = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !safe {
        return Err(PluginError::new(
            "invalid-pipeline-id",
            format!("pipeline id `{pipeline_id}` cannot name a Zeppelin folder"),
        ));
    }
    Ok(format!("pipelines/{id}/"))
}

/// The id of the first listed note inside `folder`, from a `GET /api/notebook` body.
pub fn find_note(list: &Value, folder: &str) -> Result<Option<String>, String> {
    let notes = list
        .get("body")
        .and_then(Value::as_array)
        .ok_or("the note list has no `body` list")?;
    Ok(notes.iter().find_map(|note| {
        let path = note
            .get("path")
            .or_else(|| note.get("name"))
            .and_then(Value::as_str)?;
        let inside = path.trim_start_matches('/').starts_with(folder);
        inside
            .then(|| note.get("id").and_then(Value::as_str).map(str::to_string))
            .flatten()
    }))
}

/// The create request's body: the note's path and a first paragraph naming the pipeline.
pub fn new_note(folder: &str, pipeline_name: &str) -> Value {
    let name = pipeline_name.replace('/', "_");
    json!({
        "name": format!("{folder}{name}"),
        "paragraphs": [{
            "title": name,
            "text": format!("%md\n# {name}\nThe Zeppelin note of pipeline `{name}`."),
        }]
    })
}

/// Finds or creates the pipeline's note.
pub fn launch(
    http: &mut impl Transport,
    zeppelin_url: &str,
    context: &LaunchContext,
) -> Result<LaunchInfo, PluginError> {
    let folder = note_folder(&context.pipeline_id)?;
    let api = format!("{zeppelin_url}/api/notebook");

    let list = call(http, "GET", &api, None, &[200])?;
    let found = find_note(&list, &folder)
        .map_err(|why| PluginError::new("zeppelin-error", format!("Zeppelin GET {api}: {why}")))?;
    let (note_id, created) = match found {
        Some(id) => (id, false),
        None => {
            let answer = call(
                http,
                "POST",
                &api,
                Some(&new_note(&folder, &context.pipeline.name)),
                &[200, 201],
            )?;
            let id = answer
                .get("body")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    PluginError::new(
                        "zeppelin-error",
                        format!("Zeppelin POST {api} answered no note id: {answer}"),
                    )
                })?;
            (id.to_string(), true)
        }
    };
    Ok(LaunchInfo {
        service_url: format!("{zeppelin_url}/#/notebook/{note_id}"),
        properties: vec![
            prop("note-id", &note_id),
            prop("note-folder", &folder),
            prop("created", if created { "true" } else { "false" }),
        ],
    })
}

fn prop(key: &str, value: &str) -> Property {
    Property {
        key: key.to_string(),
        value: value.to_string(),
    }
}

/// One request expecting one of `ok` and a JSON body; Zeppelin's refusals quoted.
fn call(
    http: &mut impl Transport,
    method: &str,
    url: &str,
    body: Option<&Value>,
    ok: &[u16],
) -> Result<Value, PluginError> {
    let response = http
        .fetch(&json_request(method, url, body))
        .map_err(|why| {
            let code = if why.contains("not granted") {
                "not-granted"
            } else {
                "zeppelin-unreachable"
            };
            PluginError::new(code, format!("Zeppelin {method} {url}: {why}"))
        })?;
    let text = String::from_utf8_lossy(&response.body);
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    if !ok.contains(&response.status) {
        let status = response.status;
        let code = match status {
            401 | 403 => "zeppelin-forbidden",
            404 => "zeppelin-not-found",
            400..=499 => "zeppelin-refused",
            _ => "zeppelin-error",
        };
        let said = parsed
            .as_ref()
            .and_then(|v| {
                let status = v.get("status").and_then(Value::as_str).unwrap_or("");
                let message = v.get("message").and_then(Value::as_str).unwrap_or("");
                (!status.is_empty() || !message.is_empty()).then(|| format!("{status} {message}"))
            })
            .unwrap_or_else(|| excerpt(&text, 300));
        return Err(PluginError::new(
            code,
            format!(
                "Zeppelin answered {status} to {method} {url}: {}",
                said.trim()
            ),
        ));
    }
    parsed.ok_or_else(|| {
        PluginError::new(
            "zeppelin-error",
            format!(
                "Zeppelin {method} {url} answered no JSON: {}",
                excerpt(&text, 300)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::{Duration, Instant};

    use pipewright_sdk::type_handler::host::{HttpRequest, HttpResponse};
    use pipewright_sdk::type_handler::Pipeline;

    use super::*;

    struct Scripted {
        answers: VecDeque<(u16, Value)>,
        requests: Vec<(String, String, Option<Value>)>,
    }

    impl Transport for Scripted {
        fn fetch(&mut self, request: &HttpRequest) -> Result<HttpResponse, String> {
            let body = request
                .body
                .as_ref()
                .map(|b| serde_json::from_slice(b).unwrap());
            self.requests
                .push((request.method.clone(), request.url.clone(), body));
            let (status, body) = self.answers.pop_front().expect("a scripted answer");
            Ok(HttpResponse {
                status,
                headers: vec![],
                body: serde_json::to_vec(&body).unwrap(),
            })
        }
        fn sleep(&mut self, _: Duration) {}
        fn now(&self) -> Instant {
            Instant::now()
        }
    }

    fn scripted(answers: Vec<(u16, Value)>) -> Scripted {
        Scripted {
            answers: answers.into(),
            requests: vec![],
        }
    }

    const ID: &str = "9b2d7c1e-0000-4000-8000-000000000001";

    fn context() -> LaunchContext {
        LaunchContext {
            pipeline: Pipeline {
                namespace: "alice".into(),
                name: "churn".into(),
                version: None,
                type_: "zeppelin".into(),
                description: None,
                inputs: vec![],
                outputs: vec![],
                properties: vec![],
            },
            pipeline_id: ID.into(),
            user: "alice".into(),
            repository_url: format!("/pipelines/{ID}"),
            properties: vec![],
        }
    }

    #[test]
    fn notes_are_found_by_folder_in_either_list_shape() {
        let folder = note_folder(ID).unwrap();
        let list = json!({"status": "OK", "message": "", "body": [
            {"id": "2A94M5J1Z", "path": "/Zeppelin Tutorial"},
            {"id": "2AZPHY918", "path": format!("/pipelines/{ID}/renamed")},
        ]});
        assert_eq!(
            find_note(&list, &folder).unwrap().as_deref(),
            Some("2AZPHY918")
        );
        let old =
            json!({"status": "OK", "body": [{"id": "X", "name": format!("pipelines/{ID}/churn")}]});
        assert_eq!(find_note(&old, &folder).unwrap().as_deref(), Some("X"));
        assert_eq!(
            find_note(&json!({"status": "OK", "body": []}), &folder).unwrap(),
            None
        );
        assert!(find_note(&json!({}), &folder).is_err());
        assert_eq!(
            note_folder("a/../b").unwrap_err().code,
            "invalid-pipeline-id"
        );
    }

    #[test]
    fn a_first_launch_creates_the_note_and_a_relaunch_finds_it() {
        let mut http = scripted(vec![
            (200, json!({"status": "OK", "message": "", "body": []})),
            (
                200,
                json!({"status": "OK", "message": "", "body": "2AZPHY918"}),
            ),
        ]);
        let info = launch(&mut http, "http://z:8080", &context()).unwrap();
        assert_eq!(info.service_url, "http://z:8080/#/notebook/2AZPHY918");
        assert_eq!(http.requests[1].0, "POST");
        assert_eq!(http.requests[1].1, "http://z:8080/api/notebook");
        assert_eq!(
            http.requests[1].2.as_ref().unwrap()["name"],
            format!("pipelines/{ID}/churn")
        );

        let mut http = scripted(vec![(
            200,
            json!({"status": "OK", "message": "", "body": [{"id": "2AZPHY918", "path": format!("/pipelines/{ID}/churn")}]}),
        )]);
        let info = launch(&mut http, "http://z:8080", &context()).unwrap();
        assert_eq!(info.service_url, "http://z:8080/#/notebook/2AZPHY918");
        assert_eq!(http.requests.len(), 1);
    }

    #[test]
    fn zeppelin_errors_are_quoted() {
        let mut http = scripted(vec![(
            500,
            json!({"status": "INTERNAL_SERVER_ERROR", "message": "repository down"}),
        )]);
        let error = launch(&mut http, "http://z", &context()).unwrap_err();
        assert_eq!(error.code, "zeppelin-error");
        assert!(
            error
                .message
                .contains("INTERNAL_SERVER_ERROR repository down"),
            "{}",
            error.message
        );
        assert_eq!(zeppelin_url(None).unwrap_err().code, "launch-unavailable");
        assert_eq!(zeppelin_url(Some("http://z/".into())).unwrap(), "http://z");
    }
}
