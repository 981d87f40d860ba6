//! The web console in a real browser: headless Chromium driven over WebDriver (`chromedriver`,
//! one per test) against a real server, one journey per page, each leaving screenshots under
//! `CARGO_TARGET_TMPDIR/console/<backend>/`. Without Chromium or its driver the browser tests
//! are skipped with a note, except under CI (`CI=true`), where that fails them.
//!
//! Beside them, over plain HTTP: one session never shows another account's records, and a form
//! posted without the session's CSRF token is refused and changes nothing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::redirect::Policy;
use serde_json::json;

use crate::gbdx::{
    chatty_workflow, docker_task, events_of, quick_registration, register_chatty, submit,
    wait_for_state,
};
use crate::harness::{call, Backend, TestServer, ADMIN_ACCOUNT};
use crate::mystic::{pipeline_dir, push, push_hostile};
use crate::on_both_stores;

on_both_stores!(
    a_person_signs_in_creates_a_pipeline_sees_it_and_archives_it,
    a_pipeline_is_updated_launched_on_jupyterhub_and_archived,
    a_task_registered_through_the_api_shows_ready_on_tasks,
    a_pushed_pipeline_runs_from_its_form_to_its_output,
    a_workflow_submitted_through_the_api_shows_its_tasks_outputs_and_events,
    a_task_runs_in_a_workflow_from_its_page_and_one_is_cancelled,
    the_admin_uploads_binds_and_rolls_back_a_policy_and_no_one_else_may,
    a_session_never_shows_another_accounts_records,
    a_post_without_the_csrf_token_is_refused_and_changes_nothing,
    a_sign_in_posted_from_another_site_is_refused,
    behind_a_trusted_gateway_its_header_signs_in,
    long_lists_are_paged,
);

const ACUMOS: &str = "/mlWorkbench/v1/pipeline";

// ---------------------------------------------------------------------------------------------
// Sessions over plain HTTP (also what the cross-account matrix signs bob in with).

/// A signed-in console session: its cookie header and its CSRF token.
pub struct ConsoleSession {
    pub cookie: String,
    pub csrf: String,
    /// The `Set-Cookie` the sign-in answered.
    pub set_cookie: String,
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs in with `token` as a browser would (a form post), and reads the CSRF token of a page.
pub async fn sign_in(server: &TestServer, token: &str) -> ConsoleSession {
    let answer = no_redirects()
        .post(format!("{}/console/sign-in", server.base))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status().as_u16(),
        303,
        "sign-in answered {}",
        answer.status()
    );
    let set_cookie = answer
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let (status, page) = console_get(server, &cookie, "/console/pipelines").await;
    assert_eq!(status, 200, "{page}");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field on the page")
        .to_string();
    ConsoleSession {
        cookie,
        csrf,
        set_cookie,
    }
}

/// A page read with a session's cookie (redirects followed): status and HTML.
pub async fn console_get(server: &TestServer, cookie: &str, path: &str) -> (u16, String) {
    let answer = reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// A form posted with a session's cookie, redirects not followed: status, `Location` and HTML.
pub async fn console_post(
    server: &TestServer,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let answer = no_redirects()
        .post(format!("{}{path}", server.base))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    let location = answer
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        answer.status().as_u16(),
        location,
        answer.text().await.unwrap(),
    )
}

/// A form with files posted with a session's cookie (`multipart/form-data`, text fields only
/// here), redirects not followed: status, `Location` and HTML.
pub async fn console_post_multipart(
    server: &TestServer,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let mut multipart = reqwest::multipart::Form::new();
    for (name, value) in form {
        multipart = multipart.text(name.to_string(), value.to_string());
    }
    let answer = no_redirects()
        .post(format!("{}{path}", server.base))
        .header("cookie", cookie)
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    let location = answer
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        answer.status().as_u16(),
        location,
        answer.text().await.unwrap(),
    )
}

/// A console refusal: an HTML page with the message in an alert.
pub fn is_console_refusal(html: &str) -> bool {
    html.contains("<main") && html.contains("role=\"alert\"")
}

// ---------------------------------------------------------------------------------------------
// The browser.

/// Headless Chromium behind its own chromedriver, for one test.
struct Browser {
    client: Client,
    driver: Child,
    /// chromedriver's port, to shut it down when the test ends.
    port: u16,
    shots: PathBuf,
}

fn executable(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

impl Browser {
    /// None (skip, with a note) when Chromium or chromedriver is missing outside CI; under
    /// `CI=true` that is a failure.
    async fn start(backend: Backend) -> Option<Browser> {
        let chromium = executable(&["chromium", "chromium-browser", "google-chrome"]);
        let driver = executable(&["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but chromium or chromedriver is missing: the console's browser tests cannot run (apt-get install chromium chromium-driver)");
            }
            eprintln!("chromium or chromedriver not found: skipping a console browser test");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync"],
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(error) => {
                    assert!(
                        Instant::now() < deadline,
                        "chromedriver never answered: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        let backend = format!("{backend:?}").to_lowercase();
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("console")
            .join(backend);
        std::fs::create_dir_all(&shots).unwrap();
        Some(Browser {
            client,
            driver,
            port,
            shots,
        })
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The text of `css`, read again if the page was replaced under it (a navigation or a
    /// self-refresh between finding the element and reading it).
    async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let read = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await,
                Err(error) => Err(error),
            };
            match read {
                Ok(text) => return text,
                Err(error) if Instant::now() > deadline => {
                    panic!("no `{css}` on the page: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Chooses the file at `path` in the file input `css` (as a person picking it would).
    async fn choose_file(&self, css: &str, path: &std::path::Path) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.send_keys(path.to_str().unwrap()).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` to click: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Waits (reloads included: pages at work refresh themselves) until `css` is on the page.
    async fn wait_for(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.client.find(Locator::Css(css)).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "`{css}` never appeared: {}",
                self.client.source().await.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Checks what a person needs of every page: each control has a label (or an accessible
    /// name), nothing is wider than the window, times are shown in the browser's zone.
    async fn check_made_for_people(&self) {
        let report = self
            .client
            .execute(
                r#"
                const unlabelled = [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
                  .filter(c => !(c.id && document.querySelector(`label[for="${c.id}"]`)) && !c.getAttribute("aria-label"))
                  .map(c => c.outerHTML);
                const nameless = [...document.querySelectorAll("button, a")]
                  .filter(b => !(b.textContent.trim() || b.getAttribute("aria-label")))
                  .map(b => b.outerHTML);
                const utc = [...document.querySelectorAll("time")].filter(t => t.textContent.endsWith("UTC")).length;
                const unreachable = [...document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, summary")]
                  .filter(c => c.tabIndex < 0 && !c.disabled)
                  .map(c => c.outerHTML);
                return { unlabelled, nameless, utc, unreachable,
                         overflow: document.documentElement.scrollWidth - window.innerWidth };
                "#,
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(report["unlabelled"], json!([]), "controls without a label");
        assert_eq!(
            report["nameless"],
            json!([]),
            "buttons or links without a name"
        );
        assert_eq!(
            report["utc"], 0,
            "times left in UTC: the script did not run"
        );
        assert_eq!(
            report["unreachable"],
            json!([]),
            "controls the keyboard cannot reach"
        );
        assert!(
            report["overflow"].as_i64().unwrap() <= 0,
            "the page is wider than the window: {report}"
        );
    }

    /// The page at 400 px wide: still fits, still labelled; a screenshot; back to 1280.
    async fn check_narrow(&self, name: &str) {
        self.client.set_window_size(400, 900).await.unwrap();
        self.client.refresh().await.unwrap();
        self.check_made_for_people().await;
        self.screenshot(name).await;
        self.client.set_window_size(1280, 900).await.unwrap();
        self.client.refresh().await.unwrap();
    }

    async fn sign_in(&self, server: &TestServer, token: &str) {
        self.goto(&format!("{}/", server.base)).await;
        assert_eq!(self.path().await, "/console/sign-in");
        self.fill("#token", token).await;
        self.click("form[action='/console/sign-in'] button").await;
        self.wait_for("h1").await;
        assert_eq!(self.path().await, "/console/pipelines");
    }
}

impl Drop for Browser {
    /// Killing chromedriver alone leaves its Chromium running (a couple of hundred MB each, one
    /// per test, until the machine stops): ask chromedriver to quit its browser and itself
    /// (`GET /shutdown`), then kill what is still there.
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = stream.write_all(
                b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.driver.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Journeys.

async fn a_person_signs_in_creates_a_pipeline_sees_it_and_archives_it(backend: Backend) {
    let Some(browser) = Browser::start(backend).await else {
        return;
    };
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;

    // `/` opens the console: signing in first. A token that is no one's is refused beside
    // the field.
    browser.goto(&format!("{}/", server.base)).await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.fill("#token", "pw_0000_nothing").await;
    browser
        .click("form[action='/console/sign-in'] button")
        .await;
    assert!(
        browser.text("#token-error").await.contains("not valid"),
        "the refusal is beside the token field"
    );
    browser.screenshot("sign-in").await;
    browser.sign_in(&server, &alice).await;
    assert!(browser
        .text(".empty")
        .await
        .contains("You have no pipelines yet"));

    // A pipeline without a name: the seed's message beside the name.
    browser.click("#create button[type=submit]").await;
    browser.wait_for("#name-error").await;
    assert_eq!(browser.text("#name-error").await, "Pipeline Name missing");
    // A bad version: the seed's message beside the version.
    browser.fill("#name", "forecast").await;
    browser.fill("#version", "not a version!").await;
    browser.click("#type option[value='jupyter']").await;
    browser.click("#create button[type=submit]").await;
    browser.wait_for("#version-error").await;
    assert_eq!(
        browser.text("#version-error").await,
        "Invalid Pipeline version"
    );
    assert_eq!(
        browser
            .client
            .find(Locator::Css("#name"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("forecast"),
        "what was typed is kept"
    );
    browser.fill("#version", "1.0.0").await;
    browser.fill("#description", "Sales by week").await;
    browser.click("#create button[type=submit]").await;
    let row = "tr[data-pipeline='forecast']";
    browser.wait_for(row).await;
    assert_eq!(browser.text(&format!("{row} .badge")).await, "active");
    browser.check_made_for_people().await;
    browser.screenshot("pipelines").await;

    // The console called the core: the Acumos surface sees the same record.
    let (status, list) = server
        .get(&format!("{ACUMOS}/users/alice/pipelines"), &alice)
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let record = &list[0];
    assert_eq!(record["pipelineId"]["name"], "forecast", "{record}");

    // Archive it: the row says so, and so does the API.
    browser
        .click(&format!("{row} form[action$='/archive'] button"))
        .await;
    browser
        .wait_for(&format!("{row} .badge.state-archived"))
        .await;
    assert_eq!(
        browser
            .text(&format!("{row} form[action$='/archive'] button"))
            .await,
        "Unarchive"
    );
    let (_, list) = server
        .get(&format!("{ACUMOS}/users/alice/pipelines"), &alice)
        .await;
    assert_eq!(list[0]["artifactStatus"]["status"], "ARCHIVED", "{list}");
    browser.screenshot("pipelines-archived").await;
    browser.check_narrow("pipelines-narrow").await;

    // Keyboard: the first Tab reaches the skip link, which leads to the content.
    let focused = browser
        .client
        .execute(
            "document.activeElement.blur(); return document.querySelector('a.skip').tabIndex;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(focused, 0, "the skip link is in the tab order");

    // Signing out ends the session: the pages ask to sign in again.
    browser.click("form.signout button").await;
    browser.wait_for("#token").await;
    browser
        .goto(&format!("{}/console/pipelines", server.base))
        .await;
    assert_eq!(browser.path().await, "/console/sign-in");
}

async fn a_pipeline_is_updated_launched_on_jupyterhub_and_archived(backend: Backend) {
    let Some(hub) = tokio::task::spawn_blocking(crate::peers::JupyterHub::start)
        .await
        .unwrap()
    else {
        return;
    };
    let Some(browser) = Browser::start(backend).await else {
        return;
    };
    let grants = pipewright::plugins::Grants::default()
        .with_jupyterhub(hub.url(), hub.token())
        .unwrap();
    let server = TestServer::start_with_grants(backend, grants).await;
    let alice = server.token("alice").await;
    browser.sign_in(&server, &alice).await;
    browser.fill("#name", "churn").await;
    browser.fill("#version", "1.0").await;
    browser.click("#type option[value='jupyter']").await;
    browser.click("#create button[type=submit]").await;
    let row = "tr[data-pipeline='churn']";
    browser.wait_for(row).await;
    let (_, list) = server
        .get(&format!("{ACUMOS}/users/alice/pipelines"), &alice)
        .await;
    let id = list[0]["pipelineId"]["uuid"].as_str().unwrap().to_string();

    // Its page: never renamed yet. An update the seed refuses is said beside its field.
    browser
        .click(&format!("{row} td[data-label='Name'] a"))
        .await;
    browser.wait_for("#history .history-empty").await;
    assert_eq!(browser.path().await, format!("/console/pipelines/{id}"));
    browser.fill("#version", "not a version!").await;
    browser.click("#update button[type=submit]").await;
    browser.wait_for("#version-error").await;
    assert_eq!(
        browser.text("#version-error").await,
        "Invalid Pipeline version"
    );
    browser.fill("#name", "churn_weekly").await;
    browser.fill("#version", "1.1").await;
    browser.fill("#description", "Churn, week by week").await;
    browser.click("#update button[type=submit]").await;
    browser.wait_for("#history tr.rename").await;
    assert_eq!(browser.text("h1").await, "churn_weekly 1.1");
    assert_eq!(
        browser
            .text("#history tr.rename td[data-label='Was named']")
            .await,
        "churn"
    );
    assert_eq!(
        browser
            .text("#history tr.rename td[data-label='Version']")
            .await,
        "1.0"
    );
    assert_eq!(
        browser
            .text("#history tr.rename td[data-label='Changed by']")
            .await,
        "alice"
    );
    let (_, record) = server
        .get(&format!("{ACUMOS}/users/alice/pipelines/{id}"), &alice)
        .await;
    assert_eq!(record["pipelineId"]["name"], "churn_weekly", "{record}");
    assert_eq!(record["description"], "Churn, week by week", "{record}");
    browser.check_made_for_people().await;
    browser.screenshot("pipeline").await;
    browser.check_narrow("pipeline-narrow").await;

    // Launch opens a tab that says the notebook server is starting, then the server itself.
    browser.click("main a[href='/console/pipelines']").await;
    let row = "tr[data-pipeline='churn_weekly']";
    browser.wait_for(row).await;
    let home = browser.client.window().await.unwrap();
    browser.click(&format!("{row} a[href$='/launch']")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let tab = loop {
        let windows = browser.client.windows().await.unwrap();
        if let Some(tab) = windows.into_iter().find(|w| *w != home) {
            break tab;
        }
        assert!(Instant::now() < deadline, "Launch opened no tab");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    browser.client.switch_to_window(tab).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut progress_seen = false;
    loop {
        let url = browser.client.current_url().await.unwrap().to_string();
        if url.starts_with(hub.url()) {
            break;
        }
        if !progress_seen {
            if let Ok(status) = browser
                .client
                .find(Locator::Css("#launch-progress [role=status]"))
                .await
            {
                if let Ok(text) = status.text().await {
                    progress_seen =
                        text.contains("Starting the notebook server for churn_weekly 1.1");
                    if progress_seen {
                        browser.screenshot("launch").await;
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the launch never reached the hub (at {url}): {}",
            hub.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        progress_seen,
        "the launch tab never said the server was starting"
    );
    browser.client.close_window().await.unwrap();
    browser.client.switch_to_window(home).await.unwrap();
    let (_, record) = server
        .get(&format!("{ACUMOS}/users/alice/pipelines/{id}"), &alice)
        .await;
    let service_url = record["pipelineId"]["serviceUrl"]
        .as_str()
        .expect("launched")
        .to_string();
    assert!(service_url.starts_with(hub.url()), "{service_url}");

    // Archived: no Launch any more, and the API says so.
    browser.client.refresh().await.unwrap();
    browser
        .wait_for(&format!("{row} a[href='{service_url}']"))
        .await;
    browser
        .click(&format!("{row} form[action$='/archive'] button"))
        .await;
    browser
        .wait_for(&format!("{row} .badge.state-archived"))
        .await;
    assert!(browser
        .client
        .find(Locator::Css(&format!("{row} a[href$='/launch']")))
        .await
        .is_err());
    let (_, record) = server
        .get(&format!("{ACUMOS}/users/alice/pipelines/{id}"), &alice)
        .await;
    assert_eq!(record["artifactStatus"]["status"], "ARCHIVED", "{record}");
    // Its launch page, opened anyway: the refusal, in the seed's words, where progress was.
    browser
        .goto(&format!("{}/console/pipelines/{id}/launch", server.base))
        .await;
    browser.wait_for("#launch-error").await;
    assert_eq!(
        browser.text("#launch-error").await,
        "Cannot launch – pipeline is archived"
    );
    browser.check_made_for_people().await;
}

async fn a_task_registered_through_the_api_shows_ready_on_tasks(backend: Backend) {
    let Some(browser) = Browser::start(backend).await else {
        return;
    };
    let server = TestServer::start_with(backend, |config| {
        config.registration = quick_registration();
    })
    .await;
    let alice = server.token("alice").await;
    browser.sign_in(&server, &alice).await;
    browser.click("nav a[href='/console/tasks']").await;
    browser.wait_for(".empty").await;
    assert!(browser
        .text(".empty")
        .await
        .contains("No tasks are registered yet"));

    let (status, task) = server
        .post(
            "/workflows/v1/tasks",
            &alice,
            docker_task("resize", "1.0.0"),
        )
        .await;
    assert_eq!(status, 200, "{task}");
    browser.client.refresh().await.unwrap();
    // Registering, then ready: the page refreshes itself meanwhile.
    browser
        .wait_for("[data-task='resize'] tr[data-version='1.0.0'] .badge.state-ready")
        .await;
    wait_for_state(&server, &alice, "resize", "1.0.0", "ready").await;
    assert_eq!(
        browser
            .text("[data-task='resize'] tr[data-version='1.0.0'] td[data-label='Attempts']")
            .await,
        "1"
    );
    browser.check_made_for_people().await;
    browser.screenshot("tasks").await;
    browser.check_narrow("tasks-narrow").await;
}

/// The upload quota of the runs journey's server: a file one byte larger is refused.
const UPLOAD_QUOTA_BYTES: u64 = 64;

async fn a_pushed_pipeline_runs_from_its_form_to_its_output(backend: Backend) {
    let Some(browser) = Browser::start(backend).await else {
        return;
    };
    let server = TestServer::start_with(backend, |config| {
        config.uploads.max_bytes = UPLOAD_QUOTA_BYTES;
    })
    .await;
    let alice = server.token("alice").await;
    browser.sign_in(&server, &alice).await;
    browser.click("nav a[href='/console/runs']").await;
    browser.wait_for(".empty").await;

    let dir = pipeline_dir(
        "hello",
        "hello",
        "0.1.0",
        json!([{"name": "text", "type": "string"}]),
        json!([{"name": "greeting", "type": "string"}]),
        &[],
    );
    let (ok, pointer, stderr) = push(dir.path(), &server, &alice);
    assert!(ok, "{stderr}");
    assert_eq!(pointer, "alice/hello:0.1.0");
    browser.client.refresh().await.unwrap();
    let row = "tr[data-pipeline='alice/hello']";
    browser.wait_for(row).await;
    assert!(browser.text(row).await.contains("text: string"));
    browser.click(&format!("{row} a.button")).await;
    browser.wait_for("#input-0").await;
    assert_eq!(browser.text("label[for='input-0']").await, "text (string)");
    browser.fill("#input-0", "console").await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for("#run-state .badge.state-completed").await;
    assert_eq!(browser.text("td.output-value").await, "Hello, console!");
    assert_eq!(
        browser.text("#run-log .log-empty").await,
        "This run printed nothing."
    );
    browser.check_made_for_people().await;
    browser.screenshot("run").await;

    // The run is the API's too.
    let run_id = browser.path().await.rsplit('/').next().unwrap().to_string();
    let (status, run) = server.get(&format!("/v4/runs/{run_id}"), &alice).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["outputs"][0]["value"], "Hello, console!", "{run}");
    assert_eq!(
        run["inputs"],
        json!([{"type": "string", "value": "console"}])
    );

    browser.click("nav a[href='/console/runs']").await;
    browser.wait_for(&format!("tr[data-run='{run_id}']")).await;
    browser.check_made_for_people().await;
    browser.screenshot("runs").await;
    browser.check_narrow("runs-narrow").await;

    // A run that prints: its page shows what it printed, each stream apart, as Mystic's log.
    push_hostile(&server, &alice).await;
    browser.client.refresh().await.unwrap();
    let row = "tr[data-pipeline='alice/hostile']";
    browser.wait_for(row).await;
    browser.click(&format!("{row} a.button")).await;
    browser.wait_for("#input-0").await;
    browser.fill("#input-0", "say:hello <console>").await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for("#run-state .badge.state-completed").await;
    assert_eq!(
        browser.text("#run-log pre.log-stdout").await,
        "hello <console>"
    );
    assert_eq!(
        browser.text("#run-log pre.log-stderr").await,
        "hello <console> (stderr)"
    );
    let said_id = browser.path().await.rsplit('/').next().unwrap().to_string();
    let (_, logs) = server.get(&format!("/v4/logs/run/{said_id}"), &alice).await;
    assert_eq!(
        logs["log_entries"],
        json!(["hello <console>", "hello <console> (stderr)"])
    );
    browser.check_made_for_people().await;
    browser.screenshot("run-log").await;

    // A file input from the form, its output downloaded: the `file-io` example.
    let dir = pipeline_dir(
        "file-io",
        "shout",
        "1.0.0",
        json!([{"name": "document", "type": "file"}]),
        json!([{"name": "result", "type": "file"}, {"name": "lines", "type": "integer"}]),
        &[],
    );
    let (ok, _, stderr) = push(dir.path(), &server, &alice);
    assert!(ok, "{stderr}");
    browser.click("nav a[href='/console/runs']").await;
    let row = "tr[data-pipeline='alice/shout']";
    browser.wait_for(row).await;
    assert!(browser.text(row).await.contains("document: file"));
    browser.click(&format!("{row} a.button")).await;
    browser.wait_for("#input-0[type=file]").await;
    assert_eq!(
        browser.text("label[for='input-0']").await,
        "document (file)"
    );
    assert!(browser.text("#input-0-hint").await.contains("64 MiB"));
    // No file chosen: said beside the field, nothing submitted.
    browser.click("main form button[type=submit]").await;
    browser.wait_for("#input-0-error").await;
    assert_eq!(browser.text("#input-0-error").await, "Choose a file.");
    // A file past the account's upload quota: the quota's words beside the field, nothing kept.
    let files = tempfile::tempdir().unwrap();
    let big = files.path().join("big.txt");
    std::fs::write(&big, "x".repeat(UPLOAD_QUOTA_BYTES as usize + 1)).unwrap();
    browser.choose_file("#input-0", &big).await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for("#input-0-error").await;
    assert!(
        browser
            .text("#input-0-error")
            .await
            .starts_with("upload quota exceeded: account alice holds 0 file(s), 0 bytes"),
        "{}",
        browser.text("#input-0-error").await
    );
    assert!(browser
        .text("#input-0-hint")
        .await
        .contains("Choose the file again"));
    browser.check_made_for_people().await;
    browser.screenshot("run-form-file-refused").await;
    let (_, uploads) = server.get("/v3/pipeline_files", &alice).await;
    assert_eq!(uploads, json!([]), "nothing kept of a refused form");
    let doc = files.path().join("doc.txt");
    std::fs::write(&doc, "one\ntwo").unwrap();
    browser.choose_file("#input-0", &doc).await;
    browser.screenshot("run-form-file").await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for("#run-state .badge.state-completed").await;
    let link = "td.output-value a.download";
    browser.wait_for(link).await;
    assert_eq!(browser.text(link).await, "Download result.txt");
    let href = browser
        .client
        .find(Locator::Css(link))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .expect("the link has an href");
    let download = reqwest::get(&href).await.unwrap();
    assert_eq!(download.status(), 200, "{href}");
    assert_eq!(download.text().await.unwrap(), "ONE\nTWO");
    // The run is the API's, its input named as Mystic's client names an upload.
    let run_id = browser.path().await.rsplit('/').next().unwrap().to_string();
    let (_, run) = server.get(&format!("/v4/runs/{run_id}"), &alice).await;
    assert_eq!(run["inputs"][0]["file_name"], "doc.txt", "{run}");
    let (_, uploads) = server.get("/v3/pipeline_files", &alice).await;
    assert_eq!(
        uploads[0]["path"], run["inputs"][0]["file_path"],
        "{uploads}"
    );
    browser.check_made_for_people().await;
    browser.screenshot("run-file").await;
}

async fn a_workflow_submitted_through_the_api_shows_its_tasks_outputs_and_events(backend: Backend) {
    let Some(browser) = Browser::start(backend).await else {
        return;
    };
    let server = TestServer::start_with(backend, |config| {
        config.registration = quick_registration();
    })
    .await;
    let alice = server.token("alice").await;
    register_chatty(&server, &alice, "1.0.0").await;
    browser.sign_in(&server, &alice).await;
    browser.click("nav a[href='/console/tasks']").await;
    browser.wait_for("main a[href='/console/workflows']").await;
    browser.click("main a[href='/console/workflows']").await;
    browser.wait_for(".empty").await;
    assert!(browser.text(".empty").await.contains("No workflows yet"));

    // Two tasks, the second fed by the first, which naps long enough to be seen at work.
    let workflow = chatty_workflow(&[("first", "nap:3000"), ("second", "from:first")]);
    let id = submit(&server, &alice, workflow).await;
    browser.client.refresh().await.unwrap();
    let row = format!("tr[data-workflow='{id}']");
    browser.wait_for(&row).await;
    browser.click(&format!("{row} a")).await;
    browser.wait_for("#workflow-state").await;
    assert_eq!(browser.path().await, format!("/console/workflows/{id}"));
    assert!(
        browser
            .text("p.notice")
            .await
            .contains("the page refreshes until it is finished"),
        "a workflow at work says the page refreshes"
    );
    // It refreshes itself until the workflow is finished.
    browser
        .wait_for("#workflow-state .badge.state-succeeded")
        .await;
    assert!(browser
        .client
        .find(Locator::Css("[data-refresh-seconds]"))
        .await
        .is_err());
    for task in ["first", "second"] {
        let task_row = format!("tr[data-task='{task}']");
        assert_eq!(
            browser.text(&format!("{task_row} .badge")).await,
            "succeeded"
        );
        assert_eq!(
            browser.text(&format!("{task_row} .task-outputs")).await,
            "result = napped 3000 ms"
        );
    }
    assert_eq!(
        browser
            .text("tr[data-task='second'] td[data-label='Inputs']")
            .await,
        "mode ← first:result"
    );
    // The events are the API's, in its order.
    let events: Vec<(String, String)> = events_of(&server, &alice, &id)
        .await
        .iter()
        .map(|e| {
            (
                e["task"].as_str().unwrap().to_string(),
                e["event"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut shown = Vec::new();
    for event in browser
        .client
        .find_all(Locator::Css("#workflow-events tr.event"))
        .await
        .unwrap()
    {
        let mut cells = Vec::new();
        for label in ["Task", "Event"] {
            let cell = event
                .find(Locator::Css(&format!("td[data-label='{label}']")))
                .await
                .unwrap();
            cells.push(cell.text().await.unwrap());
        }
        shown.push((cells[0].clone(), cells[1].clone()));
    }
    assert!(events.len() >= 6, "{events:?}");
    assert_eq!(shown, events);
    browser.check_made_for_people().await;
    browser.screenshot("workflow").await;
    browser.check_narrow("workflow-narrow").await;

    browser.click("main a[href='/console/workflows']").await;
    browser
        .wait_for(&format!("{row} .badge.state-succeeded"))
        .await;
    browser.check_made_for_people().await;
    browser.screenshot("workflows").await;

    // Another account's session: not in its list, and its page is not found.
    let bob = server.token("bob").await;
    let session = sign_in(&server, &bob).await;
    let (status, page) = console_get(&server, &session.cookie, "/console/workflows").await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains(&id), "{page}");
    let (status, page) = console_get(
        &server,
        &session.cookie,
        &format!("/console/workflows/{id}"),
    )
    .await;
    assert_eq!(status, 404, "{page}");
    assert!(is_console_refusal(&page), "{page}");
    assert!(page.contains("not found"), "{page}");
}

async fn a_task_runs_in_a_workflow_from_its_page_and_one_is_cancelled(backend: Backend) {
    let Some(browser) = Browser::start(backend).await else {
        return;
    };
    // Fetching from loopback: a version whose component is held back stays registering.
    let server = crate::gbdx::start_fetching_from_loopback(backend).await;
    let alice = server.token("alice").await;
    register_chatty(&server, &alice, "1.0.0").await;
    browser.sign_in(&server, &alice).await;
    browser.click("nav a[href='/console/tasks']").await;
    browser.wait_for("a[href='/console/tasks/chatty']").await;
    browser.click("a[href='/console/tasks/chatty']").await;

    // The version's definition, as GBDX answers it.
    browser.wait_for("tr.definition details summary").await;
    browser.click("tr.definition details summary").await;
    let shown: serde_json::Value = serde_json::from_str(
        &browser
            .text("tr.definition[data-version='1.0.0'] pre")
            .await,
    )
    .unwrap();
    let (_, task) = server.get("/workflows/v1/tasks/chatty:1.0.0", &alice).await;
    assert_eq!(shown["inputPortDescriptors"], task["inputPortDescriptors"]);
    assert_eq!(
        shown["outputPortDescriptors"],
        json!([{"name": "result", "type": "string"}])
    );
    assert_eq!(browser.text("label[for='port-0']").await, "mode (string)");
    browser.check_made_for_people().await;
    browser.screenshot("task").await;
    browser.check_narrow("task-narrow").await;

    // Submitted from the form: the task's output and what it wrote, as GBDX's routes say.
    browser.fill("#workflow-name", "said-from-console").await;
    browser.fill("#port-0", "say:hello <gbdx>").await;
    browser.click("#run-task button[type=submit]").await;
    browser
        .wait_for("#workflow-state .badge.state-succeeded")
        .await;
    let id = browser.path().await.rsplit('/').next().unwrap().to_string();
    assert_eq!(
        browser
            .text("section.task-streams[data-task='chatty'] pre.log-stdout")
            .await,
        "hello <gbdx>"
    );
    assert_eq!(
        browser
            .text("section.task-streams[data-task='chatty'] pre.log-stderr")
            .await,
        "hello <gbdx> (stderr)"
    );
    let (status, workflow) = server
        .get(&format!("/workflows/v1/workflows/{id}"), &alice)
        .await;
    assert_eq!(status, 200, "{workflow}");
    assert_eq!(workflow["name"], "said-from-console");
    assert_eq!(
        workflow["tasks"][0]["inputs"],
        json!([{"name": "mode", "value": "say:hello <gbdx>"}])
    );
    let task_id = workflow["tasks"][0]["id"].as_str().unwrap();
    let stdout = server
        .request(
            reqwest::Method::GET,
            &format!("/workflows/v1/workflows/{id}/tasks/{task_id}/stdout"),
            Some(&alice),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(stdout.trim_end(), "hello <gbdx>");
    browser.check_made_for_people().await;
    browser.screenshot("workflow-streams").await;

    // A version still registering cannot be pinned: GBDX's words, nothing submitted.
    let source = crate::gbdx::HeldSource::start(crate::gbdx::component_bytes());
    let mut slow = crate::gbdx::wasm_task("chatty", "2.0.0", &source.url());
    slow["inputPortDescriptors"] = json!([{"name": "mode", "type": "string"}]);
    let (status, body) = server.post("/workflows/v1/tasks", &alice, slow).await;
    assert_eq!(status, 200, "{body}");
    browser
        .goto(&format!("{}/console/tasks/chatty", server.base))
        .await;
    assert_eq!(
        browser.text("#version option[value='2.0.0']").await,
        "2.0.0 (registering)"
    );
    browser.click("#version option[value='2.0.0']").await;
    browser.fill("#port-0", "say:never").await;
    browser.click("#run-task button[type=submit]").await;
    browser.wait_for("#workflow-error").await;
    assert_eq!(
        browser.text("#workflow-error").await,
        "chatty has been submitted for registration"
    );
    assert_eq!(
        browser
            .client
            .find(Locator::Css("#port-0"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("say:never"),
        "what was typed is kept"
    );
    let (_, listed) = server.get("/workflows/v1/workflows", &alice).await;
    assert_eq!(
        listed["Workflows"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );

    // A workflow at work is cancelled from its page: GBDX's word for it, `canceled`.
    browser
        .goto(&format!("{}/console/tasks/chatty", server.base))
        .await;
    browser.wait_for("#port-0").await;
    browser.click("#version option[value='1.0.0']").await;
    browser.fill("#port-0", "nap:30000").await;
    browser.click("#run-task button[type=submit]").await;
    browser
        .wait_for("#workflow-state .badge.state-running")
        .await;
    browser
        .client
        .execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    browser.click("form[action$='/cancel'] button").await;
    browser
        .wait_for("#workflow-state .badge.state-canceled")
        .await;
    assert_eq!(browser.text("#workflow-state").await, "canceled");
    let cancelled = browser.path().await.rsplit('/').next().unwrap().to_string();
    let (_, workflow) = server
        .get(&format!("/workflows/v1/workflows/{cancelled}"), &alice)
        .await;
    assert_eq!(
        workflow["state"],
        json!({"state": "complete", "event": "canceled"})
    );
    let events: Vec<String> = events_of(&server, &alice, &cancelled)
        .await
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    let mut shown = Vec::new();
    for cell in browser
        .client
        .find_all(Locator::Css("#workflow-events td[data-label='Event']"))
        .await
        .unwrap()
    {
        shown.push(cell.text().await.unwrap());
    }
    assert_eq!(shown, events);
    assert!(shown.contains(&"canceled".to_string()), "{shown:?}");
    assert!(browser
        .client
        .find(Locator::Css("form[action$='/cancel']"))
        .await
        .is_err());
    browser.check_made_for_people().await;
    browser.screenshot("workflow-canceled").await;
    browser.check_narrow("workflow-canceled-narrow").await;
}

async fn the_admin_uploads_binds_and_rolls_back_a_policy_and_no_one_else_may(backend: Backend) {
    let Some(browser) = Browser::start(backend).await else {
        return;
    };
    let server = TestServer::start_with_admin(backend).await;
    let operator = server.token_in("olga", Some(ADMIN_ACCOUNT)).await;
    let alice = server.token("alice").await;

    browser.sign_in(&server, &alice).await;
    assert!(
        browser
            .client
            .find(Locator::Css("nav a[href='/console/plugins']"))
            .await
            .is_err(),
        "no plugins link for a non-admin"
    );
    browser
        .goto(&format!("{}/console/plugins", server.base))
        .await;
    assert!(browser.text("p.error").await.contains("admin account"));
    browser.click("a[href='/console/sign-in']").await;
    // Still signed in: sign-in sends the session home; sign out to change user.
    browser.click("form.signout button").await;
    browser.wait_for("#token").await;

    browser.sign_in(&server, &operator).await;
    browser.click("nav a[href='/console/plugins']").await;
    let semver = "section[data-plugin='policy-semver']";
    browser.wait_for(semver).await;
    assert_eq!(browser.text(&format!("{semver} .badge")).await, "active");
    assert!(browser
        .text(&format!("{semver} td[data-label='Digest']"))
        .await
        .starts_with("sha256:"));

    // Upload a policy: a missing name is said beside the name; then added, not yet active.
    let files = tempfile::tempdir().unwrap();
    let release_only = files.path().join("release_only.wasm");
    std::fs::write(&release_only, crate::guests::read("release_only.wasm")).unwrap();
    browser.fill("#plugin-version", "1.0.0").await;
    browser.choose_file("#component", &release_only).await;
    browser.click("#upload button[type=submit]").await;
    browser.wait_for("#plugin-name-error").await;
    assert_eq!(
        browser.text("#plugin-name-error").await,
        "plugin name `` must be lowercase letters, digits and `-`, starting with a letter"
    );
    assert_eq!(
        browser
            .client
            .find(Locator::Css("#plugin-version"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("1.0.0"),
        "what was typed is kept"
    );
    // No file chosen: said beside the file field.
    browser.fill("#plugin-name", "release-only").await;
    browser.click("#upload button[type=submit]").await;
    browser.wait_for("#component-error").await;
    assert_eq!(
        browser.text("#component-error").await,
        "Choose the component file (.wasm)."
    );
    browser.fill("#plugin-name", "release-only").await;
    browser.choose_file("#component", &release_only).await;
    browser.click("#upload button[type=submit]").await;
    let added = "section[data-plugin='release-only'] tr[data-version='1.0.0']";
    browser.wait_for(added).await;
    assert_eq!(browser.text(&format!("{added} .badge")).await, "inactive");
    // An admin's activation succeeds: the page and the API say so.
    browser
        .click(&format!("{added} form[action$='/activate'] button"))
        .await;
    browser
        .wait_for(&format!("{added} .badge.state-active"))
        .await;
    let (_, listed) = server.get("/v1/plugins/release-only", &alice).await;
    assert_eq!(listed["active_version"], "1.0.0", "{listed}");

    // Before any binding of its own, Jupyter pipelines need no version.
    let (status, record) = server
        .post(
            &format!("{ACUMOS}/users/alice/pipelines"),
            &alice,
            json!({"pipelineId": {"name": "draft"}, "pipelineType": "Jupyter"}),
        )
        .await;
    assert_eq!(status, 201, "{record}");

    // Bind it: a scope that is none is refused beside the scope, nothing bound.
    browser.fill("#scope-new", "nowhere:at-all").await;
    browser
        .click("#chain-new-0 option[value='release-only']")
        .await;
    browser.click("#new-chain button[type=submit]").await;
    browser.wait_for("#scope-new-error").await;
    assert_eq!(
        browser.text("#scope-new-error").await,
        "`nowhere:at-all` is not a scope: global, type:<id>, namespace:<name> or surface:<name>"
    );
    let (_, bindings) = server.get("/v1/policy-bindings", &operator).await;
    assert!(!bindings.to_string().contains("nowhere"), "{bindings}");
    // A chain of two, in order, for Jupyter pipelines.
    browser.fill("#scope-new", "type:jupyter").await;
    browser
        .click("#chain-new-0 option[value='policy-acumos']")
        .await;
    browser
        .click("#chain-new-1 option[value='release-only']")
        .await;
    browser.click("#new-chain button[type=submit]").await;
    let chain = "section[data-scope='type:jupyter']";
    browser.wait_for(chain).await;
    let bound = |bindings: &serde_json::Value| {
        bindings
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["scope"] == "type:jupyter")
            .map(|b| b["chain"].clone())
    };
    let (_, bindings) = server.get("/v1/policy-bindings", &operator).await;
    assert_eq!(
        bound(&bindings),
        Some(json!(["policy-acumos", "release-only"])),
        "{bindings}"
    );
    // Swapped in one change: the order reversed by one save.
    browser
        .click(&format!(
            "{chain} #chain-type-jupyter-0 option[value='release-only']"
        ))
        .await;
    browser
        .click(&format!(
            "{chain} #chain-type-jupyter-1 option[value='policy-acumos']"
        ))
        .await;
    browser.click(&format!("{chain} button[type=submit]")).await;
    // The section was there before the save too: wait for the store to say the save is done.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, bindings) = server.get("/v1/policy-bindings", &operator).await;
        if bound(&bindings) == Some(json!(["release-only", "policy-acumos"])) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the order was not swapped: {bindings}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser.wait_for(chain).await;
    let selected = browser
        .client
        .execute(
            "return [0, 1, 2].map(i => document.querySelector(`#chain-type-jupyter-${i}`).value);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(selected, json!(["release-only", "policy-acumos", ""]));
    assert!(browser
        .text(&format!("{added} td[data-label='Bound in']"))
        .await
        .contains("type:jupyter"));
    browser.check_made_for_people().await;
    browser.screenshot("plugins").await;
    browser.check_narrow("plugins-narrow").await;

    // A roll back succeeds: a second version made active, then rolled back from.
    let described = files.path().join("described_policy.wasm");
    std::fs::write(&described, crate::guests::read("described_policy.wasm")).unwrap();
    browser.fill("#plugin-name", "release-only").await;
    browser.fill("#plugin-version", "2.0.0").await;
    browser.choose_file("#component", &described).await;
    browser.click("#activate").await;
    browser.click("#upload button[type=submit]").await;
    let second = "section[data-plugin='release-only'] tr[data-version='2.0.0']";
    browser
        .wait_for(&format!("{second} .badge.state-active"))
        .await;
    browser
        .click("section[data-plugin='release-only'] form[action$='/rollback'] button")
        .await;
    browser
        .wait_for(&format!("{added} .badge.state-active"))
        .await;
    assert_eq!(browser.text(&format!("{second} .badge")).await, "inactive");
    let (_, listed) = server.get("/v1/plugins/release-only", &alice).await;
    assert_eq!(listed["active_version"], "1.0.0", "{listed}");

    // Alice's registration refused by the policy, in the seed's words beside the field.
    browser.click("form.signout button").await;
    browser.wait_for("#token").await;
    browser.sign_in(&server, &alice).await;
    browser.fill("#name", "draft2").await;
    browser.click("#type option[value='jupyter']").await;
    browser.click("#create button[type=submit]").await;
    browser.wait_for("#version-error").await;
    assert_eq!(
        browser.text("#version-error").await,
        "Invalid Pipeline version"
    );
    let (_, list) = server
        .get(&format!("{ACUMOS}/users/alice/pipelines"), &alice)
        .await;
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(1),
        "nothing made: {list}"
    );
    browser.screenshot("pipelines-refused-by-policy").await;
    // A release passes, and its row names the policies that approved it, in the chain's order.
    browser.fill("#version", "1.0").await;
    browser.click("#create button[type=submit]").await;
    let row = "tr[data-pipeline='draft2']";
    browser.wait_for(row).await;
    let approved = browser.text(&format!("{row} [data-approved-by]")).await;
    assert!(
        approved.starts_with("approved by release-only@1.0.0, policy-acumos@"),
        "{approved}"
    );
}

// ---------------------------------------------------------------------------------------------
// Isolation and CSRF, over HTTP.

async fn a_session_never_shows_another_accounts_records(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let bob = server.token("bob").await;
    let (status, record) = server
        .post(
            &format!("{ACUMOS}/users/alice/pipelines"),
            &alice,
            json!({"pipelineId": {"name": "alices_forecast", "versionId": {"label": "1"}},
                   "pipelineType": "Jupyter"}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    let record = record["pipelineId"]["uuid"].as_str().unwrap().to_string();
    let dir = pipeline_dir(
        "hello",
        "alices-hello",
        "0.1.0",
        json!([{"name": "text", "type": "string"}]),
        json!([{"name": "greeting", "type": "string"}]),
        &[],
    );
    let (ok, _, stderr) = push(dir.path(), &server, &alice);
    assert!(ok, "{stderr}");
    let (_, run) = server
        .post(
            "/v4/runs",
            &alice,
            json!({"pipeline": "alice/alices-hello", "inputs": [{"type": "string", "value": "secret words"}]}),
        )
        .await;
    let run = run["id"].as_str().unwrap().to_string();

    let alices = sign_in(&server, &alice).await;
    let bobs = sign_in(&server, &bob).await;
    let markers = [
        "alices_forecast",
        "alices-hello",
        "secret words",
        &record,
        &run,
    ];
    for path in ["/console/pipelines", "/console/runs", "/console/tasks"] {
        let (status, page) = console_get(&server, &bobs.cookie, path).await;
        assert_eq!(status, 200, "{path}");
        for marker in markers {
            assert!(
                !page.contains(marker),
                "bob's {path} shows alice's `{marker}`"
            );
        }
        // Alice's own session shows hers (the markers are really there to be found).
        let (_, page) = console_get(&server, &alices.cookie, path).await;
        if path != "/console/tasks" {
            assert!(page.contains(if path == "/console/runs" {
                "alices-hello"
            } else {
                "alices_forecast"
            }));
        }
    }
    for path in [
        format!("/console/runs/{run}"),
        "/console/runs/new/alice/alices-hello".to_string(),
    ] {
        let (status, page) = console_get(&server, &bobs.cookie, &path).await;
        assert_eq!(status, 404, "{path}: {page}");
        assert!(!page.contains("secret words"));
    }
    // Bob, with his own valid CSRF token, on alice's record: the seed's refusal, no change.
    let (status, _, page) = console_post(
        &server,
        &bobs.cookie,
        &format!("/console/pipelines/{record}/archive"),
        &[("csrf", &bobs.csrf), ("archived", "true")],
    )
    .await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("Permission denied"), "{page}");
    let (status, _, _) = console_post(
        &server,
        &bobs.cookie,
        &format!("/console/pipelines/{record}/delete"),
        &[("csrf", &bobs.csrf)],
    )
    .await;
    assert_eq!(status, 403);
    let (_, list) = server
        .get(&format!("{ACUMOS}/users/alice/pipelines"), &alice)
        .await;
    assert_eq!(list[0]["artifactStatus"]["status"], "ACTIVE", "{list}");
}

async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let bob = server.token("bob").await;
    let session = sign_in(&server, &alice).await;
    let cookie = session.set_cookie.to_ascii_lowercase();
    assert!(cookie.contains("httponly"), "{cookie}");
    assert!(cookie.contains("samesite=strict"), "{cookie}");
    let bobs = sign_in(&server, &bob).await;

    // No token, an empty one, a wrong one, another session's: refused alike, nothing made.
    let attempts = [
        create_form(None),
        create_form(Some("")),
        create_form(Some("0123456789abcdef")),
        create_form(Some(&bobs.csrf)),
    ];
    for form in &attempts {
        let (status, _, page) =
            console_post(&server, &session.cookie, "/console/pipelines", form).await;
        assert_eq!(status, 403, "{form:?}: {page}");
        assert!(is_console_refusal(&page), "{page}");
        assert!(page.contains("nothing was changed"), "{page}");
    }
    let (_, list) = server
        .get(&format!("{ACUMOS}/users/alice/pipelines"), &alice)
        .await;
    assert_eq!(list, json!([]), "nothing was created");

    // With the token it works (the refusals above were the token's doing).
    let form = create_form(Some(&session.csrf));
    let (status, location, page) =
        console_post(&server, &session.cookie, "/console/pipelines", &form).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/console/pipelines"),
        "{page}"
    );
    let (_, list) = server
        .get(&format!("{ACUMOS}/users/alice/pipelines"), &alice)
        .await;
    let id = list[0]["pipelineId"]["uuid"].as_str().unwrap().to_string();

    // Archive and delete without the token: refused, the record as it was.
    for action in ["archive", "delete"] {
        let (status, _, _) = console_post(
            &server,
            &session.cookie,
            &format!("/console/pipelines/{id}/{action}"),
            &[("archived", "true")],
        )
        .await;
        assert_eq!(status, 403, "{action}");
    }
    let (_, after) = server
        .get(&format!("{ACUMOS}/users/alice/pipelines"), &alice)
        .await;
    assert_eq!(after[0]["artifactStatus"]["status"], "ACTIVE", "{after}");

    // The run form (a form with files) is held to the token alike: no run is made.
    let dir = pipeline_dir(
        "hello",
        "hello",
        "0.1.0",
        json!([{"name": "text", "type": "string"}]),
        json!([{"name": "greeting", "type": "string"}]),
        &[],
    );
    let (ok, _, stderr) = push(dir.path(), &server, &alice);
    assert!(ok, "{stderr}");
    for csrf in [None, Some(bobs.csrf.as_str())] {
        let mut form = vec![("input-0", "planted")];
        form.extend(csrf.map(|csrf| ("csrf", csrf)));
        let (status, _, page) = console_post_multipart(
            &server,
            &session.cookie,
            "/console/runs/new/alice/hello",
            &form,
        )
        .await;
        assert_eq!(status, 403, "{page}");
        assert!(page.contains("nothing was changed"), "{page}");
    }
    let (_, runs) = console_get(&server, &session.cookie, "/console/runs").await;
    assert!(runs.contains("No runs yet."), "{runs}");
    let (status, location, page) = console_post_multipart(
        &server,
        &session.cookie,
        "/console/runs/new/alice/hello",
        &[("csrf", &session.csrf), ("input-0", "token")],
    )
    .await;
    assert_eq!(status, 303, "{page}");
    assert!(location.starts_with("/console/runs/"), "{location}");

    // Signing out needs the token too; once signed out, the cookie opens nothing.
    let (status, _, _) = console_post(&server, &session.cookie, "/console/sign-out", &[]).await;
    assert_eq!(status, 403);
    let (status, location, _) = console_post(
        &server,
        &session.cookie,
        "/console/sign-out",
        &[("csrf", &session.csrf)],
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/console/sign-in"));
    let (status, _, page) = console_post(
        &server,
        &session.cookie,
        "/console/pipelines",
        &[
            ("csrf", &session.csrf),
            ("name", "late"),
            ("type", "jupyter"),
        ],
    )
    .await;
    assert_eq!(status, 401, "{page}");
    let answer = no_redirects()
        .get(format!("{}/console/pipelines", server.base))
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 303);
    assert_eq!(answer.headers()["location"], "/console/sign-in");
}

/// Create Pipeline's form, with `csrf` when given.
fn create_form(csrf: Option<&str>) -> Vec<(&str, &str)> {
    let mut form = vec![("name", "planted"), ("version", "1"), ("type", "jupyter")];
    if let Some(csrf) = csrf {
        form.push(("csrf", csrf));
    }
    form
}

async fn a_sign_in_posted_from_another_site_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    // A page elsewhere cannot sign a visitor in as alice: the browser says where the form was.
    let answer = no_redirects()
        .post(format!("{}/console/sign-in", server.base))
        .header("sec-fetch-site", "cross-site")
        .form(&[("token", alice.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 403);
    assert!(
        answer.headers().get("set-cookie").is_none(),
        "no session opened"
    );
    // From the console's own page it works.
    let answer = no_redirects()
        .post(format!("{}/console/sign-in", server.base))
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", alice.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 303);
    assert!(answer.headers().get("set-cookie").is_some());
}

async fn long_lists_are_paged(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    for i in 0..21 {
        let (status, body) = server
            .post(
                &format!("{ACUMOS}/users/alice/pipelines"),
                &alice,
                json!({"pipelineId": {"name": format!("model{i:02}"), "versionId": {"label": "1"}},
                       "pipelineType": "Jupyter"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let session = sign_in(&server, &alice).await;
    let rows = |page: &str| page.matches("<tr data-pipeline=").count();
    let (status, first) = console_get(&server, &session.cookie, "/console/pipelines").await;
    assert_eq!(status, 200);
    assert_eq!(rows(&first), 20);
    assert!(
        first.contains("href=\"/console/pipelines?page=2\""),
        "a link to the next page"
    );
    // Most recently changed first: the first one made is alone on page 2.
    assert!(!first.contains("model00"));
    let (_, second) = console_get(&server, &session.cookie, "/console/pipelines?page=2").await;
    assert_eq!(rows(&second), 1);
    assert!(second.contains("model00"));
    assert!(
        second.contains("href=\"/console/pipelines?page=1\""),
        "a link back"
    );

    // Runnable pipelines too, by 20.
    for i in 0..21 {
        server
            .create_pipeline(&alice, "alice", &format!("runnable{i:02}"), "runnable")
            .await;
    }
    let (status, first) = console_get(&server, &session.cookie, "/console/runs").await;
    assert_eq!(status, 200);
    assert_eq!(rows(&first), 20);
    assert!(first.contains("href=\"/console/runs?page=2\""), "{first}");
    let (_, second) = console_get(&server, &session.cookie, "/console/runs?page=2").await;
    assert_eq!(rows(&second), 1);
    assert!(second.contains("href=\"/console/runs?page=1\""));
}

/// A gateway in front of the server, as a deployment has one: every request passed on with the
/// header naming the user it authenticated, redirects passed back as they are.
struct Gateway {
    loopback: crate::peers::Loopback,
}

const GATEWAY_HEADER: &str = "x-forwarded-user";

impl Gateway {
    fn start(upstream: &str, user: &'static str) -> Gateway {
        let upstream = upstream.to_string();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let upstream = upstream.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
                let path = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let mut forwarded =
                    no_redirects().request(parts.method, format!("{upstream}{path}"));
                for (name, value) in &parts.headers {
                    if name != "host" && name != GATEWAY_HEADER {
                        forwarded = forwarded.header(name, value);
                    }
                }
                let answer = forwarded
                    .header(GATEWAY_HEADER, user)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let mut response = axum::http::Response::builder().status(answer.status());
                for (name, value) in answer.headers() {
                    if name != "transfer-encoding" && name != "content-length" {
                        response = response.header(name, value);
                    }
                }
                response
                    .body(axum::body::Body::from(answer.bytes().await.unwrap()))
                    .unwrap()
            }
        });
        Gateway {
            loopback: crate::peers::Loopback::serve(app),
        }
    }

    fn url(&self) -> &str {
        self.loopback.url()
    }
}

async fn behind_a_trusted_gateway_its_header_signs_in(backend: Backend) {
    let Some(browser) = Browser::start(backend).await else {
        return;
    };
    let server = TestServer::start_with(backend, |config| {
        config.api.trust_gateway_header = Some(GATEWAY_HEADER.parse().unwrap());
    })
    .await;
    let gateway = Gateway::start(&server.base, "carol");

    // Through the gateway: no sign-in page, carol's console; nothing to sign out of here.
    browser.goto(&format!("{}/", gateway.url())).await;
    browser.wait_for("h1").await;
    assert_eq!(browser.path().await, "/console/pipelines");
    assert_eq!(
        browser.text(".who").await,
        "carol · carol · signed in by your gateway"
    );
    assert!(browser
        .client
        .find(Locator::Css("form.signout"))
        .await
        .is_err());
    browser.fill("#name", "carols_model").await;
    browser.click("#type option[value='jupyter']").await;
    browser.click("#create button[type=submit]").await;
    browser.wait_for("tr[data-pipeline='carols_model']").await;
    browser.check_made_for_people().await;
    browser.screenshot("gateway").await;
    // The same user the Acumos surface sees behind that gateway.
    let (status, list) = call(
        reqwest::Client::new().get(format!("{}{ACUMOS}/users/carol/pipelines", gateway.url())),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list[0]["pipelineId"]["name"], "carols_model", "{list}");

    // The header comes with cross-site requests too: a form without carol's CSRF token, or
    // with one made up, is refused and changes nothing.
    for form in [
        create_form(None),
        create_form(Some("0".repeat(64).as_str())),
    ] {
        let answer = no_redirects()
            .post(format!("{}/console/pipelines", gateway.url()))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let page = answer.text().await.unwrap();
        assert_eq!(status, 403, "{page}");
        assert!(page.contains("nothing was changed"), "{page}");
    }
    let (_, list) = call(
        reqwest::Client::new().get(format!("{}{ACUMOS}/users/carol/pipelines", gateway.url())),
    )
    .await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // Its launch page opened from another site's page: the header signs it in, but the launch
    // waits for the person; from the console's own page it starts at once.
    let id = list[0]["pipelineId"]["uuid"].as_str().unwrap().to_string();
    for (site, starts) in [("cross-site", false), ("same-origin", true)] {
        let page = no_redirects()
            .get(format!("{}/console/pipelines/{id}/launch", gateway.url()))
            .header("sec-fetch-site", site)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(page.contains("data-launch"), starts, "{site}: {page}");
        assert_eq!(page.contains("opened from another site"), !starts, "{site}");
    }

    // Straight to the server, without the gateway: no one is signed in.
    let answer = no_redirects()
        .get(format!("{}/console/pipelines", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["location"], "/console/sign-in");
    // A server that does not trust the header ignores it.
    let untrusting = TestServer::start(backend).await;
    let answer = no_redirects()
        .get(format!("{}/console/pipelines", untrusting.base))
        .header(GATEWAY_HEADER, "carol")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 303);
    assert_eq!(answer.headers()["location"], "/console/sign-in");
}
