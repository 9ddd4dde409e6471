//! The host's own memory is bounded by the limits, whatever a plugin returns: results
//! are stopped while they are copied out of guest memory, on both the plugin-world path
//! and the WIT-derived path, and reported as the result-size fault.

use serde_json::json;

use crate::support::{Folder, Server, assert_error, text};

const MIB: u64 = 1 << 20;

/// Echo (the control plugin) plus `components`, with all 64 call slots open to one plugin
/// and no circuit breaker (every one of the 64 faulting calls must run).
fn flood_folder(components: &[(&str, &str)]) -> Folder {
    let mut all = vec![("fixtures/echo.wasm", "echo.wasm")];
    all.extend_from_slice(components);
    Folder::new(
        &all,
        "[runtime]\nmax-concurrent-calls = 64\nmax-calls-per-plugin = 64\n\n\
         [runtime.breaker]\nenabled = false\n",
    )
}

/// Runs 64 calls of `tool` at once while echo keeps answering, checks each got
/// `needles`, and returns the server's (RSS before, peak RSS after).
async fn flood(server: &Server, tool: &str, needles: &[&str]) -> (u64, u64) {
    let (before, _) = server.memory();
    let calls = futures::future::join_all((0..64).map(|_| server.call(tool, json!({}))));
    let (results, ()) = tokio::join!(calls, server.assert_echo_answers());
    for result in &results {
        assert_error(result, needles);
    }
    server.assert_echo_answers().await;
    let (_, peak) = server.memory();
    (before, peak)
}

#[tokio::test]
async fn aliased_result_flood_through_the_plugin_world_stays_bounded() {
    let folder = flood_folder(&[("fixtures/greedy.wasm", "greedy.wasm")]);
    let server = folder.serve().await;
    let (before, peak) = flood(
        &server,
        "greedy_alias_flood",
        &[
            "sandbox fault: plugin `greedy` tried to pass more than 8 MiB to the host in one transfer",
            "over the result size limit of 4 MiB",
        ],
    )
    .await;
    // 64 guests hold 8 MiB each (their own linear memory); unbounded, the host would copy
    // 120 MiB per call (7.5 GiB). The target: under 1.5 GiB.
    assert!(
        peak < 1536 * MIB,
        "peak RSS {} MiB (started at {} MiB)",
        peak / MIB,
        before / MIB
    );
    let log = server.wait_for_logs("fault=\"result-size\"", 64).await;
    assert!(log.contains("greedy_alias_flood"), "{log}");
}

#[tokio::test]
async fn aliased_result_flood_through_wit_derived_tools_stays_bounded() {
    let folder = flood_folder(&[("fixtures/flood.wasm", "flood.wasm")]);
    let server = folder.serve().await;
    let (before, peak) = flood(
        &server,
        "flood_aliases",
        &[
            "sandbox fault: plugin `flood` tried to pass more than 8 MiB to the host in one transfer",
            "over the result size limit of 4 MiB",
        ],
    )
    .await;
    // These guests only touch their header page, so nearly all growth is the host's own:
    // at most max-concurrent-calls × 2 × limits.result + 64 MiB.
    let bound = 64 * 2 * 4 * MIB + 64 * MIB;
    assert!(
        peak.saturating_sub(before) <= bound,
        "host memory grew by {} MiB (from {} to {} MiB), over the bound of {} MiB",
        peak.saturating_sub(before) / MIB,
        before / MIB,
        peak / MIB,
        bound / MIB
    );
}

#[tokio::test]
async fn oversized_wit_results_are_result_size_faults_not_crashes() {
    let folder = flood_folder(&[("fixtures/flood.wasm", "flood.wasm")]);
    let server = folder.serve().await;
    for tool in ["flood_empties", "flood_bytes"] {
        let result = server.call(tool, json!({})).await;
        assert_error(
            &result,
            &[
                "sandbox fault: plugin `flood` tried to pass more than 8 MiB to the host in one transfer (its result or a host-call argument), over the result size limit of 4 MiB; return less data or raise limits.result",
            ],
        );
    }
    let small = server.call("flood_small", json!({})).await;
    assert_eq!(
        small.structured_content,
        Some(json!({"result": ["test", "test", "test"]})),
        "{small:?}"
    );
    server.assert_echo_answers().await;
}

#[tokio::test]
async fn a_larger_result_limit_raises_the_transfer_budget() {
    let folder = Folder::new(
        &[("fixtures/flood.wasm", "flood.wasm")],
        // The time limit is raised so a slow debug build on a busy machine still reaches
        // the result check this test is about.
        "[plugins.flood.limits]\nresult = \"64MiB\"\ntimeout = \"60s\"\n",
    );
    let server = folder.serve().await;
    // 2 M empty strings are 48 MB of host `String`s: within 2 × 64 MiB, and their JSON
    // (3 bytes each) is within the limit.
    let result = server.call("flood_empties", json!({})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let aliases = server.call("flood_aliases", json!({})).await;
    assert_error(
        &aliases,
        &[
            "sandbox fault: plugin `flood` returned a result of ",
            " MiB, over the result size limit of 64 MiB",
        ],
    );
}

#[tokio::test]
async fn too_many_content_blocks_are_refused() {
    let folder = flood_folder(&[("fixtures/greedy.wasm", "greedy.wasm")]);
    let server = folder.serve().await;
    let result = server.call("greedy_blocks", json!({"n": 2000})).await;
    assert_error(
        &result,
        &[
            "sandbox fault: plugin `greedy` returned 2000 content blocks, over the limit of 1024 per result; return fewer, larger blocks",
        ],
    );
    let fine = server.call("greedy_blocks", json!({"n": 3})).await;
    assert_eq!(text(&fine), "x\nx\nx");
}
