//! Plugins that attack the host through what it trusts them to describe or report: tool
//! names and descriptors from `list-tools` (issue #14, item 3), and progress and log
//! events during a call (item 2). The host keeps serving, bounds what it forwards, and says
//! exactly what it refused.

use rmcp::model::{LoggingLevel, SetLevelRequestParams};
use serde_json::json;

use crate::support::{Folder, Server, echo_and_hostile, text};

const RULE: &str = "use 1-64 characters from a-z, A-Z, 0-9, `_` and `-`";
/// `events::MAX_MESSAGE`: the longest message forwarded, before the `…` that marks a cut.
const MAX_MESSAGE: usize = 4096;
/// `events::MAX_LOG_CALLS` and `events::MAX_PROGRESS_NOTIFICATIONS`.
const MAX_EVENTS: usize = 1000;

/// Every line the host must print about the badnames fixture's tools, exactly.
fn badnames_problems() -> Vec<String> {
    let schema_bytes = json!({"type": "object", "description": "s".repeat(100 << 10)})
        .to_string()
        .len();
    vec![
        "plugin `badnames`: list-tools returned 1200 tools; only the first 1000 are served (at most 1000 tools per plugin); split the plugin".into(),
        format!(
            "plugin `badnames`: tool `a{}…` (100 characters) skipped: the name is 100 characters long; {RULE}",
            "é".repeat(47)
        ),
        format!(
            "plugin `badnames`: tool `{}` skipped: the name contains `ü` at position 1; {RULE}",
            "ü".repeat(40)
        ),
        format!("plugin `badnames`: tool `has space` skipped: the name contains ` ` at position 4; {RULE}"),
        format!(
            "plugin `badnames`: tool `bell\\u{{7}}\\u{{1b}}[31m` skipped: the name contains the control character \\u{{7}} at position 5; {RULE}"
        ),
        format!("plugin `badnames`: tool `` skipped: the name is empty; {RULE}"),
        "plugin `badnames`: tool `good` skipped: an earlier tool of this plugin has the same name; tool names must be unique within a plugin".into(),
        "plugin `badnames`: tool `long_description`: description is 1048576 bytes; cut to the first 8192 bytes (at most 8192 are served)".into(),
        "plugin `badnames`: tool `long_description`: title is 10000 bytes; cut to the first 256 bytes (at most 256 are served)".into(),
        format!(
            "plugin `badnames`: tool `huge_schema` skipped: input schema is {schema_bytes} bytes; at most 65536 bytes are accepted"
        ),
    ]
}

fn badnames_and_echo() -> Folder {
    Folder::new(
        &[
            ("fixtures/badnames.wasm", "badnames.wasm"),
            ("fixtures/echo.wasm", "echo.wasm"),
        ],
        "",
    )
}

#[tokio::test]
async fn tools_with_bad_names_are_skipped_and_the_rest_served() {
    let folder = badnames_and_echo();
    let server = folder.serve().await;
    let good = server.call("badnames_good", json!({})).await;
    assert_eq!(text(&good), "good answered");
    server.assert_echo_answers().await;

    let tools = server.client.list_all_tools().await.expect("tools/list");
    let served: Vec<&str> = tools
        .iter()
        .map(|t| t.name.as_ref())
        .filter(|n| n.starts_with("badnames_"))
        .collect();
    // The first 1000 entries, less 5 bad names, 1 duplicate and 1 oversized schema.
    assert_eq!(served.len(), 993, "{served:?}");
    assert!(served.contains(&"badnames_extra_999"));
    assert!(!served.contains(&"badnames_extra_1000"));
    let long = tools
        .iter()
        .find(|t| t.name == "badnames_long_description")
        .expect("the tool with a long description is served, cut");
    let description = long.description.as_deref().unwrap_or_default();
    assert_eq!(description, format!("{}…", "d".repeat(8192)));
    assert_eq!(
        long.title.as_deref(),
        Some(format!("{}…", "T".repeat(256)).as_str())
    );

    let log = server.wait_for_log("huge_schema").await;
    for line in badnames_problems() {
        assert!(log.contains(&line), "stderr lacks {line:?}:\n{log}");
    }
}

#[tokio::test]
async fn check_reports_each_skipped_tool() {
    let folder = badnames_and_echo();
    let (code, stdout, stderr) = folder.run(&["check"]).await;
    assert_eq!(code, 1, "problems are errors:\n{stdout}\n{stderr}");
    for line in badnames_problems() {
        let severity = if line.contains("; cut to") {
            "warn "
        } else {
            "error"
        };
        let expected = format!("{severity}  {line}");
        assert!(
            stdout.contains(&expected),
            "check lacks {expected:?}:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("2 plugins, 1009 tools, 8 errors, 2 warnings"),
        "{stdout}"
    );
}

/// Peak host memory allowed during a flood. Measured: ~34 MiB (debug build) with the
/// bounds; before them, a thousand 1 MiB log messages kept their buffers while queued
/// and took the host past 300 MiB.
const PEAK_RSS_KIB: u64 = 128 << 10;

async fn flood_server() -> (Folder, Server) {
    let folder = echo_and_hostile("fuel = 1_000_000_000_000\ntimeout = \"120s\"");
    let server = folder.serve().await;
    server
        .client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await
        .expect("logging/setLevel");
    (folder, server)
}

#[tokio::test]
async fn a_progress_flood_is_coalesced_cut_and_capped() {
    let (_folder, server) = flood_server().await;
    // A million tiny reports, then two thousand of 1 MiB each.
    for (count, bytes) in [(1_000_000u64, 64u64), (2_000, 1 << 20)] {
        server.recorder.progress.lock().unwrap().clear();
        let done = server
            .call(
                "hostile_progress_flood",
                json!({"count": count, "bytes": bytes}),
            )
            .await;
        assert_eq!(text(&done), format!("reported progress {count} times"));
        let progress = server.recorder.progress.lock().unwrap().clone();
        eprintln!(
            "progress_flood count={count} bytes={bytes}: {} notifications",
            progress.len()
        );
        assert!(
            !progress.is_empty() && progress.len() <= MAX_EVENTS,
            "{} notifications",
            progress.len()
        );
        let values: Vec<f64> = progress.iter().map(|p| p.progress).collect();
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "progress increases and has no NaN: {values:?}"
        );
        assert_eq!(
            values.last(),
            Some(&(count as f64)),
            "the latest value arrives"
        );
        for p in &progress {
            let message = p.message.as_deref().unwrap_or_default();
            assert!(
                message.len() <= MAX_MESSAGE + '…'.len_utf8(),
                "{} bytes",
                message.len()
            );
            if bytes > MAX_MESSAGE as u64 {
                assert_eq!(message, format!("{}…", "é".repeat(MAX_MESSAGE / 2)));
            }
        }
    }
    server
        .wait_for_log(
            "plugin reported progress with a value that is not a finite number; dropping it",
        )
        .await;
    server.assert_echo_answers().await;
    let peak = server.memory().1 / 1024;
    eprintln!("host peak RSS {peak} KiB");
    assert!(peak < PEAK_RSS_KIB, "host peak RSS {peak} KiB");
}

#[tokio::test]
async fn a_log_flood_is_cut_and_capped() {
    let (_folder, server) = flood_server().await;
    for (count, bytes) in [(1_000_000u64, 64u64), (3_000, 1 << 20)] {
        server.recorder.logs.lock().unwrap().clear();
        let done = server
            .call("hostile_log_flood", json!({"count": count, "bytes": bytes}))
            .await;
        assert_eq!(text(&done), format!("logged {count} lines"));
        let logs = server.recorder.logs.lock().unwrap().clone();
        eprintln!(
            "log_flood count={count} bytes={bytes}: {} notifications",
            logs.len()
        );
        assert!(
            !logs.is_empty() && logs.len() <= MAX_EVENTS,
            "{} notifications",
            logs.len()
        );
        for log in &logs {
            let message = log.data.as_str().unwrap_or_default();
            assert!(
                message.len() <= MAX_MESSAGE + '…'.len_utf8(),
                "{} bytes",
                message.len()
            );
        }
    }
    let log = server
        .wait_for_log("plugin logged more than 1000 lines in one call; dropping the rest")
        .await;
    assert_eq!(
        log.matches("plugin logged more than 1000 lines in one call")
            .count(),
        2,
        "one warning per call"
    );
    server.assert_echo_answers().await;
    let peak = server.memory().1 / 1024;
    eprintln!("host peak RSS {peak} KiB");
    assert!(peak < PEAK_RSS_KIB, "host peak RSS {peak} KiB");
}
