//! The web UI in a real browser: the built UI (web/dist) served by the whole
//! system with the demo fleet (three hours of history, readings every 200 ms,
//! faults within the first minute), and the browser tests of web/e2e run by
//! Node against it — playwright-core driving Debian's chromium headless.
//! Their screenshots land in docs/screenshots (linked from the README) and
//! their timings (chart draw and zoom) in this test's output.
//!
//! Needs Node.js, web/node_modules and chromium (scripts/install-deps) and a
//! built UI (scripts/test builds it). Missing pieces fail under `CI=true`
//! and skip the test with a notice elsewhere.
//!
//! A test binary of its own (sharing the e2e harness), so the browser's load
//! never overlaps the timing-sensitive MQTT scenarios of `tests/e2e`.
#![allow(clippy::unwrap_used)]
// The e2e harness is shared whole; this binary uses only part of it.
#![allow(dead_code, unused_macros, unused_imports)]

#[path = "../e2e/mosquitto.rs"]
mod mosquitto;
#[path = "../e2e/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use maintainpro::demo::DemoOptions;
use maintainpro_models::auth::Role;
use maintainpro_models::users::{self, NewUser};
use maintainpro_models::Tenant;

use crate::mosquitto::in_ci;
use crate::support::{App, BrokerKind};

/// The browser tests as a whole may take this long.
const BROWSER_TESTS_LIMIT: Duration = Duration::from_secs(15 * 60);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Why the browser tests cannot run here, if they cannot.
fn missing_prerequisite(web: &Path) -> Option<String> {
    if !web.join("dist/index.html").exists() {
        return Some("the web UI is not built (run `npm --prefix web run build`; scripts/test does)".into());
    }
    if !web.join("node_modules/playwright-core").exists() {
        return Some("web/node_modules is missing (run scripts/install-deps)".into());
    }
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.exists() {
        return Some(format!(
            "{} is missing (run scripts/install-deps)",
            chromium.display()
        ));
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("node is not installed (run scripts/install-deps)".into());
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_in_a_browser() {
    let root = repo_root();
    let web = root.join("web");
    if let Some(why) = missing_prerequisite(&web) {
        assert!(!in_ci(), "browser tests cannot run under CI: {why}");
        eprintln!("SKIPPED web_ui_in_a_browser: {why}");
        return;
    }

    let app = App::start_with(BrokerKind::Embedded, |c| {
        c.static_dir = Some(web.join("dist"));
        c.demo = Some(DemoOptions {
            interval: Duration::from_millis(200),
            history: Duration::from_secs(3 * 3600),
            ..DemoOptions::default()
        });
    })
    .await
    .expect("the embedded broker is always available");
    let demo = app.running.demo.clone().expect("the demo was seeded");

    // One user per role besides the demo's admin.
    let tenant = Tenant::system(demo.org_id, "web-tests");
    let mut tx = app.running.db.tenant(demo.org_id).await.unwrap();
    let mut env = vec![
        ("MP_BASE_URL".to_string(), app.url("")),
        ("MP_ADMIN_EMAIL".into(), demo.admin_email.clone()),
        ("MP_ADMIN_PASSWORD".into(), demo.admin_password.clone()),
    ];
    for (role, var, name) in [
        (Role::Manager, "MANAGER", "Maria Manager"),
        (Role::Technician, "TECH", "Tom Technician"),
        (Role::Requester, "REQUESTER", "Rita Requester"),
    ] {
        let email = format!("{}@demo.local", var.to_lowercase());
        let password = format!("{}-password-1", var.to_lowercase());
        users::create(
            &mut tx,
            &tenant,
            NewUser {
                email: email.clone(),
                name: name.into(),
                role,
                password: password.clone(),
            },
        )
        .await
        .unwrap();
        env.push((format!("MP_{var}_EMAIL"), email));
        env.push((format!("MP_{var}_PASSWORD"), password));
    }
    tx.commit().await.unwrap();

    // The test files in name order (Node 20 does not expand globs itself).
    let mut files: Vec<String> = std::fs::read_dir(web.join("e2e"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".test.mjs"))
        .map(|n| format!("e2e/{n}"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no browser tests in web/e2e");

    let mut child = tokio::process::Command::new("node")
        .arg("--test")
        .arg("--test-concurrency=1")
        .arg("--test-reporter=spec")
        .args(&files)
        .current_dir(&web)
        .envs(env)
        .env("MP_SCREENSHOTS", root.join("docs/screenshots"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let status = match tokio::time::timeout(BROWSER_TESTS_LIMIT, child.wait()).await {
        Ok(status) => status.expect("node runs"),
        Err(_) => {
            let _ = child.kill().await;
            panic!("the browser tests took longer than {BROWSER_TESTS_LIMIT:?}");
        }
    };
    app.stop().await;
    assert!(
        status.success(),
        "browser tests failed ({status}); see their output above"
    );
}
