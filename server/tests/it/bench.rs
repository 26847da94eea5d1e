//! `behalf bench URL`, run as an operator would: the binary against a real server
//! (this process's TestApp), with the accounts it signs in as.

use std::process::{Command, Output};

use app::members::Role;
use serde_json::Value;

use crate::common::{Backend, TestApp, PASSWORD};

/// Runs `behalf bench` with `args` (off the runtime's threads: the server it drives
/// answers on them).
async fn behalf_bench(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_behalf"))
            .arg("bench")
            .args(args)
            .env("BEHALF_LOG", "warn")
            .env_remove("BEHALF_BENCH_PASSWORD")
            .output()
            .expect("behalf runs")
    })
    .await
    .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The row named `name` of a JSON report.
fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["scenario"] == name)
        .unwrap_or_else(|| panic!("no {name} row in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_signs_in_and_browses_and_reports_every_row() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // The accounts `make bench` creates (the bench's defaults), with the test password.
    app.create_member("bench-support@behalf.test", "Bench Support", Role::Support)
        .await;
    app.create_member("bench-member@behalf.test", "Bench Member", Role::Member)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out").join("bench.json");
    // One connection: concurrent page renders can panic in the server (the title's
    // formatter reading a disposed resource), which the bench would rightly count.
    let output = behalf_bench(
        [
            &app.url(""),
            "--scenario",
            "signin",
            "--scenario",
            "browse",
            "--requests",
            "20",
            "--duration",
            "5",
            "--connections",
            "1",
            "--password",
            PASSWORD,
            "--json",
            json.to_str().unwrap(),
        ]
        .map(str::to_string)
        .to_vec(),
    )
    .await;
    assert!(output.status.success(), "{}", text(&output));
    let table = String::from_utf8_lossy(&output.stdout);
    for name in ["signin", "browse", "browse_on_behalf"] {
        assert!(
            table.lines().any(|line| line.starts_with(name)),
            "{name} in the table: {table}"
        );
    }

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["rows"].as_array().unwrap().len(), 3, "{report}");
    for name in ["signin", "browse", "browse_on_behalf"] {
        let row = row(&report, name);
        let requests = row["requests"].as_u64().unwrap();
        assert!(requests > 0 && requests <= 20, "{row}");
        assert_eq!(row["errors"], 0, "{row}");
        assert!(row["p50_ms"].as_f64().unwrap() > 0.0, "{row}");
        assert!(
            row["p99_ms"].as_f64().unwrap() >= row["p50_ms"].as_f64().unwrap(),
            "{row}"
        );
    }
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    // The server listens in this very process: found through /proc by its port.
    if cfg!(target_os = "linux") {
        assert_eq!(report["server_pid"], std::process::id(), "{report}");
        assert!(row(&report, "signin")["rss_mib"].as_f64().unwrap() > 0.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_refuses_a_bad_url_and_reports_a_scenario_it_cannot_start() {
    let output = behalf_bench(vec!["https://127.0.0.1:3000".into()]).await;
    assert!(!output.status.success());
    assert!(
        text(&output).contains("https is not supported"),
        "{}",
        text(&output)
    );

    // A server, but no such accounts: the scenario fails with the reason, not a panic.
    let app = TestApp::spawn(Backend::Sqlite).await;
    let output = behalf_bench(
        [&app.url(""), "--scenario", "signin", "--requests", "5"]
            .map(str::to_string)
            .to_vec(),
    )
    .await;
    assert!(!output.status.success());
    let said = text(&output);
    assert!(
        said.contains("signing in as bench-member@behalf.test failed"),
        "{said}"
    );
    assert!(said.contains("401 invalid_credentials"), "{said}");
    assert!(said.contains("could not run: signin"), "{said}");
}
