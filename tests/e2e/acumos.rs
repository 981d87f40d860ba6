//! The Acumos ML Workbench pipeline service over HTTP, on SQLite and on PostgreSQL: one test per
//! row of the seed's checks (its exact message and status), then the flows a Workbench user
//! goes through, the pipeline store's working copies, and the cross-user matrix.

use reqwest::Method;
use serde_json::{json, Value};

use pipewright::plugins::Grants;

use crate::harness::{call, Backend, TestServer};
use crate::on_both_stores;
use crate::peers::{http, FakeZeppelin, JupyterHub};

const BASE: &str = "/mlWorkbench/v1/pipeline";
const NO_SUCH_ID: &str = "00000000-0000-4000-8000-000000000000";

/// A server with alice (a project, an active and an archived pipeline) and bob.
struct Workbench {
    server: TestServer,
    alice: String,
    bob: String,
    project: String,
    pipeline: String,
    archived: String,
}

impl Workbench {
    async fn start(backend: Backend) -> Workbench {
        let server = TestServer::start(backend).await;
        let alice = server.token("alice").await;
        let bob = server.token("bob").await;
        let (status, project) = server
            .post("/v1/projects", &alice, json!({"name": "churn_study"}))
            .await;
        assert_eq!(status, 201, "{project}");
        let project = project["id"].as_str().unwrap().to_string();
        let mut workbench = Workbench {
            server,
            alice,
            bob,
            project,
            pipeline: String::new(),
            archived: String::new(),
        };
        workbench.pipeline = workbench.create("alice", "churn", Some("1.0")).await;
        workbench.archived = workbench.create("alice", "old_model", None).await;
        let (status, body) = workbench
            .send(
                Method::PUT,
                &format!("/users/alice/pipelines/{}/A", workbench.archived),
                Some("alice"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        workbench
    }

    fn token(&self, user: &str) -> &str {
        match user {
            "alice" => &self.alice,
            "bob" => &self.bob,
            other => panic!("no token for {other}"),
        }
    }

    /// Sends `method` to `BASE + path` as `user` (None: no credentials) with a raw body.
    async fn send(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let token = user.map(|u| self.token(u));
        let mut request = self.server.request(method, &format!("{BASE}{path}"), token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        call(request).await
    }

    /// A new project of alice's, through `/v1`; its id.
    async fn project(&self, name: &str) -> String {
        let (status, project) = self
            .server
            .post("/v1/projects", &self.alice, json!({"name": name}))
            .await;
        assert_eq!(status, 201, "{project}");
        project["id"].as_str().unwrap().to_string()
    }

    /// Adds alice's `pipeline` to `project` the way the Workbench's project page does: an
    /// update made in the project.
    async fn add_to_project(&self, project: &str, pipeline: &str) -> Value {
        let (status, body) = self
            .send(
                Method::PUT,
                &format!("/users/alice/projects/{project}/pipelines/{pipeline}"),
                Some("alice"),
                Some("{}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Creates a Jupyter pipeline as `user`; its uuid.
    async fn create(&self, user: &str, name: &str, version: Option<&str>) -> String {
        let (status, body) = self
            .send(
                Method::POST,
                &format!("/users/{user}/pipelines"),
                Some(user),
                Some(&pipeline_body(name, version, Some("Jupyter")).to_string()),
            )
            .await;
        assert_eq!(status, 201, "creating {name}: {body}");
        body["pipelineId"]["uuid"].as_str().unwrap().to_string()
    }
}

/// A createPipeline / updatePipelines request body in the original wire shape.
fn pipeline_body(name: &str, version: Option<&str>, pipeline_type: Option<&str>) -> Value {
    let mut body = json!({
        "pipelineId": {"name": name, "versionId": {"label": version}},
        "description": "a test pipeline",
        "pipelineType": pipeline_type,
    });
    if version.is_none() {
        body["pipelineId"]
            .as_object_mut()
            .unwrap()
            .remove("versionId");
    }
    if pipeline_type.is_none() {
        body.as_object_mut().unwrap().remove("pipelineType");
    }
    body
}

/// Asserts the original's error shape with the seed's exact message.
/// The request id the server adds to `serviceStatus` (see `ops.rs`) is set aside first.
fn assert_refused(answer: &(u16, Value), status: u16, message: &str) {
    let (got_status, body) = answer;
    let mut body = body.clone();
    if let Some(service_status) = body["serviceStatus"].as_object_mut() {
        let id = service_status.remove("requestId");
        assert!(
            id.as_ref().is_some_and(Value::is_string),
            "a request id: {id:?}"
        );
    }
    assert_eq!(
        body,
        json!({"serviceStatus": {"status": "ERROR", "statusMessage": message}}),
        "body of a refusal"
    );
    assert_eq!(*got_status, status, "status of `{message}`");
}

// ---------------------------------------------------------------------------------------------
// One test per row of the seed's checks. Each row: who sends what, the status, the exact text.

macro_rules! seed_rows {
    ($($name:ident: |$w:ident| $request:expr => $status:literal, $message:literal;)*) => {
        $(
            async fn $name(backend: Backend) {
                let $w = Workbench::start(backend).await;
                let answer = $request;
                assert_refused(&answer, $status, $message);
            }
        )*
        on_both_stores!($($name),*);
    };
}

seed_rows! {
    // createPipeline
    create_invalid_json: |w| w.send(Method::POST, "/users/alice/pipelines", Some("alice"), Some("{\"pipelineId\": ")).await
        => 400, "Incorrectly formatted input – Invalid JSON";
    create_wrong_shape_is_invalid_json: |w| w.send(Method::POST, "/users/alice/pipelines", Some("alice"), Some("{\"pipelineId\": 7}")).await
        => 400, "Incorrectly formatted input – Invalid JSON";
    create_user_id_missing: |w| w.send(Method::POST, "/users/alice/pipelines", None, Some(&pipeline_body("x1", None, Some("Jupyter")).to_string())).await
        => 400, "Acumos User Id missing";
    create_name_missing: |w| w.send(Method::POST, "/users/alice/pipelines", Some("alice"), Some(&json!({"pipelineType": "Jupyter"}).to_string())).await
        => 400, "Pipeline Name missing";
    create_invalid_name: |w| w.send(Method::POST, "/users/alice/pipelines", Some("alice"), Some(&pipeline_body("1st-model", None, Some("Jupyter")).to_string())).await
        => 400, "Invalid Pipeline name";
    create_invalid_version: |w| w.send(Method::POST, "/users/alice/pipelines", Some("alice"), Some(&pipeline_body("model", Some("v1"), Some("Jupyter")).to_string())).await
        => 400, "Invalid Pipeline version";
    create_type_missing: |w| w.send(Method::POST, "/users/alice/pipelines", Some("alice"), Some(&pipeline_body("model", Some("1"), None).to_string())).await
        => 400, "Missing mandatory field – pipeline type";
    create_invalid_type: |w| w.send(Method::POST, "/users/alice/pipelines", Some("alice"), Some(&pipeline_body("model", Some("1"), Some("Spark")).to_string())).await
        => 400, "Invalid pipeline type provided";
    // Types of other surfaces: their handlers do not declare the Workbench.
    create_gbdx_task_type_is_invalid: |w| w.send(Method::POST, "/users/alice/pipelines", Some("alice"), Some(&pipeline_body("model", Some("1"), Some("task")).to_string())).await
        => 400, "Invalid pipeline type provided";
    create_runnable_type_is_invalid: |w| w.send(Method::POST, "/users/alice/pipelines", Some("alice"), Some(&pipeline_body("model", Some("1"), Some("Runnable")).to_string())).await
        => 400, "Invalid pipeline type provided";
    create_project_does_not_exist: |w| w.send(Method::POST, &format!("/users/alice/projects/{NO_SUCH_ID}/pipelines"), Some("alice"), Some(&pipeline_body("model", None, Some("Jupyter")).to_string())).await
        => 404, "ProjectId does not exist.";
    create_name_and_version_exist: |w| w.send(Method::POST, "/users/alice/pipelines", Some("alice"), Some(&pipeline_body("CHURN", Some("1.0"), Some("jupyter")).to_string())).await
        => 409, "Pipeline name and version already exists for this user";
    create_as_another_user: |w| w.send(Method::POST, "/users/alice/pipelines", Some("bob"), Some(&pipeline_body("model", None, Some("Jupyter")).to_string())).await
        => 403, "Permission denied";

    // launchPipeline
    launch_user_id_missing: |w| w.send(Method::GET, &format!("/users/alice/pipelines/{}/launch", w.pipeline), None, None).await
        => 404, "Acumos User Id missing";
    launch_pipeline_id_missing: |w| w.send(Method::GET, "/users/alice/pipelines/%20/launch", Some("alice"), None).await
        => 404, "Pipeline Id missing";
    launch_archived: |w| w.send(Method::GET, &format!("/users/alice/pipelines/{}/launch", w.archived), Some("alice"), None).await
        => 409, "Cannot launch – pipeline is archived";
    launch_not_found: |w| w.send(Method::GET, &format!("/users/alice/pipelines/{NO_SUCH_ID}/launch"), Some("alice"), None).await
        => 404, "Pipeline not found";
    launch_permissions_denied: |w| w.send(Method::GET, &format!("/users/bob/pipelines/{}/launch", w.pipeline), Some("bob"), None).await
        => 403, "Permissions denied";
    // The seed checks "archived" before permission.
    launch_archived_before_permission: |w| w.send(Method::GET, &format!("/users/bob/pipelines/{}/launch", w.archived), Some("bob"), None).await
        => 409, "Cannot launch – pipeline is archived";

    // ListPipelines
    list_user_id_missing: |w| w.send(Method::GET, "/users/alice/pipelines/", None, None).await
        => 404, "Acumos User Id missing";
    list_permissions_denied: |w| w.send(Method::GET, "/users/alice/pipelines/", Some("bob"), None).await
        => 403, "Permissions denied";
    list_project_does_not_exist: |w| w.send(Method::GET, &format!("/users/alice/projects/{NO_SUCH_ID}/pipelines/"), Some("alice"), None).await
        => 404, "Project Id does not exists";

    // updatePipelines
    update_invalid_json: |w| w.send(Method::PUT, &format!("/users/alice/pipelines/{}", w.pipeline), Some("alice"), Some("not json")).await
        => 400, "Incorrectly formatted input – Invalid JSON";
    update_user_id_missing: |w| w.send(Method::PUT, &format!("/users/alice/pipelines/{}", w.pipeline), None, Some("{}")).await
        => 404, "Acumos User Id missing";
    update_permission_denied: |w| w.send(Method::PUT, &format!("/users/bob/pipelines/{}", w.pipeline), Some("bob"), Some("{}")).await
        => 403, "Permission denied";
    update_archived: |w| w.send(Method::PUT, &format!("/users/alice/pipelines/{}", w.archived), Some("alice"), Some("{\"description\": \"x\"}")).await
        => 409, "Update not allowed – pipeline is archived";
    update_name_and_version_exist: |w| {
        w.create("alice", "forecast", Some("2.0")).await;
        w.send(Method::PUT, &format!("/users/alice/pipelines/{}", w.pipeline), Some("alice"), Some(&pipeline_body("Forecast", Some("2.0"), None).to_string())).await
    } => 409, "Pipeline name and version already exists for user";
    update_project_invalid: |w| w.send(Method::PUT, &format!("/users/alice/projects/{NO_SUCH_ID}/pipelines/{}", w.pipeline), Some("alice"), Some("{}")).await
        => 404, "Project Id is invalid";
    update_invalid_name: |w| w.send(Method::PUT, &format!("/users/alice/pipelines/{}", w.pipeline), Some("alice"), Some(&pipeline_body("no spaces", None, None).to_string())).await
        => 400, "Invalid Pipeline name";

    archive_referenced_by_other_projects: |w| {
        let other = w.project("second_study").await;
        w.add_to_project(&w.project, &w.pipeline).await;
        w.add_to_project(&other, &w.pipeline).await;
        w.send(Method::PUT, &format!("/users/alice/pipelines/{}/A", w.pipeline), Some("alice"), None).await
    } => 409, "Pipeline is referenced by other users / projects";
    archive_in_a_project_referenced_by_another: |w| {
        let other = w.project("second_study").await;
        w.add_to_project(&other, &w.pipeline).await;
        w.send(Method::PUT, &format!("/users/alice/projects/{}/pipelines/{}/A", w.project, w.pipeline), Some("alice"), None).await
    } => 409, "Pipeline is referenced by other users / projects";
    archive_referenced_by_another_user: |w| {
        let dave = w.server.token_in("dave", Some("alice")).await;
        let (status, body) = call(w.server.request(Method::PUT, &format!("{BASE}/users/dave/pipelines/{}", w.pipeline), Some(&dave)).json(&json!({"description": "dave was here"}))).await;
        assert_eq!(status, 200, "{body}");
        w.send(Method::PUT, &format!("/users/alice/pipelines/{}/A", w.pipeline), Some("alice"), None).await
    } => 409, "Pipeline is referenced by other users / projects";
    archive_reads_no_body_but_an_action_must_be_known: |w| w.send(Method::PUT, &format!("/users/alice/pipelines/{}/Z", w.pipeline), Some("alice"), Some("[null, 1]")).await
        => 400, "Invalid action type: use A to archive or UA to unarchive";

    // In a project the pipeline does not belong to (the original's AssociationNotFoundException).
    launch_in_a_project_it_is_not_in: |w| w.send(Method::GET, &format!("/users/alice/projects/{}/pipelines/{}/launch", w.project, w.pipeline), Some("alice"), None).await
        => 404, "Specified Project and Pipeline are not associated";
    get_in_a_project_it_is_not_in: |w| w.send(Method::GET, &format!("/users/alice/projects/{}/pipelines/{}", w.project, w.pipeline), Some("alice"), None).await
        => 404, "Specified Project and Pipeline are not associated";
    creation_status_in_a_project_it_is_not_in: |w| w.send(Method::POST, &format!("/users/alice/projects/{}/pipelines/{}", w.project, w.pipeline), Some("alice"), None).await
        => 404, "Specified Project and Pipeline are not associated";
    get_in_project_user_id_missing: |w| w.send(Method::GET, &format!("/users/alice/projects/{}/pipelines/{}", w.project, w.pipeline), None, None).await
        => 404, "Acumos User Id missing";
    get_in_another_accounts_project: |w| w.send(Method::GET, &format!("/users/bob/projects/{}/pipelines/{}", w.project, w.pipeline), Some("bob"), None).await
        => 404, "Project Id does not exists";
    get_in_project_as_another_user: |w| w.send(Method::GET, &format!("/users/alice/projects/{}/pipelines/{}", w.project, w.pipeline), Some("bob"), None).await
        => 403, "Permission denied";
    get_in_project_pipeline_not_found: |w| w.send(Method::GET, &format!("/users/alice/projects/{}/pipelines/{NO_SUCH_ID}", w.project), Some("alice"), None).await
        => 404, "Requested Pipeline Not found";
    update_in_a_project_that_is_not_there: |w| w.send(Method::PUT, &format!("/users/alice/pipelines/{}", w.pipeline), Some("alice"), Some(&json!({"projects": {"projects": [{"projectId": {"uuid": NO_SUCH_ID}}]}}).to_string())).await
        => 404, "Project Id is invalid";
    update_projects_of_the_wrong_shape: |w| w.send(Method::PUT, &format!("/users/alice/pipelines/{}", w.pipeline), Some("alice"), Some("{\"projects\": [\"not\", \"a\", \"Projects\"]}")).await
        => 400, "Incorrectly formatted input – Invalid JSON";
    association_not_in_that_project: |w| w.send(Method::DELETE, &format!("/users/alice/projects/{}/pipelines/{}", w.project, w.pipeline), Some("alice"), None).await
        => 404, "Requested Pipeline Not found";

    // archivePipelines
    archive_invalid_json: |w| w.send(Method::PUT, &format!("/users/alice/pipelines/{}/A", w.pipeline), Some("alice"), Some("{")).await
        => 400, "Incorrectly formatted input – Invalid JSON";
    archive_user_id_missing: |w| w.send(Method::PUT, &format!("/users/alice/pipelines/{}/A", w.pipeline), None, None).await
        => 404, "Acumos User Id missing";
    archive_permission_denied: |w| w.send(Method::PUT, &format!("/users/bob/pipelines/{}/A", w.pipeline), Some("bob"), None).await
        => 403, "Permission denied";

    // deleteProjectPipelineAssociation
    association_user_id_missing: |w| w.send(Method::DELETE, &format!("/users/alice/projects/{}/pipelines/{}", w.project, w.pipeline), None, None).await
        => 404, "Acumos User Id missing";
    association_permission_denied: |w| w.send(Method::DELETE, &format!("/users/bob/projects/{}/pipelines/{}", w.project, w.pipeline), Some("bob"), None).await
        => 403, "Permission denied";
    association_pipeline_not_found: |w| w.send(Method::DELETE, &format!("/users/alice/projects/{}/pipelines/{NO_SUCH_ID}", w.project), Some("alice"), None).await
        => 404, "Requested Pipeline Not found";
}

// ---------------------------------------------------------------------------------------------
// Flows.

on_both_stores!(
    create_get_list_update_archive_and_delete,
    rename_keeps_history_and_uniqueness,
    working_copy_follows_the_record,
    a_failed_working_copy_leaves_no_record,
    another_user_is_refused_everything_and_changes_nothing,
    account_members_collaborate,
    a_pipeline_belongs_to_several_projects,
    gateway_header_only_when_trusted,
);

async fn create_get_list_update_archive_and_delete(backend: Backend) {
    let w = Workbench::start(backend).await;

    // Create under a project: 201 with the original's wire object.
    let (status, created) = w
        .send(
            Method::POST,
            &format!("/users/alice/projects/{}/pipelines/", w.project),
            Some("alice"),
            Some(&pipeline_body("scoring", Some("0.1"), Some("zeppelin")).to_string()),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["pipelineId"]["uuid"].as_str().unwrap().to_string();
    assert_eq!(created["pipelineId"]["name"], "scoring");
    assert_eq!(created["pipelineId"]["identifierType"], "PIPELINE");
    assert_eq!(created["pipelineId"]["versionId"]["label"], "0.1");
    assert_eq!(
        created["pipelineId"]["repositoryUrl"],
        format!("/pipelines/{id}")
    );
    assert_eq!(created["pipelineType"], "Zeppelin");
    assert_eq!(created["owner"]["authenticatedUserId"], "alice");
    assert_eq!(created["owner"]["userId"]["identifierType"], "USER");
    assert!(created["owner"]["userId"]["uuid"].as_str().is_some());
    assert_eq!(created["serviceStatus"]["status"], "COMPLETED");
    assert_eq!(created["artifactStatus"]["status"], "ACTIVE");
    assert_eq!(
        created["projects"]["projects"][0]["uuid"],
        w.project.as_str()
    );
    let stamp = created["pipelineId"]["versionId"]["creationTimeStamp"]
        .as_str()
        .unwrap();
    assert!(stamp.ends_with('Z') && stamp.contains('T'), "{stamp}");

    // Get one, and list by user (active and archived) and by project.
    let (status, got) = w
        .send(
            Method::GET,
            &format!("/users/alice/pipelines/{id}"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(
        (status, &got["pipelineId"]["name"]),
        (200, &json!("scoring"))
    );
    let (status, all) = w
        .send(Method::GET, "/users/alice/pipelines/", Some("alice"), None)
        .await;
    assert_eq!(status, 200);
    let mut names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pipelineId"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["churn", "old_model", "scoring"]);
    let (status, in_project) = w
        .send(
            Method::GET,
            &format!("/users/alice/projects/{}/pipelines/", w.project),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(in_project.as_array().unwrap().len(), 1);

    // Update assigns a project to a pipeline that has none.
    let (status, updated) = w
        .send(
            Method::PUT,
            &format!(
                "/users/alice/projects/{}/pipelines/{}",
                w.project, w.pipeline
            ),
            Some("alice"),
            Some(&json!({"description": "now in a project"}).to_string()),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["description"], "now in a project");
    assert_eq!(
        updated["projects"]["projects"][0]["uuid"],
        w.project.as_str()
    );

    // Archive, unarchive.
    for (action, expected) in [("A", "ARCHIVED"), ("UA", "ACTIVE")] {
        let (status, body) = w
            .send(
                Method::PUT,
                &format!("/users/alice/pipelines/{id}/{action}"),
                Some("alice"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["artifactStatus"]["status"], expected);
        assert_eq!(body["serviceStatus"]["status"], "COMPLETED");
    }
    let answer = w
        .send(
            Method::PUT,
            &format!("/users/alice/pipelines/{id}/X"),
            Some("alice"),
            None,
        )
        .await;
    assert_refused(
        &answer,
        400,
        "Invalid action type: use A to archive or UA to unarchive",
    );

    // Drop the project association, then delete.
    let (status, state) = w
        .send(
            Method::DELETE,
            &format!("/users/alice/projects/{}/pipelines/{id}", w.project),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        state,
        json!({"status": "COMPLETED", "statusMessage": "Project Pipeline Association Deleted successfully."})
    );
    let (_, in_project) = w
        .send(
            Method::GET,
            &format!("/users/alice/projects/{}/pipelines/", w.project),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(in_project.as_array().unwrap().len(), 1, "only churn left");
    let (status, state) = w
        .send(
            Method::DELETE,
            &format!("/users/alice/pipelines/{id}"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        state,
        json!({"status": "COMPLETED", "statusMessage": "Pipeline Deleted successfully."})
    );
    let answer = w
        .send(
            Method::GET,
            &format!("/users/alice/pipelines/{id}"),
            Some("alice"),
            None,
        )
        .await;
    assert_refused(&answer, 404, "Requested Pipeline Not found");
}

async fn rename_keeps_history_and_uniqueness(backend: Backend) {
    let w = Workbench::start(backend).await;
    let path = format!("/users/alice/pipelines/{}", w.pipeline);
    for (name, version) in [("churn_v2", "2.0"), ("churn_v3", "3.0")] {
        let (status, body) = w
            .send(
                Method::PUT,
                &path,
                Some("alice"),
                Some(&pipeline_body(name, Some(version), None).to_string()),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["pipelineId"]["name"], name);
        assert_eq!(body["pipelineId"]["versionId"]["label"], version);
    }
    let (status, history) = w
        .server
        .get(
            &format!("/v1/workbench/pipelines/{}/history", w.pipeline),
            &w.alice,
        )
        .await;
    assert_eq!(status, 200, "{history}");
    let earlier: Vec<(&str, &str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap(),
                h["version"].as_str().unwrap(),
                h["changed_by"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        earlier,
        [("churn", "1.0", "alice"), ("churn_v2", "2.0", "alice")]
    );
    // The old name and version are free again; the new ones are taken.
    w.create("alice", "churn", Some("1.0")).await;
    let answer = w
        .send(
            Method::POST,
            "/users/alice/pipelines",
            Some("alice"),
            Some(&pipeline_body("churn_v3", Some("3.0"), Some("Jupyter")).to_string()),
        )
        .await;
    assert_refused(
        &answer,
        409,
        "Pipeline name and version already exists for this user",
    );
    // The same name and version belong to each user separately.
    w.create("bob", "churn_v3", Some("3.0")).await;
    // A description-only update adds no history.
    let (status, _) = w
        .send(
            Method::PUT,
            &path,
            Some("alice"),
            Some("{\"description\": \"d\"}"),
        )
        .await;
    assert_eq!(status, 200);
    let (_, history) = w
        .server
        .get(
            &format!("/v1/workbench/pipelines/{}/history", w.pipeline),
            &w.alice,
        )
        .await;
    assert_eq!(history.as_array().unwrap().len(), 2);
    let (_, record) = w
        .server
        .get(&format!("/v1/workbench/pipelines/{}", w.pipeline), &w.alice)
        .await;
    assert_eq!(record["approved_by"], json!(["policy-acumos@0.1.0"]));
}

async fn working_copy_follows_the_record(backend: Backend) {
    let w = Workbench::start(backend).await;
    let copy = w.server.data_dir().join("pipelines").join(&w.pipeline);
    let notebook = std::fs::read(copy.join("notebook.ipynb")).expect("scaffolded notebook");
    let notebook: Value = serde_json::from_slice(&notebook).unwrap();
    assert_eq!(notebook["nbformat"], 4);
    let log = std::process::Command::new("git")
        .args(["-C", copy.to_str().unwrap(), "log", "--format=%an %s"])
        .output()
        .expect("git runs");
    assert_eq!(
        String::from_utf8_lossy(&log.stdout).trim(),
        "alice Create pipeline churn"
    );
    let (status, _) = w
        .send(
            Method::DELETE,
            &format!("/users/alice/pipelines/{}", w.pipeline),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(!copy.exists(), "delete removes the working copy");
    let leftovers: Vec<_> = std::fs::read_dir(w.server.data_dir().join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "only old_model's copy: {leftovers:?}");
}

async fn a_failed_working_copy_leaves_no_record(backend: Backend) {
    let w = Workbench::start(backend).await;
    let store = w.server.data_dir().join("pipelines");
    // Make the pipeline store unusable (a file where its folder was): creation must fail
    // after the record was inserted, and the record must not survive.
    let aside = w.server.data_dir().join("pipelines.aside");
    std::fs::rename(&store, &aside).unwrap();
    std::fs::write(&store, b"not a folder").unwrap();
    let (status, body) = w
        .send(
            Method::POST,
            "/users/alice/pipelines",
            Some("alice"),
            Some(&pipeline_body("doomed", None, Some("Jupyter")).to_string()),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["serviceStatus"]["status"], "ERROR");
    std::fs::remove_file(&store).unwrap();
    std::fs::rename(&aside, &store).unwrap();
    let (_, all) = w
        .send(Method::GET, "/users/alice/pipelines/", Some("alice"), None)
        .await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|p| p["pipelineId"]["name"] != "doomed"),
        "no record without its working copy: {all}"
    );
    // The same name can be created once the store works again.
    w.create("alice", "doomed", None).await;
}

async fn another_user_is_refused_everything_and_changes_nothing(backend: Backend) {
    let w = Workbench::start(backend).await;
    let before = w
        .send(
            Method::GET,
            &format!("/users/alice/pipelines/{}", w.pipeline),
            Some("alice"),
            None,
        )
        .await;
    let id = &w.pipeline;
    let project = &w.project;
    let body = pipeline_body("stolen", Some("9"), None).to_string();
    // Bob as himself on alice's pipeline, and bob claiming to be alice.
    for user_in_path in ["bob", "alice"] {
        let attempts: Vec<(Method, String, Option<&str>)> = vec![
            (
                Method::GET,
                format!("/users/{user_in_path}/pipelines/{id}"),
                None,
            ),
            (
                Method::GET,
                format!("/users/{user_in_path}/pipelines/{id}/launch"),
                None,
            ),
            (
                Method::PUT,
                format!("/users/{user_in_path}/pipelines/{id}"),
                Some(&body),
            ),
            (
                Method::PUT,
                format!("/users/{user_in_path}/pipelines/{id}/A"),
                None,
            ),
            (
                Method::PUT,
                format!("/users/{user_in_path}/pipelines/{id}/UA"),
                None,
            ),
            (
                Method::DELETE,
                format!("/users/{user_in_path}/pipelines/{id}"),
                None,
            ),
            (
                Method::DELETE,
                format!("/users/{user_in_path}/projects/{project}/pipelines/{id}"),
                None,
            ),
            (
                Method::PUT,
                format!("/users/{user_in_path}/projects/{project}/pipelines/{id}"),
                Some(&body),
            ),
        ];
        for (method, path, body) in attempts {
            let (status, answer) = w.send(method.clone(), &path, Some("bob"), body).await;
            assert_eq!(status, 403, "{method} {path}: {answer}");
            assert_eq!(answer["serviceStatus"]["status"], "ERROR");
            assert!(
                answer.get("pipelineId").is_none(),
                "nothing of alice's pipeline is shown: {answer}"
            );
        }
    }
    let (status, bobs) = w
        .send(Method::GET, "/users/bob/pipelines/", Some("bob"), None)
        .await;
    assert_eq!((status, bobs), (200, json!([])));
    let (status, _) = w
        .server
        .get(&format!("/v1/workbench/pipelines/{id}/history"), &w.bob)
        .await;
    assert_eq!(status, 403);
    let after = w
        .send(
            Method::GET,
            &format!("/users/alice/pipelines/{id}"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(before, after, "alice's pipeline is unchanged");
    assert!(w
        .server
        .data_dir()
        .join("pipelines")
        .join(id)
        .join("notebook.ipynb")
        .exists());
}

async fn account_members_collaborate(backend: Backend) {
    let w = Workbench::start(backend).await;
    // Dave is a member of alice's account: he may update her pipeline and becomes a
    // collaborator, so it appears in his list; the owner stays alice.
    let dave = w.server.token_in("dave", Some("alice")).await;
    let (status, updated) = call(
        w.server
            .request(
                Method::PUT,
                &format!("{BASE}/users/dave/pipelines/{}", w.pipeline),
                Some(&dave),
            )
            .json(&json!({"description": "reviewed by dave"})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["owner"]["authenticatedUserId"], "alice");
    let (_, record) = w
        .server
        .get(&format!("/v1/workbench/pipelines/{}", w.pipeline), &dave)
        .await;
    assert_eq!(record["collaborators"], json!(["dave"]));
    // On the wire, as the original's Pipeline has them: `users`, a Users list of User.
    let dave_id = updated["users"]["users"][0]["userId"]["uuid"]
        .as_str()
        .expect("dave's user id")
        .to_string();
    assert_eq!(
        updated["users"],
        json!({"users": [{"userId": {"uuid": dave_id, "name": "dave", "identifierType": "USER"},
                          "authenticatedUserId": "dave"}]})
    );
    let (_, seen_by_alice) = w
        .send(
            Method::GET,
            &format!("/users/alice/pipelines/{}", w.pipeline),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(seen_by_alice["users"], updated["users"]);
    assert_ne!(
        dave_id, seen_by_alice["owner"]["userId"]["uuid"],
        "a collaborator is not the owner"
    );
    // A pipeline nobody else worked on has no `users` at all (nulls are omitted).
    let (_, archived) = w
        .send(
            Method::GET,
            &format!("/users/alice/pipelines/{}", w.archived),
            Some("alice"),
            None,
        )
        .await;
    assert!(archived.get("users").is_none(), "{archived}");
    let (status, daves) = call(w.server.request(
        Method::GET,
        &format!("{BASE}/users/dave/pipelines/"),
        Some(&dave),
    ))
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = daves
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pipelineId"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["churn"]);
}

/// The seed keeps a pipeline "under /pipelines/{uuid}" because "a pipeline may belong to
/// multiple projects": created in one, added to another by an update made there (the
/// original's route for that), listed in each, read, launched and dropped per project; while
/// in two it cannot be archived; deleting it takes it out of every project.
async fn a_pipeline_belongs_to_several_projects(backend: Backend) {
    let w = Workbench::start(backend).await;
    let second = w.project("second_study").await;
    let third = w.project("third_study").await;
    let (status, created) = w
        .send(
            Method::POST,
            &format!("/users/alice/projects/{}/pipelines", w.project),
            Some("alice"),
            Some(&pipeline_body("shared_model", Some("1"), Some("Jupyter")).to_string()),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["pipelineId"]["uuid"].as_str().unwrap().to_string();
    let uuids = |pipeline: &Value| -> Vec<String> {
        pipeline["projects"]["projects"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|p| p["uuid"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(uuids(&created), [w.project.as_str()]);

    // Added to a second project, twice: once is enough.
    let added = w.add_to_project(&second, &id).await;
    assert_eq!(uuids(&added), [w.project.clone(), second.clone()]);
    assert_eq!(added["projects"]["projects"][1]["name"], "second_study");
    assert_eq!(
        added["projects"]["projects"][1]["identifierType"],
        "PROJECT"
    );
    let again = w.add_to_project(&second, &id).await;
    assert_eq!(uuids(&again), [w.project.clone(), second.clone()]);
    // A project named in the body of an update outside any project is added too.
    let (status, body_named) = w
        .send(
            Method::PUT,
            &format!("/users/alice/pipelines/{id}"),
            Some("alice"),
            Some(&json!({"projects": {"projects": [{"projectId": {"uuid": third}}]}}).to_string()),
        )
        .await;
    assert_eq!(status, 200, "{body_named}");
    assert_eq!(
        uuids(&body_named),
        [w.project.clone(), second.clone(), third.clone()]
    );

    let names_in = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|p| p["pipelineId"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    for project in [&w.project, &second, &third] {
        let (status, listed) = w
            .send(
                Method::GET,
                &format!("/users/alice/projects/{project}/pipelines/"),
                Some("alice"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{listed}");
        assert_eq!(names_in(&listed), ["shared_model"], "in {project}");
        let (status, got) = w
            .send(
                Method::GET,
                &format!("/users/alice/projects/{project}/pipelines/{id}"),
                Some("alice"),
                None,
            )
            .await;
        assert_eq!((status, &got["pipelineId"]["uuid"]), (200, &json!(id)));
    }
    let (_, all) = w
        .send(Method::GET, "/users/alice/pipelines/", Some("alice"), None)
        .await;
    assert_eq!(
        names_in(&all)
            .iter()
            .filter(|n| *n == "shared_model")
            .count(),
        1,
        "listed once for the user: {all}"
    );

    // Shared by three projects: archiving is refused from anywhere, and nothing changes.
    for path in [
        format!("/users/alice/pipelines/{id}/A"),
        format!("/users/alice/projects/{second}/pipelines/{id}/A"),
    ] {
        let answer = w.send(Method::PUT, &path, Some("alice"), None).await;
        assert_refused(
            &answer,
            409,
            "Pipeline is referenced by other users / projects",
        );
    }
    let (_, unchanged) = w
        .send(
            Method::GET,
            &format!("/users/alice/pipelines/{id}"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(unchanged["artifactStatus"]["status"], "ACTIVE");

    // Dropped from two projects; the others keep it, and from its last project it archives.
    for project in [&second, &third] {
        let (status, state) = w
            .send(
                Method::DELETE,
                &format!("/users/alice/projects/{project}/pipelines/{id}"),
                Some("alice"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{state}");
        let (_, listed) = w
            .send(
                Method::GET,
                &format!("/users/alice/projects/{project}/pipelines"),
                Some("alice"),
                None,
            )
            .await;
        assert_eq!(listed, json!([]));
    }
    let (status, archived) = w
        .send(
            Method::PUT,
            &format!("/users/alice/projects/{}/pipelines/{id}/A", w.project),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{archived}");
    assert_eq!(archived["artifactStatus"]["status"], "ARCHIVED");
    assert_eq!(uuids(&archived), [w.project.as_str()]);
    let (status, _) = w
        .send(
            Method::PUT,
            &format!("/users/alice/pipelines/{id}/UA"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, 200);

    // Deleted through the original's misspelt route: gone from its project, the project stays.
    w.add_to_project(&second, &id).await;
    let (status, state) = w
        .send(
            Method::DELETE,
            &format!("/users/alice/pipeliens/{id}"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{state}");
    for project in [&w.project, &second] {
        let (status, listed) = w
            .send(
                Method::GET,
                &format!("/users/alice/projects/{project}/pipelines/"),
                Some("alice"),
                None,
            )
            .await;
        assert_eq!((status, listed), (200, json!([])));
    }
    let (status, _) = w
        .server
        .get(&format!("/v1/projects/{second}"), &w.alice)
        .await;
    assert_eq!(status, 200);
}

async fn gateway_header_only_when_trusted(backend: Backend) {
    let body = pipeline_body("from_gateway", None, Some("Jupyter"));
    // The Workbench's backend sends its token bare, without `Bearer`.
    let server = TestServer::start(backend).await;
    let dora = server.token("dora").await;
    let (status, created) = call(
        server
            .request(Method::POST, &format!("{BASE}/users/dora/pipelines"), None)
            .header("Authorization", dora.as_str())
            .json(&body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    drop(server);

    // Not trusted: the header is no identity.
    let server = TestServer::start(backend).await;
    let (status, answer) = call(
        server
            .request(Method::POST, &format!("{BASE}/users/carol/pipelines"), None)
            .header("authenticatedUserId", "carol")
            .json(&body),
    )
    .await;
    assert_refused(&(status, answer), 400, "Acumos User Id missing");
    drop(server);

    let server = TestServer::start_with(backend, |config| {
        config.api.trust_gateway_header = Some("x-acumos-user".parse().unwrap());
    })
    .await;
    let (status, created) = call(
        server
            .request(Method::POST, &format!("{BASE}/users/carol/pipelines"), None)
            .header("X-Acumos-User", "carol")
            .json(&body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    // Carol was added on first sight, with a user id.
    assert_eq!(created["owner"]["authenticatedUserId"], "carol");
    assert!(created["owner"]["userId"]["uuid"].as_str().is_some());
    // The gateway's user must still match the path.
    let (status, answer) = call(
        server
            .request(Method::GET, &format!("{BASE}/users/alice/pipelines/"), None)
            .header("X-Acumos-User", "carol"),
    )
    .await;
    assert_refused(&(status, answer), 403, "Permissions denied");
}

// ---------------------------------------------------------------------------------------------
// Launch through the surface: a real JupyterHub, and the fake Zeppelin.

on_both_stores!(
    archive_refuses_launch_and_unarchive_allows_it_through_jupyterhub,
    zeppelin_pipelines_launch_into_one_note,
);

async fn archive_refuses_launch_and_unarchive_allows_it_through_jupyterhub(backend: Backend) {
    let Some(hub) = tokio::task::spawn_blocking(JupyterHub::start)
        .await
        .unwrap()
    else {
        return;
    };
    let grants = Grants::default()
        .with_jupyterhub(hub.url(), hub.token())
        .unwrap();
    let server = TestServer::start_with_grants(backend, grants).await;
    let alice = server.token("alice").await;
    let send = |method: Method, path: String| {
        call(
            server
                .request(
                    method,
                    &format!("{BASE}/users/alice/pipelines{path}"),
                    Some(&alice),
                )
                .json(&pipeline_body("churn", Some("1.0"), Some("Jupyter"))),
        )
    };
    let (status, created) = send(Method::POST, String::new()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["pipelineId"]["uuid"].as_str().unwrap().to_string();

    let (status, _) = send(Method::PUT, format!("/{id}/A")).await;
    assert_eq!(status, 200);
    let refused = send(Method::GET, format!("/{id}/launch")).await;
    assert_refused(&refused, 409, "Cannot launch – pipeline is archived");
    let (status, _) = send(Method::PUT, format!("/{id}/UA")).await;
    assert_eq!(status, 200);

    let (status, launched) = send(Method::GET, format!("/{id}/launch")).await;
    assert_eq!(status, 200, "{launched}\n{}", hub.log());
    let service_url = launched["pipelineId"]["serviceUrl"]
        .as_str()
        .expect("a service URL")
        .to_string();
    assert!(service_url.starts_with(hub.url()), "{service_url}");
    assert_eq!(
        launched["pipelineId"]["repositoryUrl"],
        format!("/pipelines/{id}")
    );

    // The URL answers, and a notebook saved through that server lands in the pipeline's
    // working copy.
    let token = hub.token().to_string();
    let server_root = service_url.split("lab/").next().unwrap().to_string();
    let (status, saved) = tokio::task::spawn_blocking(move || {
        let (status, _) = http("GET", &service_url, Some(&token), None);
        assert_eq!(status, 200, "GET {service_url}");
        let notebook = format!(
            r#"{{"type": "notebook", "content": {}}}"#,
            crate::harness::EMPTY_NOTEBOOK
        );
        http(
            "PUT",
            &format!("{server_root}api/contents/analysis.ipynb"),
            Some(&token),
            Some(&notebook),
        )
    })
    .await
    .unwrap();
    assert!(matches!(status, 200 | 201), "{status} {saved}");
    assert!(server
        .data_dir()
        .join("pipelines")
        .join(&id)
        .join("analysis.ipynb")
        .is_file());

    // The service URL is kept with the pipeline.
    let (_, got) = send(Method::GET, format!("/{id}")).await;
    assert_eq!(
        got["pipelineId"]["serviceUrl"],
        launched["pipelineId"]["serviceUrl"]
    );
}

async fn zeppelin_pipelines_launch_into_one_note(backend: Backend) {
    let zeppelin = FakeZeppelin::start();
    let grants = Grants::default()
        .with_zeppelin(zeppelin.url(), None)
        .unwrap();
    let server = TestServer::start_with_grants(backend, grants).await;
    let alice = server.token("alice").await;
    let (status, created) = call(
        server
            .request(
                Method::POST,
                &format!("{BASE}/users/alice/pipelines"),
                Some(&alice),
            )
            .json(&pipeline_body("scoring", None, Some("Zeppelin"))),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["pipelineId"]["uuid"].as_str().unwrap();
    let launch = || {
        call(server.request(
            Method::GET,
            &format!("{BASE}/users/alice/pipelines/{id}/launch"),
            Some(&alice),
        ))
    };
    let (status, first) = launch().await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = launch().await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        first["pipelineId"]["serviceUrl"],
        second["pipelineId"]["serviceUrl"]
    );
    let url = first["pipelineId"]["serviceUrl"].as_str().unwrap();
    let notes = zeppelin.notes();
    assert_eq!(notes.len(), 1, "one note per pipeline: {notes:?}");
    assert_eq!(
        url,
        format!("{}/#/notebook/{}", zeppelin.url(), notes[0].id)
    );
}
