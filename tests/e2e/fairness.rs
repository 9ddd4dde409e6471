//! One plugin cannot take what other plugins need: call slots (a per-plugin cap), pool
//! slots (a per-call share of memories, tables and instances), and the memory limit
//! bounds the sum of a call's memories. Time spent waiting for a slot counts toward the
//! call's time limit. A plugin whose calls keep running into their limits is demoted to
//! the low-priority thread until it behaves.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::metrics::{metrics_url, scrape, value};
use crate::support::{Folder, Server, assert_error, echo_and_hostile, text};

#[tokio::test]
async fn a_napping_plugin_cannot_hold_every_slot() {
    // 4 slots; by default one plugin may hold half of them.
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("fixtures/greedy.wasm", "greedy.wasm"),
        ],
        "[runtime]\nmax-concurrent-calls = 4\n[plugins.greedy.limits]\ntimeout = \"60s\"\n",
    );
    let server = folder.serve_traced().await;
    let naps =
        futures::future::join_all((0..8).map(|_| server.call("greedy_nap", json!({"ms": 1500}))));
    tokio::pin!(naps);
    // Six naps wait behind the two that run: greedy's cap is full.
    tokio::select! {
        _ = &mut naps => panic!("the naps ended before the cap filled"),
        _ = server.wait_for_logs("call queued", 6) => {}
    }
    let mut latencies = Vec::new();
    let echoes = async {
        for i in 0..50 {
            let started = Instant::now();
            let result = server
                .call("echo_echo", json!({"message": format!("{i}")}))
                .await;
            latencies.push(started.elapsed());
            assert_eq!(text(&result), format!("{i}"));
        }
    };
    tokio::select! {
        _ = &mut naps => panic!("the naps ended before echo was measured"),
        () = echoes => {}
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    eprintln!(
        "echo beside a saturated plugin: p50 {:?}, p99 {:?}",
        latencies[25], p99
    );
    // Without the cap the naps would hold all 4 slots and every echo would wait ~1.5 s.
    // The 20 ms target is measured by the soak benchmark; here the bound only separates
    // "answered beside the naps" from "waited for a nap", on a busy CI machine.
    assert!(
        p99 < Duration::from_millis(750),
        "echo p99 {p99:?} beside a saturated plugin"
    );
    for result in naps.await {
        assert_eq!(text(&result), "rested", "{result:?}");
    }
}

#[tokio::test]
async fn time_spent_queued_counts_toward_the_timeout() {
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("fixtures/greedy.wasm", "greedy.wasm"),
        ],
        "[runtime]\nmax-concurrent-calls = 1\n\
         [plugins.echo.limits]\ntimeout = \"60s\"\n\
         [plugins.greedy.limits]\ntimeout = \"500ms\"\n",
    );
    let server = folder.serve_traced().await;
    let holder = server.call("echo_wait", json!({"ms": 30_000}));
    tokio::pin!(holder);
    tokio::select! {
        result = &mut holder => panic!("the holding call finished: {result:?}"),
        _ = server.wait_for_log("call admitted") => {}
    }
    let queued = tokio::select! {
        result = &mut holder => panic!("the holding call finished: {result:?}"),
        result = server.call("greedy_ok", json!({})) => result,
    };
    assert_error(
        &queued,
        &[
            "sandbox fault: plugin `greedy` waited its whole time limit of 500ms for a free call slot (runtime.max-calls-per-plugin / max-concurrent-calls were all busy); retry later, or raise them if the host has room",
        ],
    );
    server.wait_for_log("fault=\"deadline\"").await;
}

#[tokio::test]
async fn the_memory_limit_bounds_the_sum_of_a_calls_memories() {
    let folder = Folder::new(
        &[("fixtures/memories.wasm", "memories.wasm")],
        "[plugins.memories.limits]\nmemory = \"32MiB\"\n",
    );
    let server = folder.serve().await;
    // Each memory grows by 20 MiB: under the limit alone, over it together.
    let result = server
        .call("memories_grow_both", json!({"pages": 320}))
        .await;
    assert_error(
        &result,
        &["sandbox fault: plugin `memories` exceeded its memory limit of 32 MiB"],
    );
    let fine = server
        .call("memories_grow_both", json!({"pages": 100}))
        .await;
    assert_eq!(
        fine.structured_content,
        Some(json!({"result": 202})),
        "{fine:?}"
    );
}

#[tokio::test]
async fn a_component_with_many_memories_cannot_starve_the_pool() {
    // 2 call slots: the pool holds (2 + 4) shares of 2 memories. Unbounded, two calls of
    // the hoarder (6 memories each) would take every pooled memory.
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("fixtures/hoarder.wasm", "hoarder.wasm"),
        ],
        "[runtime]\nmax-concurrent-calls = 2\nmax-calls-per-plugin = 2\n",
    );
    let server = folder.serve().await;
    let hoarders =
        futures::future::join_all((0..8).map(|_| server.call("hoarder_seven", json!({}))));
    let echoes = futures::future::join_all(
        (0..8).map(|i| server.call("echo_echo", json!({"message": format!("{i}")}))),
    );
    let (hoarders, echoes) = tokio::join!(hoarders, echoes);
    for result in &hoarders {
        assert_error(
            result,
            &[
                "sandbox fault: plugin `hoarder` needs more than one call's share of the instance pool (memory count too high at 3; each call may use 32 core instances, 2 linear memories and 4 tables); such a component cannot be served",
            ],
        );
    }
    for (i, result) in echoes.iter().enumerate() {
        assert_eq!(text(result), format!("{i}"), "{result:?}");
    }
}

/// The nice value of the thread named `name` of process `pid` (field 19 of its
/// `/proc/PID/task/TID/stat`).
fn nice_of_thread(pid: u32, name: &str) -> i32 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("read /proc/PID/task");
    for task in tasks {
        let task = task.expect("task entry").path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).expect("read the task's stat");
        // After the `(comm)` field: state is field 3, so nice (19) is the 17th.
        let after_comm = &stat[stat.rfind(')').expect("stat has (comm)") + 2..];
        let nice = after_comm
            .split(' ')
            .nth(16)
            .expect("stat has a nice field");
        return nice.parse().expect("nice is a number");
    }
    panic!("capsule serve (pid {pid}) has no thread named {name}");
}

#[tokio::test]
async fn a_plugin_that_keeps_hitting_its_limits_runs_at_low_priority_until_it_behaves() {
    let folder = echo_and_hostile("memory = \"16MiB\"");
    let server = Server::start(folder.command(&["serve", "--metrics-addr", "0"])).await;
    let url = metrics_url(&server).await;
    assert_eq!(
        text(&server.call("echo_echo", json!({"message": "hi"})).await),
        "hi"
    );
    for _ in 0..4 {
        let bomb = server.call("hostile_grow_memory_raw", json!({})).await;
        assert_error(&bomb, &["exceeded its memory limit of 16 MiB"]);
    }
    server
        .wait_for_log("plugin `hostile` demoted: 4 of its last 16 calls ran into a limit (runtime.demote-after = 4); its calls run on the low-priority thread until fewer do")
        .await;
    assert_eq!(nice_of_thread(server.pid(), "capsule-demoted"), 19);
    assert_eq!(nice_of_thread(server.pid(), "capsule-wasm"), 0);
    // Demoted calls still run, under the same limits. The 13th call within its limits
    // pushes the first fault out of the window: 3 of 16 are under `demote-after`.
    for _ in 0..13 {
        assert_eq!(
            text(&server.call("hostile_ok", json!({})).await),
            "still here"
        );
    }
    server
        .wait_for_log("plugin `hostile` restored: 3 of its last 16 calls ran into a limit; its calls run on the normal call threads again")
        .await;
    assert_eq!(
        text(&server.call("hostile_ok", json!({})).await),
        "still here"
    );
    let scrape = scrape(&url).await;
    let demoted = |plugin: &str| {
        value(
            &scrape,
            "capsule_demoted_calls_total",
            &[("plugin", plugin)],
        )
    };
    assert_eq!(
        demoted("hostile"),
        13.0,
        "the calls between demotion and restoration"
    );
    assert_eq!(demoted("echo"), 0.0);
}

#[tokio::test]
async fn demote_after_zero_keeps_every_plugin_on_the_normal_threads() {
    let folder = Folder::new(
        &[("fixtures/hostile.wasm", "hostile.wasm")],
        "[runtime]\ndemote-after = 0\n[plugins.hostile.limits]\nmemory = \"16MiB\"\n",
    );
    let server = Server::start(folder.command(&["serve", "--metrics-addr", "0"])).await;
    let url = metrics_url(&server).await;
    // Four would demote by default (five in a row would open the breaker).
    for _ in 0..4 {
        let bomb = server.call("hostile_grow_memory_raw", json!({})).await;
        assert_error(&bomb, &["exceeded its memory limit of 16 MiB"]);
    }
    assert_eq!(
        text(&server.call("hostile_ok", json!({})).await),
        "still here"
    );
    let scrape = scrape(&url).await;
    assert_eq!(
        value(
            &scrape,
            "capsule_demoted_calls_total",
            &[("plugin", "hostile")]
        ),
        0.0
    );
    assert!(!server.stderr().contains("demoted"), "{}", server.stderr());
}
