//! One config, every environment: `capsule config show --json` of the real binary proves
//! the precedence command line > `CAPSULE_*` variable > `capsule.toml` > default for a key
//! of each kind, and a golden file holds the exact text of config errors.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::capsule_bin;

/// `capsule ARGS` in `dir`, with `env` and no other `CAPSULE_*` variable:
/// (exit code, stdout, stderr).
fn capsule(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(capsule_bin());
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CAPSULE_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    let out = command.output().expect("run capsule");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `capsule config show --json` in a folder whose `capsule.toml` is `config`.
fn show(config: &str, args: &[&str], env: &[(&str, &str)]) -> (tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("capsule.toml"), config).unwrap();
    let mut all = vec!["config", "show", "--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = capsule(dir.path(), &all, env);
    assert_eq!(code, 0, "{stderr}");
    let shown = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (dir, shown)
}

/// One key, set in each layer in turn: (file line, variable, flag arguments, and the
/// expected value at default, file, env and cli).
struct Case {
    key: &'static str,
    file: &'static str,
    env: (&'static str, &'static str),
    flag: [&'static str; 2],
    values: [Value; 4],
}

#[test]
fn the_command_line_beats_the_environment_beats_the_file_beats_the_default() {
    let cases = [
        Case {
            key: "plugins-dir",
            file: "plugins-dir = \"from-file\"",
            env: ("CAPSULE_PLUGINS_DIR", "from-env"),
            flag: ["--plugins", "from-cli"],
            values: [
                json!("plugins"),
                json!("from-file"),
                json!("CWD/from-env"),
                json!("CWD/from-cli"),
            ],
        },
        Case {
            key: "trust-sidecars",
            file: "trust-sidecars = true",
            env: ("CAPSULE_TRUST_SIDECARS", "false"),
            flag: ["--set", "trust-sidecars=true"],
            values: [json!(false), json!(true), json!(false), json!(true)],
        },
        Case {
            key: "runtime.max-concurrent-calls",
            file: "[runtime]\nmax-concurrent-calls = 16",
            env: ("CAPSULE_RUNTIME_MAX_CONCURRENT_CALLS", "8"),
            flag: ["--max-concurrent-calls", "4"],
            values: [json!(64), json!(16), json!(8), json!(4)],
        },
        Case {
            key: "runtime.memory-ceiling",
            file: "[runtime]\nmemory-ceiling = \"256MiB\"",
            env: ("CAPSULE_RUNTIME_MEMORY_CEILING", "128MiB"),
            flag: ["--memory-ceiling", "192MiB"],
            values: [
                json!("512MiB"),
                json!("256MiB"),
                json!("128MiB"),
                json!("192MiB"),
            ],
        },
        Case {
            key: "log-level",
            file: "log-level = \"warn\"",
            env: ("CAPSULE_LOG_LEVEL", "debug"),
            flag: ["--log-level", "error"],
            values: [json!("info"), json!("warn"), json!("debug"), json!("error")],
        },
        Case {
            key: "ceiling.hosts",
            file: "[ceiling]\nhosts = [\"file.example.com\"]",
            env: ("CAPSULE_CEILING_HOSTS", "a.example.com,b.example.com"),
            flag: ["--set", "ceiling.hosts=[\"cli.example.com\"]"],
            values: [
                json!([]),
                json!(["file.example.com"]),
                json!(["a.example.com", "b.example.com"]),
                json!(["cli.example.com"]),
            ],
        },
    ];
    for case in cases {
        let key = case.key;
        let (_, default) = show("", &[], &[]);
        let (_, file) = show(case.file, &[], &[]);
        let (_, env) = show(case.file, &[], &[case.env]);
        let (_, cli) = show(case.file, &case.flag, &[case.env]);
        let flag_source = if case.flag[0] == "--set" {
            format!("cli --set {key}")
        } else {
            format!("cli {}", case.flag[0])
        };
        for (layer, shown, expected, source) in [
            ("default", &default, &case.values[0], "default".to_string()),
            ("file", &file, &case.values[1], String::new()),
            ("env", &env, &case.values[2], format!("env {}", case.env.0)),
            ("cli", &cli, &case.values[3], flag_source),
        ] {
            let entry = &shown[key];
            // Paths from the environment and the command line are made absolute against
            // the current folder (a temporary one): `CWD/` stands for it.
            match expected.as_str().and_then(|e| e.strip_prefix("CWD")) {
                Some(tail) => {
                    let got = entry["value"].as_str().unwrap_or_default();
                    assert!(
                        got.starts_with('/') && got.ends_with(tail),
                        "{key} from {layer}: {entry}"
                    );
                }
                None => assert_eq!(&entry["value"], expected, "{key} from {layer}: {entry}"),
            }
            let got_source = entry["source"].as_str().unwrap_or_default();
            if layer == "file" {
                assert!(
                    got_source.starts_with("file ") && got_source.contains("capsule.toml:"),
                    "{key}: {got_source}"
                );
            } else {
                assert_eq!(got_source, source, "{key} from {layer}");
            }
        }
    }
}

#[test]
fn secrets_are_never_shown_and_expanded_values_are_shown_as_written() {
    let config = "[secrets]\ngithub = \"${CAPSULE_TEST_TOKEN}\"\nliteral = \"hunter2\"\n\n[plugins.echo.config]\nurl = \"https://${CAPSULE_TEST_HOST}/v1\"\n";
    let env = [
        ("CAPSULE_TEST_TOKEN", "ghp_do_not_print"),
        ("CAPSULE_TEST_HOST", "api.internal"),
        ("CAPSULE_SECRETS__extra", "from-env-secret"),
    ];
    let (dir, shown) = show(config, &[], &env);
    let text = shown.to_string();
    for secret in ["ghp_do_not_print", "hunter2", "from-env-secret"] {
        assert!(!text.contains(secret), "{secret} printed: {text}");
    }
    assert_eq!(shown["secrets.github"]["value"], "<redacted>");
    assert_eq!(
        shown["secrets.extra"],
        json!({ "value": "<redacted>", "source": "env CAPSULE_SECRETS__extra" })
    );
    assert_eq!(
        shown["plugins.echo.config.url"],
        json!({ "written": "\"https://${CAPSULE_TEST_HOST}/v1\"", "source": format!("file {}:6:7", dir.path().join("capsule.toml").display()) })
    );
    let (code, toml_out, stderr) = capsule(dir.path(), &["config", "show"], &env);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !toml_out.contains("ghp_do_not_print") && !toml_out.contains("hunter2"),
        "{toml_out}"
    );
    assert!(
        toml_out.contains("github = \"<redacted>\"  # file "),
        "{toml_out}"
    );
}

#[test]
fn a_variable_names_its_plugin_between_double_underscores() {
    let (_, shown) = show(
        "[plugins.my-tool.limits]\nfuel = 1000\n",
        &[],
        &[
            ("CAPSULE_PLUGINS__MY_TOOL__LIMITS_FUEL", "5000"),
            ("CAPSULE_PLUGINS__other__NET_TIMEOUT", "2s"),
        ],
    );
    assert_eq!(shown["plugins.my-tool.limits.fuel"]["value"], 5000);
    assert_eq!(shown["plugins.other.net.timeout"]["value"], "2s");
}

#[test]
fn the_schema_line_is_a_comment_and_the_schema_is_the_committed_one() {
    let (_, shown) = show(
        "#:schema ./capsule.schema.json\nlog-level = \"debug\"\n",
        &[],
        &[],
    );
    assert_eq!(shown["log-level"]["value"], "debug");
    let dir = tempfile::tempdir().unwrap();
    let (code, schema, _) = capsule(dir.path(), &["config", "schema"], &[]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../capsule.schema.json"
    ))
    .unwrap();
    assert_eq!(schema, committed);
}

/// The golden file of config errors. Set `CAPSULE_BLESS=1` to rewrite it after an
/// intended change, then review the diff.
const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/e2e/golden/config-errors.txt"
);

/// A config error case: name, `capsule.toml`, arguments, environment.
type ErrorCase = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

#[test]
fn config_errors_name_the_key_the_place_and_the_fix() {
    let cases: [ErrorCase; 7] = [
        (
            "unknown key",
            "[runtime]\nmax-concurrent-calls = 8\nmax-concurent-calls = 9\n",
            &[],
            &[],
        ),
        (
            "wrong type in the file",
            "[limits]\nfuel = \"lots\"\n",
            &[],
            &[],
        ),
        (
            "missing variable",
            "[plugins.fetch.config]\nurl = \"https://${CAPSULE_TEST_UNSET_HOST}/v1\"\n",
            &[],
            &[],
        ),
        (
            "bad environment value",
            "",
            &[],
            &[("CAPSULE_RUNTIME_MEMORY_CEILING", "lots")],
        ),
        ("bad flag value", "", &["--max-concurrent-calls=many"], &[]),
        ("unknown --set key", "", &["--set", "limits.fule=3"], &[]),
        (
            "misspelt variable (a warning)",
            "",
            &[],
            &[("CAPSULE_LIMITS_FULE", "3")],
        ),
    ];
    let mut golden = String::new();
    for (name, config, args, env) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("capsule.toml"), config).unwrap();
        let mut all = vec!["config", "show"];
        all.extend_from_slice(args);
        let (code, _, stderr) = capsule(dir.path(), &all, env);
        let stderr = stderr.replace(&dir.path().display().to_string(), "$DIR");
        let env_text: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        golden.push_str(&format!(
            "## {name}\n$ {}capsule {}  (exit {code})\n{stderr}\n",
            env_text.concat(),
            all.join(" ")
        ));
    }
    if std::env::var_os("CAPSULE_BLESS").is_some() {
        std::fs::write(GOLDEN, &golden).unwrap();
    }
    let expected = std::fs::read_to_string(GOLDEN).unwrap_or_default();
    assert_eq!(golden, expected, "config errors differ from {GOLDEN}");
}

#[test]
fn the_older_variable_names_still_set_their_keys_and_the_rule_name_wins() {
    let (_, shown) = show(
        "",
        &[],
        &[("CAPSULE_PLUGINS", "old-name"), ("CAPSULE_LOG", "debug")],
    );
    assert_eq!(shown["plugins-dir"]["source"], "env CAPSULE_PLUGINS");
    assert!(
        shown["plugins-dir"]["value"]
            .as_str()
            .is_some_and(|p| p.starts_with('/') && p.ends_with("/old-name")),
        "{}",
        shown["plugins-dir"]
    );
    assert_eq!(
        shown["log-level"],
        json!({ "value": "debug", "source": "env CAPSULE_LOG" })
    );
    let (_, shown) = show(
        "",
        &[],
        &[("CAPSULE_LOG", "debug"), ("CAPSULE_LOG_LEVEL", "trace")],
    );
    assert_eq!(
        shown["log-level"],
        json!({ "value": "trace", "source": "env CAPSULE_LOG_LEVEL" })
    );
}

/// The variables reach the running host, not only `config show`: a plugin's fuel set by
/// the environment stops its spinning call, and the flag beats the variable.
#[tokio::test]
async fn a_limit_set_by_the_environment_or_a_flag_stops_the_call() {
    let folder = crate::support::echo_and_hostile("timeout = \"60s\"");
    let mut command = folder.command(&["call", "hostile_spin"]);
    command.env("CAPSULE_PLUGINS__hostile__LIMITS_FUEL", "40000000");
    let out = command.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ran out of fuel (limit: 40000000 units per call)"),
        "{stderr}"
    );

    let mut command = folder.command(&[
        "call",
        "hostile_spin",
        "--set",
        "plugins.hostile.limits.fuel=30000000",
    ]);
    command.env("CAPSULE_PLUGINS__hostile__LIMITS_FUEL", "40000000");
    let out = command.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ran out of fuel (limit: 30000000 units per call)"),
        "{stderr}"
    );
}
