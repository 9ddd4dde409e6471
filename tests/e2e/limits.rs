//! Every sandbox limit, hit by a hostile plugin built from source. Each hit is an
//! `isError` result naming the limit and its value plus a `warn` log line, and the host
//! keeps serving: the good plugin and the hostile plugin's other tools still answer.

use serde_json::json;

use crate::support::{Folder, assert_error, echo_and_hostile, text};

/// Runs `tool` under `limits` and checks the error result names `needles`: once with a
/// fresh instance per call (the default), once with `isolation = "reuse"`, where the
/// hostile call runs in an instance kept from an earlier call, and once with code from
/// the baseline compiler (`runtime.compiler = "winch"`, what tiered compilation serves
/// first; `runtime::tier`'s unit test holds the quick tier itself to the limits).
async fn contained(limits: &str, tool: &str, arguments: serde_json::Value, needles: &[&str]) {
    for (isolation, compiler) in [
        ("per-call", "tiered"),
        ("reuse", "tiered"),
        ("per-call", "winch"),
    ] {
        let folder = Folder::new(
            &[
                ("fixtures/echo.wasm", "echo.wasm"),
                ("fixtures/hostile.wasm", "hostile.wasm"),
            ],
            &format!(
                "[runtime]\ncompiler = \"{compiler}\"\n[plugins.hostile]\nisolation = \"{isolation}\"\n[plugins.hostile.limits]\n{limits}\n"
            ),
        );
        let server = folder.serve().await;
        let ok = server.call("hostile_ok", json!({})).await;
        assert_eq!(text(&ok), "still here");
        let result = server.call(tool, arguments.clone()).await;
        assert_error(&result, needles);
        assert!(
            text(&result).contains("hostile"),
            "the message names the plugin: {result:?}"
        );
        let log = server.wait_for_log("sandbox fault").await;
        assert!(log.contains(tool), "warn line names the tool: {log}");
        server.assert_echo_answers().await;
        let ok = server.call("hostile_ok", json!({})).await;
        assert_eq!(
            text(&ok),
            "still here",
            "the hostile plugin's next call gets a fresh instance ({isolation}, {compiler})"
        );
    }
}

#[tokio::test]
async fn infinite_loop_runs_out_of_fuel() {
    contained(
        "fuel = 50_000_000\ntimeout = \"60s\"",
        "hostile_spin",
        json!({}),
        &["ran out of fuel", "50000000"],
    )
    .await;
}

#[tokio::test]
async fn blocking_sleep_hits_the_deadline() {
    contained(
        "timeout = \"750ms\"",
        "hostile_sleep",
        json!({}),
        &["time limit of 750ms"],
    )
    .await;
}

#[tokio::test]
async fn allocation_bomb_hits_the_memory_limit() {
    contained(
        "memory = \"32MiB\"",
        "hostile_grow_memory",
        json!({}),
        &["memory limit of 32 MiB"],
    )
    .await;
}

#[tokio::test]
async fn raw_memory_grow_bomb_hits_the_memory_limit() {
    contained(
        "memory = \"16MiB\"",
        "hostile_grow_memory_raw",
        json!({}),
        &["memory limit of 16 MiB"],
    )
    .await;
}

#[tokio::test]
async fn unbounded_recursion_overflows_the_stack() {
    contained(
        "",
        "hostile_recurse",
        json!({}),
        &["overflowed its stack", "512 KiB"],
    )
    .await;
}

#[tokio::test]
async fn huge_result_hits_the_result_limit() {
    contained(
        "memory = \"256MiB\"\nresult = \"4MiB\"",
        "hostile_big_result",
        json!({"mb": 100}),
        &["tried to pass more than 8 MiB to the host in one transfer (its result or a host-call argument), over the result size limit of 4 MiB"],
    )
    .await;
}

#[tokio::test]
async fn result_over_the_limit_but_within_the_transfer_budget_is_refused() {
    contained(
        "result = \"4MiB\"",
        "hostile_big_result",
        json!({"mb": 5}),
        &["returned a result of 5 MiB, over the result size limit of 4 MiB; return less data or raise limits.result"],
    )
    .await;
}

#[tokio::test]
async fn panic_is_reported_with_its_message() {
    contained(
        "",
        "hostile_panic",
        json!({}),
        &["crashed", "panicked on purpose"],
    )
    .await;
}

#[tokio::test]
async fn trap_is_reported() {
    contained("", "hostile_trap", json!({}), &["crashed", "unreachable"]).await;
}

#[tokio::test]
async fn output_spam_is_capped_and_never_reaches_the_protocol() {
    let folder = echo_and_hostile("log-output = \"16KiB\"");
    let server = folder.serve().await;
    let result = server.call("hostile_stdout_spam", json!({})).await;
    assert_eq!(text(&result), "spammed", "{result:?}");
    let log = server
        .wait_for_log("plugin output over the log budget was dropped")
        .await;
    assert!(
        log.len() < 2 * 1024 * 1024,
        "the log budget held: {} bytes of stderr",
        log.len()
    );
    server.assert_echo_answers().await;
}

#[tokio::test]
async fn runaway_calls_do_not_starve_others() {
    let folder = echo_and_hostile("fuel = 1_000_000_000_000\ntimeout = \"3s\"");
    let server = folder.serve().await;
    let spinners =
        futures::future::join_all((0..4).map(|_| server.call("hostile_spin", json!({}))));
    tokio::pin!(spinners);
    tokio::select! {
        _ = &mut spinners => panic!("the spinning calls ended before echo answered"),
        _ = server.assert_echo_answers() => {}
    }
    for result in spinners.await {
        assert_error(&result, &["time limit of 3s"]);
    }
}
