//! The cross-account matrix: for every route the server answers (`pipewright::api::route_list`,
//! built where the routes are routed), bob (another account) tries it on what alice holds. Each
//! route has exactly one row saying what bob meets: a refusal in that surface's own error shape,
//! an answer about his own things only, or a public answer (server-wide or, for GBDX tasks,
//! shared by the surface's rules) with nothing private of alice's in it. Afterwards alice's view
//! of everything she holds is unchanged. A route without a row, or a row without a route, fails
//! the test: a new route cannot ship without saying who may reach what through it.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::gbdx::{docker_task, quick_registration, wait_for_state};
use crate::harness::{b64, call, without_links, Backend, TestServer, EMPTY_NOTEBOOK};
use crate::mystic::{pipeline_dir, push};
use crate::on_both_stores;

on_both_stores!(every_route_refuses_another_account_and_changes_nothing);

const ACUMOS: &str = "/mlWorkbench/v1/pipeline";

/// What alice holds, and the tokens.
struct World {
    server: TestServer,
    alice: String,
    bob: String,
    /// `/v1` pipeline `alice/alices-secret` at 1.0.0 (a notebook).
    notebook_digest: String,
    project: String,
    /// An Acumos (workbench) pipeline of alice's, in `project`.
    record: String,
    /// A Mystic pipeline `alice/alices-hello:0.1.0`, its pointer `prod`, and a run of it.
    run: String,
    pointer: String,
    upload_id: String,
    upload_path: String,
    upload_url: String,
    /// A GBDX workflow of alice's (its task a DOCKER one: it fails, and is finished).
    workflow: String,
    /// The id of that workflow's task.
    workflow_task: String,
}

/// Strings only alice's own answers may contain.
fn private_markers(w: &World) -> Vec<String> {
    vec![
        "alices-secret".into(),
        "alices-project".into(),
        "alices_record".into(),
        "alices-hello".into(),
        w.notebook_digest.clone(),
        w.project.clone(),
        w.record.clone(),
        w.run.clone(),
        w.workflow.clone(),
        w.workflow_task.clone(),
        w.upload_path.clone(),
        w.upload_id.clone(),
        w.pointer.clone(),
    ]
}

impl World {
    async fn start(backend: Backend) -> World {
        let server = TestServer::start_with(backend, |config| {
            config.admin_account = Some(crate::harness::ADMIN_ACCOUNT.into());
            config.registration = quick_registration();
        })
        .await;
        let alice = server.token("alice").await;
        let bob = server.token("bob").await;

        let notebook_digest = server
            .notebook_digest(&alice, "alice", "alices-secret")
            .await;

        let (status, project) = server
            .post("/v1/projects", &alice, json!({"name": "alices-project"}))
            .await;
        assert_eq!(status, 201, "{project}");
        let project = project["id"].as_str().unwrap().to_string();
        let (status, record) = server
            .post(
                &format!("{ACUMOS}/users/alice/projects/{project}/pipelines"),
                &alice,
                json!({"pipelineId": {"name": "alices_record", "versionId": {"label": "1"}},
                       "pipelineType": "Jupyter"}),
            )
            .await;
        assert_eq!(status, 201, "{record}");
        let record = record["pipelineId"]["uuid"].as_str().unwrap().to_string();

        let (ok, pointer, stderr) = push(hello_dir("alices-hello").path(), &server, &alice);
        assert!(ok, "{stderr}");
        let (status, run) = server
            .post(
                "/v4/runs",
                &alice,
                json!({"pipeline": pointer, "inputs": [{"type": "string", "value": "alice"}]}),
            )
            .await;
        assert_eq!((status, &run["state"]), (200, &json!("completed")), "{run}");
        let run = run["id"].as_str().unwrap().to_string();
        let (status, pointer) = server
            .post(
                "/v4/pointers",
                &alice,
                json!({"pointer": "alice/alices-hello:prod", "pointer_or_pipeline_id": pointer}),
            )
            .await;
        assert_eq!(status, 201, "{pointer}");
        let pointer = pointer["id"].as_str().unwrap().to_string();
        let (status, upload) = server.upload(&alice, b"alice's upload", "a.txt", &[]).await;
        assert_eq!(status, 200, "{upload}");

        let (status, task) = server
            .post(
                "/workflows/v1/tasks",
                &alice,
                docker_task("alices-task", "1.0.0"),
            )
            .await;
        assert!(status == 200 || status == 202, "{task}");
        wait_for_state(&server, &alice, "alices-task", "1.0.0", "ready").await;
        let (status, workflow) = server
            .post(
                "/workflows/v1/workflows",
                &alice,
                json!({"tasks": [{"name": "only", "taskType": "alices-task",
                                  "inputs": [{"name": "inputstring", "value": "x"}]}]}),
            )
            .await;
        assert_eq!(status, 201, "{workflow}");
        let workflow = workflow["id"].as_str().unwrap().to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        let workflow_task = loop {
            let (_, body) = server
                .get(&format!("/workflows/v1/workflows/{workflow}"), &alice)
                .await;
            if body["state"]["state"] == "complete" {
                break body["tasks"][0]["id"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "workflow never finished: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };

        World {
            server,
            alice,
            bob,
            notebook_digest,
            project,
            record,
            run,
            pointer,
            upload_id: upload["id"].as_str().unwrap().to_string(),
            upload_path: upload["path"].as_str().unwrap().to_string(),
            upload_url: upload["url"].as_str().unwrap().to_string(),
            workflow,
            workflow_task,
        }
    }

    /// Everything alice sees of what she holds (and of the server-wide settings).
    async fn alices_view(&self) -> Vec<(String, u16, Value)> {
        let paths = [
            "/v1/pipelines".to_string(),
            "/v1/pipelines/alice/alices-secret/versions".into(),
            "/v1/projects".into(),
            format!("{ACUMOS}/users/alice/pipelines"),
            format!("{ACUMOS}/users/alice/pipelines/{}", self.record),
            "/workflows/v1/tasks/alices-task:1.0.0".into(),
            format!("/v4/runs/{}", self.run),
            format!("/v4/logs/run/{}", self.run),
            "/v4/pipelines".into(),
            "/v4/pointers?show_deleted=true".into(),
            "/v3/pipeline_files".into(),
            format!("/v3/pipeline_files/{}", self.upload_id),
            format!("/workflows/v1/workflows/{}", self.workflow),
            "/workflows/v1/workflows".into(),
            "/v1/plugins".into(),
            "/v1/policy-bindings".into(),
        ];
        let mut view = Vec::new();
        for path in paths {
            let (status, mut body) = self.server.get(&path, &self.alice).await;
            without_links(&mut body);
            view.push((path, status, body));
        }
        let download = reqwest::get(&self.upload_url).await.unwrap();
        view.push((
            "upload link".into(),
            download.status().as_u16(),
            json!(download.text().await.unwrap()),
        ));
        view
    }
}

/// The `hello` example as the pipeline `name` at 0.1.0.
fn hello_dir(name: &str) -> tempfile::TempDir {
    pipeline_dir(
        "hello",
        name,
        "0.1.0",
        json!([{"name": "text", "type": "string"}]),
        json!([{"name": "greeting", "type": "string"}]),
        &[],
    )
}

/// What bob meets on one route.
enum Expect {
    /// A 4xx in the surface's own error shape.
    Refused,
    /// A 2xx about bob's own things (or the surface's shared ones): nothing private of alice's.
    Answered,
}

/// One row: bob's request (method from the route list, this path and body) and what he meets.
struct Row {
    path: String,
    body: Option<Value>,
    expect: Expect,
}

fn refused(path: String, body: Option<Value>) -> Option<Row> {
    Some(Row {
        path,
        body,
        expect: Expect::Refused,
    })
}

fn answered(path: String, body: Option<Value>) -> Option<Row> {
    Some(Row {
        path,
        body,
        expect: Expect::Answered,
    })
}

/// The matrix: bob's attempt on each route, or None for a route this table does not know.
fn row(w: &World, method: &str, template: &str) -> Option<Row> {
    let (p, r) = (&w.project, &w.record);
    let acumos_body = json!({"pipelineId": {"name": "stolen", "versionId": {"label": "9"}},
                             "pipelineType": "Jupyter",
                             "projects": {"projects": [{"projectId": {"uuid": p}}]}});
    let acumos = |rest: &str| format!("{ACUMOS}/users/bob{rest}");
    let notebook = json!({"version": "9.0.0", "files": [
        {"path": "notebook.ipynb", "content_base64": b64(EMPTY_NOTEBOOK.as_bytes())}]});
    let mut stolen_task = docker_task("alices-task", "2.0.0");
    stolen_task["description"] = json!("bob was here");
    let run = json!({"pipeline": "alice/alices-hello:0.1.0",
                     "inputs": [{"type": "string", "value": "bob"}]});
    let upload_hex = w
        .upload_path
        .trim_start_matches("files/sha256:")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let forged_link = format!(
        "/v4/blobs/{upload_hex}/99999999999/{}/a.txt",
        "0".repeat(64)
    );
    let plugin = "/v1/plugins/policy-semver";
    match (method, template) {
        // Acumos: bob as himself on alice's record and project (bob claiming to be alice is
        // the Acumos suite's own matrix).
        ("DELETE", "/mlWorkbench/v1/pipeline/users/{user_id}/pipeliens/{pipeline_id}") => refused(acumos(&format!("/pipeliens/{r}")), None),
        ("DELETE", "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/{pipeline_id}") => refused(acumos(&format!("/pipelines/{r}")), None),
        ("DELETE", "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/{pipeline_id}") => refused(acumos(&format!("/projects/{p}/pipelines/{r}")), None),
        ("GET", "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines") => answered(acumos("/pipelines"), None),
        ("GET", "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/") => answered(acumos("/pipelines/"), None),
        ("GET", "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/{pipeline_id}") => refused(acumos(&format!("/pipelines/{r}")), None),
        ("GET", "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/{pipeline_id}/launch") => refused(acumos(&format!("/pipelines/{r}/launch")), None),
        ("GET", "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines") => refused(acumos(&format!("/projects/{p}/pipelines")), None),
        ("GET", "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/") => refused(acumos(&format!("/projects/{p}/pipelines/")), None),
        ("GET", "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/{pipeline_id}") => refused(acumos(&format!("/projects/{p}/pipelines/{r}")), None),
        ("GET", "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/{pipeline_id}/launch") => refused(acumos(&format!("/projects/{p}/pipelines/{r}/launch")), None),
        ("POST", "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines") => refused(acumos("/pipelines"), Some(acumos_body)),
        ("POST", "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/") => refused(acumos("/pipelines/"), Some(acumos_body)),
        ("POST", "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/{pipeline_id}") => refused(acumos(&format!("/pipelines/{r}")), None),
        ("POST", "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines") => refused(acumos(&format!("/projects/{p}/pipelines")), Some(acumos_body)),
        ("POST", "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/") => refused(acumos(&format!("/projects/{p}/pipelines/")), Some(acumos_body)),
        ("POST", "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/{pipeline_id}") => refused(acumos(&format!("/projects/{p}/pipelines/{r}")), None),
        ("PUT", "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/{pipeline_id}") => refused(acumos(&format!("/pipelines/{r}")), Some(acumos_body)),
        ("PUT", "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/{pipeline_id}/{action}") => refused(acumos(&format!("/pipelines/{r}/A")), None),
        ("PUT", "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/{pipeline_id}") => refused(acumos(&format!("/projects/{p}/pipelines/{r}")), Some(acumos_body)),
        ("PUT", "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/{pipeline_id}/{action}") => refused(acumos(&format!("/projects/{p}/pipelines/{r}/A")), None),

        // GBDX: tasks live in a shared namespace (listing and reading them is the surface's
        // rule); changing another account's task, or reading, following or cancelling its
        // workflow, is refused; listing and searching finds bob's own workflows only.
        ("DELETE", "/workflows/v1/tasks/{task}") => refused("/workflows/v1/tasks/alices-task:1.0.0".into(), None),
        ("GET", "/workflows/v1/tasks") => answered("/workflows/v1/tasks".into(), None),
        ("GET", "/workflows/v1/tasks/{task}") => answered("/workflows/v1/tasks/alices-task".into(), None),
        ("GET", "/workflows/v1/workflows/{id}") => refused(format!("/workflows/v1/workflows/{}", w.workflow), None),
        ("GET", "/workflows/v1/workflows") => answered("/workflows/v1/workflows".into(), None),
        ("POST", "/workflows/v1/workflows/search") => answered("/workflows/v1/workflows/search".into(), Some(json!({"lookback_h": 24, "state": "all", "owner": "alice"}))),
        ("POST", "/workflows/v1/workflows/{id}/cancel") => refused(format!("/workflows/v1/workflows/{}/cancel", w.workflow), None),
        ("GET", "/workflows/v1/workflows/{id}/events") => refused(format!("/workflows/v1/workflows/{}/events", w.workflow), None),
        ("GET", "/workflows/v1/workflows/{id}/tasks/{task_id}/stdout") => refused(format!("/workflows/v1/workflows/{}/tasks/{}/stdout", w.workflow, w.workflow_task), None),
        ("GET", "/workflows/v1/workflows/{id}/tasks/{task_id}/stderr") => refused(format!("/workflows/v1/workflows/{}/tasks/{}/stderr", w.workflow, w.workflow_task), None),
        ("POST", "/workflows/v1/tasks") => refused("/workflows/v1/tasks".into(), Some(stolen_task)),
        ("POST", "/workflows/v1/workflows") => answered("/workflows/v1/workflows".into(), Some(json!({"tasks": [
            {"name": "mine", "taskType": "alices-task", "inputs": [{"name": "inputstring", "value": "x"}]}]}))),
        ("PUT", "/workflows/v1/tasks/{task}") => refused("/workflows/v1/tasks/alices-task:1.0.0".into(), Some(docker_task("alices-task", "1.0.0"))),

        // Mystic: runs, pipelines, pointers and files are the account's; uploads and pushes
        // land in bob's own, listings list his own.
        ("GET", "/v3/runs/{id}") => refused(format!("/v3/runs/{}", w.run), None),
        ("GET", "/v4/runs/{id}") => refused(format!("/v4/runs/{}", w.run), None),
        ("GET", "/v4/logs/run/{id}") => refused(format!("/v4/logs/run/{}", w.run), None),
        ("POST", "/v4/runs/stream") => refused("/v4/runs/stream".into(), Some(run)),
        ("GET", "/v4/pipelines") | ("GET", "/v4/pointers") | ("GET", "/v3/pipeline_files") => answered(template.into(), None),
        ("PATCH", "/v4/pipelines/{namespace}/{pipeline}") => refused("/v4/pipelines/alice/alices-hello:0.1.0".into(), Some(json!({}))),
        ("DELETE", "/v4/pipelines/{namespace}/{pipeline}") => refused("/v4/pipelines/alice/alices-hello:0.1.0".into(), None),
        ("POST", "/v4/pointers") => refused("/v4/pointers".into(), Some(json!({"pointer": "alice/alices-hello:bobs", "pointer_or_pipeline_id": "alice/alices-hello:0.1.0"}))),
        ("PATCH", "/v4/pointers/{namespace}/{pointer}") => refused("/v4/pointers/alice/alices-hello:prod".into(), Some(json!({"locked": true}))),
        ("DELETE", "/v4/pointers/{namespace}/{pointer}") => refused("/v4/pointers/alice/alices-hello:prod".into(), None),
        ("GET", "/v3/pipeline_files/{id}") => refused(format!("/v3/pipeline_files/{}", w.upload_id), None),
        ("GET", "/v3/pipeline_files/download/{id}") => refused(format!("/v3/pipeline_files/download/{}", w.upload_id), None),
        ("GET", "/v4/blobs/{hex}/{expires}/{signature}/{name}") => refused(forged_link, None),
        ("GET", "/v4/tokens/validate") => answered("/v4/tokens/validate".into(), None),
        ("POST", "/v3/pipeline-files") | ("POST", "/v3/pipeline_files") | ("POST", "/v4/files") => answered(template.into(), None),
        ("POST", "/v3/runs") => refused("/v3/runs".into(), Some(run)),
        ("POST", "/v4/runs") => refused("/v4/runs".into(), Some(run)),
        ("POST", "/v4/pipelines") => answered("/v4/pipelines".into(), None),

        // The console: bob signed in (his own session, his own CSRF token) on alice's records;
        // his own pages show his own things only.
        ("GET", "/") | ("GET", "/console/sign-in") | ("GET", "/console/pipelines") | ("GET", "/console/tasks") | ("GET", "/console/runs") | ("GET", "/console/workflows") => answered(template.into(), None),
        ("GET", "/console/assets/{file}") => answered("/console/assets/console.css".into(), None),
        ("POST", "/console/sign-in") => answered(template.into(), Some(json!({"token": w.bob}))),
        ("POST", "/console/sign-out") => answered(template.into(), Some(json!({}))),
        ("POST", "/console/pipelines") => refused(template.into(), Some(json!({"name": "stolen", "version": "9", "type": "jupyter", "project": p}))),
        ("POST", "/console/pipelines/{id}/archive") => refused(format!("/console/pipelines/{r}/archive"), Some(json!({"archived": "true"}))),
        ("POST", "/console/pipelines/{id}/delete") => refused(format!("/console/pipelines/{r}/delete"), Some(json!({}))),
        ("POST", "/console/pipelines/{id}/launch") => refused(format!("/console/pipelines/{r}/launch"), Some(json!({}))),
        ("GET", "/console/pipelines/{id}/launch") => refused(format!("/console/pipelines/{r}/launch"), None),
        ("GET", "/console/pipelines/{id}") => refused(format!("/console/pipelines/{r}"), None),
        ("POST", "/console/pipelines/{id}") => refused(format!("/console/pipelines/{r}"), Some(json!({"name": "stolen", "version": "9", "description": "bob was here"}))),
        ("GET", "/console/runs/new/{namespace}/{name}") => refused("/console/runs/new/alice/alices-hello".into(), None),
        ("POST", "/console/runs/new/{namespace}/{name}") => refused("/console/runs/new/alice/alices-hello".into(), Some(json!({"input-0": "bob"}))),
        ("GET", "/console/runs/{id}") => refused(format!("/console/runs/{}", w.run), None),
        ("GET", "/console/workflows/{id}") => refused(format!("/console/workflows/{}", w.workflow), None),
        ("POST", "/console/workflows/{id}/cancel") => refused(format!("/console/workflows/{}/cancel", w.workflow), Some(json!({}))),
        // Tasks are shared (GBDX's rule): bob reads alice's task and runs it in a workflow of his own.
        ("GET", "/console/tasks/{name}") => answered("/console/tasks/alices-task".into(), None),
        ("POST", "/console/tasks/{name}") => answered("/console/tasks/alices-task".into(), Some(json!({"port:inputstring": "bob's"}))),
        ("GET", "/console/plugins") => refused(template.into(), None),
        ("POST", "/console/plugins") => refused(template.into(), Some(json!({"plugin-name": "policy-semver", "plugin-version": "9.9.9"}))),
        ("POST", "/console/policy-bindings") => refused(template.into(), Some(json!({"scope": "namespace:alice", "chain-0": "policy-semver"}))),
        ("POST", "/console/plugins/{name}/versions/{version}/activate") => refused("/console/plugins/policy-semver/versions/0.1.0/activate".into(), Some(json!({}))),
        ("POST", "/console/plugins/{name}/rollback") => refused("/console/plugins/policy-semver/rollback".into(), Some(json!({}))),

        // Operations: no account's data.
        ("GET", "/healthz") | ("GET", "/readyz") | ("GET", "/metrics") | ("GET", "/v1/openapi.json") | ("GET", "/docs") => answered(template.into(), None),
        ("GET", "/openapi/{document}") => answered("/openapi/ops.json".into(), None),
        ("GET", "/docs/{surface}") => answered("/docs/v1".into(), None),

        // /v1
        ("DELETE", "/v1/pipelines/{namespace}/{name}/versions/{version}") => refused("/v1/pipelines/alice/alices-secret/versions/1.0.0".into(), None),
        ("DELETE", "/v1/policy-bindings/{scope}") => refused("/v1/policy-bindings/namespace:alice".into(), None),
        ("GET", "/v1/pipelines") => answered("/v1/pipelines".into(), None),
        ("GET", "/v1/pipelines/{namespace}/{name}") => refused("/v1/pipelines/alice/alices-secret".into(), None),
        ("GET", "/v1/pipelines/{namespace}/{name}/versions") => refused("/v1/pipelines/alice/alices-secret/versions".into(), None),
        ("GET", "/v1/pipelines/{namespace}/{name}/versions/{version}") => refused("/v1/pipelines/alice/alices-secret/versions/1.0.0".into(), None),
        ("GET", "/v1/plugins") => answered("/v1/plugins".into(), None),
        ("GET", "/v1/plugins/{name}") => answered(plugin.into(), None),
        ("GET", "/v1/plugins/{name}/versions/{version}") => answered(format!("{plugin}/versions/0.1.0"), None),
        ("GET", "/v1/policy-bindings") => answered("/v1/policy-bindings".into(), None),
        ("GET", "/v1/projects") => answered("/v1/projects".into(), None),
        ("GET", "/v1/projects/{id}") => refused(format!("/v1/projects/{p}"), None),
        ("GET", "/v1/types") => answered("/v1/types".into(), None),
        ("GET", "/v1/types/{type}/scaffold") => answered("/v1/types/jupyter/scaffold?name=mine".into(), None),
        ("GET", "/v1/workbench/pipelines") => answered("/v1/workbench/pipelines".into(), None),
        ("GET", "/v1/workbench/pipelines/{id}") => refused(format!("/v1/workbench/pipelines/{r}"), None),
        ("GET", "/v1/workbench/pipelines/{id}/history") => refused(format!("/v1/workbench/pipelines/{r}/history"), None),
        ("POST", "/v1/pipelines") => refused("/v1/pipelines".into(), Some(json!({"namespace": "alice", "name": "planted", "type": "jupyter"}))),
        ("POST", "/v1/pipelines/{namespace}/{name}/versions") => refused("/v1/pipelines/alice/alices-secret/versions".into(), Some(notebook)),
        ("POST", "/v1/plugins/{name}/deactivate") => refused(format!("{plugin}/deactivate"), None),
        ("POST", "/v1/plugins/{name}/rollback") => refused(format!("{plugin}/rollback"), None),
        ("POST", "/v1/plugins/{name}/versions/{version}") => refused(format!("{plugin}/versions/9.9.9"), Some(json!({"url": "http://127.0.0.1:9/x.wasm"}))),
        ("POST", "/v1/plugins/{name}/versions/{version}/activate") => refused(format!("{plugin}/versions/0.1.0/activate"), None),
        ("POST", "/v1/projects") => answered("/v1/projects".into(), Some(json!({"name": "bobs-project"}))),
        ("PUT", "/v1/policy-bindings/{scope}") => refused("/v1/policy-bindings/namespace:alice".into(), Some(json!({"chain": ["policy-semver"]}))),
        _ => None,
    }
}

/// Bob's answer is in the surface's own error shape.
fn in_surface_shape(surface: &str, body: &Value) -> bool {
    match surface {
        "acumos" => body["serviceStatus"]["status"] == "ERROR",
        "gbdx" => body["Error"].is_string(),
        "mystic" => body["detail"].is_string(),
        "console" => body
            .as_str()
            .is_some_and(crate::console::is_console_refusal),
        _ => body["error"]["code"].is_string() && body["error"]["message"].is_string(),
    }
}

/// The request bob sends for a row; uploads and pushes get their own bodies.
async fn send(w: &World, method: &str, row: &Row) -> (u16, Value) {
    if row.path == "/" || row.path.starts_with("/console/") {
        return send_console(w, method, row).await;
    }
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let request = w.server.request(method.clone(), &row.path, Some(&w.bob));
    if method == Method::POST
        && matches!(
            row.path.as_str(),
            "/v4/files" | "/v3/pipeline_files" | "/v3/pipeline-files"
        )
    {
        let form = reqwest::multipart::Form::new().part(
            "pfile",
            reqwest::multipart::Part::bytes(b"bob's".to_vec()).file_name("b.txt"),
        );
        return call(request.multipart(form)).await;
    }
    if method == Method::POST && row.path == "/v4/pipelines" {
        // A push lands in the caller's own account: there is no naming another's.
        let (ok, pointer, stderr) = push(hello_dir("bobs-hello").path(), &w.server, &w.bob);
        assert!(ok, "{stderr}");
        assert_eq!(pointer, "bob/bobs-hello:0.1.0");
        return (201, json!({"pointer": pointer}));
    }
    match &row.body {
        Some(body) => call(request.json(body)).await,
        None => call(request).await,
    }
}

/// A console row: bob signed in afresh (a row may sign him out), the form posted with his own
/// CSRF token; a redirect is followed as a browser would. The page comes back as a JSON string.
async fn send_console(w: &World, method: &str, row: &Row) -> (u16, Value) {
    let session = crate::console::sign_in(&w.server, &w.bob).await;
    if method == "GET" {
        let (status, page) =
            crate::console::console_get(&w.server, &session.cookie, &row.path).await;
        return (status, json!(page));
    }
    let fields: Vec<(String, String)> = row
        .body
        .as_ref()
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if row.path != "/console/sign-in" {
        form.push(("csrf", &session.csrf));
    }
    // The run form carries files: it is posted as a browser posts it.
    let (status, location, page) = if row.path.starts_with("/console/runs/new/")
        || row.path == "/console/plugins"
    {
        crate::console::console_post_multipart(&w.server, &session.cookie, &row.path, &form).await
    } else {
        crate::console::console_post(&w.server, &session.cookie, &row.path, &form).await
    };
    if status == 303 {
        // Done: the page it leads to, as a browser would show it next.
        let (status, page) =
            crate::console::console_get(&w.server, &session.cookie, &location).await;
        return (status, json!(page));
    }
    (status, json!(page))
}

async fn every_route_refuses_another_account_and_changes_nothing(backend: Backend) {
    let w = World::start(backend).await;
    let before = w.alices_view().await;
    let routes = pipewright::api::route_list();
    let missing: Vec<String> = routes
        .iter()
        .filter(|spec| row(&w, &spec.method, &spec.path).is_none())
        .map(|spec| format!("{} {}", spec.method, spec.path))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the cross-account matrix: {missing:#?}"
    );
    let markers = private_markers(&w);
    let mut failures = Vec::new();
    for spec in &routes {
        let row = row(&w, &spec.method, &spec.path).unwrap();
        let (status, body) = send(&w, &spec.method, &row).await;
        let what = format!("{} {} (as {})", spec.method, spec.path, row.path);
        let text = body.to_string();
        // What bob named himself is no leak when it comes back (`run X not found`).
        let asked = format!(
            "{} {}",
            row.path,
            row.body.as_ref().map(Value::to_string).unwrap_or_default()
        );
        let leaked = markers
            .iter()
            .find(|m| text.contains(m.as_str()) && !asked.contains(m.as_str()));
        if let Some(marker) = leaked {
            failures.push(format!("{what}: bob saw `{marker}` of alice's: {text}"));
        }
        match row.expect {
            Expect::Refused if !(400..500).contains(&status) => {
                failures.push(format!("{what}: not refused ({status}): {text}"))
            }
            Expect::Refused if !in_surface_shape(spec.surface, &body) => failures.push(format!(
                "{what}: refused ({status}) but not in the {} error shape: {text}",
                spec.surface
            )),
            Expect::Answered if !(200..300).contains(&status) => {
                failures.push(format!("{what}: not answered ({status}): {text}"))
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let after = w.alices_view().await;
    assert_eq!(before, after, "alice's view changed");
}
