//! The API reference a person reads: `/docs` lists the surfaces, `/docs/{surface}` renders that
//! surface's OpenAPI document ([`super::documents`]) as one HTML page, on the server, with no
//! script and nothing loaded from elsewhere, so it works where the server has no internet.
//!
//! It renders the served JSON itself (walked as a `serde_json::Value`), so the page can say
//! nothing the document does not.

use std::fmt::Write as _;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use super::documents::{self, SurfaceDocument};

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

/// What each surface is, in one line, for the index.
fn blurb(surface: &str) -> &'static str {
    match surface {
        "v1" => "The native API: pipelines, versions, types, plugins, bindings and projects.",
        "acumos" => "The Acumos ML Workbench Pipeline Service.",
        "gbdx" => "GBDX task registration, versioning and workflows.",
        "mystic" => "Mystic's /v4 (and /v3 files): pushes, runs, pointers, files and logs.",
        "ops" => "Health, readiness, metrics and these documents.",
        _ => "",
    }
}

pub async fn index() -> Html<String> {
    let mut body = String::from("<h1>pipewright API reference</h1><ul>");
    for SurfaceDocument { surface, document } in documents::all() {
        let _ = write!(
            body,
            "<li><a href=\"/docs/{surface}\">{title}</a> ({count} operations): {blurb} \
             <a href=\"/openapi/{surface}.json\">OpenAPI document</a></li>",
            title = escape(&document.info.title),
            count = crate::api::routes::from_openapi(surface, document).len(),
            blurb = blurb(surface),
        );
    }
    body.push_str("</ul>");
    Html(page("pipewright API reference", &body))
}

pub async fn surface(Path(surface): Path<String>) -> Response {
    let Some(found) = documents::find(&surface) else {
        return (
            StatusCode::NOT_FOUND,
            Html(page(
                "Not found",
                "<h1>No such surface</h1><p><a href=\"/docs\">All surfaces</a></p>",
            )),
        )
            .into_response();
    };
    let document = serde_json::to_value(&found.document).unwrap_or(Value::Null);
    Html(render(found.surface, &document)).into_response()
}

fn render(surface: &str, document: &Value) -> String {
    let title = document["info"]["title"].as_str().unwrap_or(surface);
    let mut body = format!(
        "<p><a href=\"/docs\">All surfaces</a> · <a href=\"/openapi/{surface}.json\">this document as JSON</a></p><h1>{}</h1>",
        escape(title)
    );
    if let Some(description) = document["info"]["description"].as_str() {
        let _ = write!(body, "<p>{}</p>", escape(description));
    }
    let empty = serde_json::Map::new();
    for (path, item) in document["paths"].as_object().unwrap_or(&empty) {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            render_operation(&mut body, method, path, operation);
        }
    }
    if let Some(schemas) = document["components"]["schemas"].as_object() {
        body.push_str("<h2 id=\"schemas\">Schemas</h2>");
        for (name, schema) in schemas {
            let _ = write!(
                body,
                "<section id=\"schema-{id}\"><h3>{name}</h3><pre>{json}</pre></section>",
                id = escape(name),
                name = escape(name),
                json = escape(&serde_json::to_string_pretty(schema).unwrap_or_default()),
            );
        }
    }
    page(title, &body)
}

fn render_operation(body: &mut String, method: &str, path: &str, operation: &Value) {
    let _ = write!(
        body,
        "<section class=\"op\"><h2><code>{} {}</code></h2>",
        method.to_uppercase(),
        escape(path)
    );
    for key in ["summary", "description"] {
        if let Some(text) = operation[key].as_str() {
            let _ = write!(body, "<p>{}</p>", escape(text));
        }
    }
    if let Some(parameters) = operation["parameters"].as_array().filter(|p| !p.is_empty()) {
        body.push_str("<h3>Parameters</h3><table><tr><th>name</th><th>in</th><th>required</th><th>type</th><th>description</th></tr>");
        for parameter in parameters {
            let _ = write!(
                body,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(parameter["name"].as_str().unwrap_or("")),
                escape(parameter["in"].as_str().unwrap_or("")),
                if parameter["required"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "no"
                },
                escape(&type_of(&parameter["schema"])),
                escape(parameter["description"].as_str().unwrap_or("")),
            );
        }
        body.push_str("</table>");
    }
    if let Some(content) = operation["requestBody"]["content"].as_object() {
        body.push_str("<h3>Request body</h3><ul>");
        for (media_type, media) in content {
            let _ = write!(
                body,
                "<li><code>{}</code>: {}</li>",
                escape(media_type),
                escape(&type_of(&media["schema"]))
            );
        }
        body.push_str("</ul>");
    }
    if let Some(responses) = operation["responses"].as_object() {
        body.push_str(
            "<h3>Responses</h3><table><tr><th>status</th><th>description</th><th>body</th></tr>",
        );
        for (status, response) in responses {
            let bodies: Vec<String> = response["content"]
                .as_object()
                .map(|content| {
                    content
                        .iter()
                        .map(|(media_type, media)| {
                            format!("{media_type}: {}", type_of(&media["schema"]))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(status),
                escape(response["description"].as_str().unwrap_or("")),
                escape(&bodies.join("; ")),
            );
        }
        body.push_str("</table>");
    }
    body.push_str("</section>");
}

/// A schema in a few words: its reference's name, its type, or what it combines.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return reference
            .rsplit('/')
            .next()
            .unwrap_or(reference)
            .to_string();
    }
    if schema["type"] == "array" {
        return format!("array of {}", type_of(&schema["items"]));
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema[combinator].as_array() {
            let names: Vec<String> = parts.iter().map(type_of).collect();
            return names.join(" | ");
        }
    }
    match &schema["type"] {
        Value::String(name) => name.clone(),
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".into(),
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;line-height:1.45}\
main{max-width:72rem;margin:auto;padding:1rem}\
.op{border-top:1px solid #ccc;padding-top:.5rem}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;border-bottom:1px solid #eee;padding:.2rem .4rem;vertical-align:top}\
pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:.8rem}code{font-size:.95em}";

/// Text made safe for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_a_document_cannot_make_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn every_operation_of_a_document_is_on_its_page() {
        let found = documents::find("v1").unwrap();
        let document = serde_json::to_value(&found.document).unwrap();
        let html = render("v1", &document);
        for spec in crate::api::routes::from_openapi("v1", &found.document) {
            let heading = format!("<code>{} {}</code>", spec.method, escape(&spec.path));
            assert!(html.contains(&heading), "{heading} missing");
        }
    }
}
