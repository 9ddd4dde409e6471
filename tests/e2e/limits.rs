//! Every sandbox limit, hit by a hostile plugin built from source. Each hit is an
//! `isError` result naming the limit and its value plus a `warn` log line, and the host
//! keeps serving: the good plugin and the hostile plugin's other tools still answer.

use serde_json::json;

use crate::support::{Folder, assert_error, capsule_bin, echo_and_hostile, text};

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

/// Loads and stores outside a plugin's linear memory trap, whichever way the host lays
/// memories out (`runtime::memory_layout`) and whichever compiler made the code: with the
/// default pool, memories sit in 4 GiB slots and guard regions catch the accesses (no
/// bounds checks in the code, except for an offset that reaches past the guard); a pool
/// too large for that (2,000 calls) puts them in slots of exactly the ceiling, and the
/// code checks every access. In-bounds accesses answer, and the host keeps serving.
#[tokio::test]
async fn accesses_outside_linear_memory_trap_in_either_memory_layout() {
    const LARGE_POOL: &str = "max-concurrent-calls = 2000\nmemory-ceiling = \"128MiB\"\n";
    for (compiler, pool, layout) in [
        (
            "cranelift",
            "",
            "memories in 4 GiB slots with guard regions",
        ),
        ("winch", "", "memories in 4 GiB slots with guard regions"),
        ("cranelift", LARGE_POOL, "memories in slots of exactly"),
        ("winch", LARGE_POOL, "memories in slots of exactly"),
    ] {
        let folder = Folder::new(
            &[
                ("fixtures/echo.wasm", "echo.wasm"),
                ("fixtures/outside.wasm", "outside.wasm"),
            ],
            // Seven crashes in a row would open the plugin's circuit breaker.
            &format!(
                "[runtime]\ncompiler = \"{compiler}\"\n{pool}\n[runtime.breaker]\nenabled = false\n"
            ),
        );
        let server = folder.serve_traced().await;
        server.wait_for_log(layout).await;
        for (tool, at) in [
            ("outside_load", 65_533),
            ("outside_load", 65_536),
            ("outside_load", u32::MAX - 3),
            ("outside_store", 65_536),
            ("outside_store", 1 << 31),
            ("outside_far_offset_load", 0),
            ("outside_grown_load", 131_072),
        ] {
            let result = server.call(tool, json!({ "at": at })).await;
            assert_error(
                &result,
                &[
                    "plugin `outside` crashed",
                    "wasm trap: out of bounds memory access",
                ],
            );
        }
        let inside = server.call("outside_load", json!({ "at": 65_532 })).await;
        assert_eq!(
            text(&inside),
            r#"{"result":0}"#,
            "{compiler} {pool}: {inside:?}"
        );
        let grown = server
            .call("outside_grown_load", json!({ "at": 65_536 }))
            .await;
        assert_eq!(
            text(&grown),
            r#"{"result":0}"#,
            "{compiler} {pool}: {grown:?}"
        );
        server.assert_echo_answers().await;
    }
}

/// Under an address-space limit (`prlimit --as`, what `ulimit -v` sets) that the guarded
/// pool would take more than half of, the host lays memories out at exactly the ceiling
/// and serves; without the limit, the same config gets guarded slots.
#[tokio::test]
async fn an_address_space_limit_gets_the_exact_memory_layout() {
    let folder = Folder::new(
        &[("fixtures/outside.wasm", "outside.wasm")],
        "[runtime]\nmax-concurrent-calls = 4\nmemory-ceiling = \"128MiB\"\n",
    );
    // (4 calls + 4 reserved) × 2 memories × 4 GiB and more: over half of 64 GiB.
    let limit = format!("--as={}", 64_u64 << 30);
    for (prlimit, layout) in [
        (
            Some(limit.as_str()),
            "memories in slots of exactly runtime.memory-ceiling",
        ),
        (None, "memories in 4 GiB slots with guard regions"),
    ] {
        let mut command = match prlimit {
            Some(limit) => {
                let mut command = tokio::process::Command::new("prlimit");
                command.arg(limit).arg(capsule_bin());
                command
            }
            None => tokio::process::Command::new(capsule_bin()),
        };
        let out = command
            .arg("list")
            .arg("--config")
            .arg(folder.dir.path().join("capsule.toml"))
            .arg("--plugins")
            .arg(folder.plugins())
            .arg("--no-cache")
            .env("CAPSULE_LOG", "warn,capsule::runtime::engine=debug")
            .output()
            .await
            .expect("run capsule under prlimit");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{prlimit:?}: {stderr}");
        assert!(stderr.contains(layout), "{prlimit:?}: {stderr}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("outside_load"),
            "{prlimit:?}: listed"
        );
    }
}
