//! Unit tests of reading and resolving `capsule.toml`.

use super::*;

fn resolve(text: &str, overrides: Overrides) -> Result<Settings, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|err| ConfigError::Parse {
        path: "capsule.toml".into(),
        message: err.to_string(),
    })?;
    Settings::resolve(
        raw,
        Some(PathBuf::from("/etc/capsule/capsule.toml")),
        Path::new("/work"),
        overrides,
    )
}

#[test]
fn cli_overrides_win_over_the_file_and_paths_resolve_from_their_origin() {
    let s = resolve("plugins-dir = \"tools\"", Overrides::default()).unwrap();
    assert_eq!(s.plugins_dir, PathBuf::from("/etc/capsule/tools"));
    let s = resolve(
        "plugins-dir = \"tools\"",
        Overrides {
            plugins_dir: Some("mine".into()),
            ..Overrides::default()
        },
    )
    .unwrap();
    assert_eq!(s.plugins_dir, PathBuf::from("/work/mine"));
}

#[test]
fn plugin_limits_inherit_the_defaults() {
    let s = resolve(
        "[limits]\nfuel = 100\n[plugins.text.limits]\ntimeout = \"1s\"\n",
        Overrides::default(),
    )
    .unwrap();
    let nowhere = Path::new("/nonexistent/plugins/x.wasm");
    let (policy, _) = s.policy("text", nowhere).unwrap();
    assert_eq!(policy.limits.fuel, 100);
    assert_eq!(policy.limits.timeout, std::time::Duration::from_secs(1));
    assert_eq!(s.policy("other", nowhere).unwrap().0.limits.fuel, 100);
}

#[test]
fn unknown_keys_point_at_line_and_column() {
    let err = resolve("[plugins.text]\nlimts = {}\n", Overrides::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("line 2, column 1"), "{text}");
    assert!(text.contains("unknown field `limts`"), "{text}");
}

#[test]
fn plugin_memory_above_the_ceiling_is_rejected_with_its_key() {
    let settings = resolve(
        "[runtime]\nmemory-ceiling = \"256MiB\"\n[plugins.big.limits]\nmemory = \"1GiB\"\n",
        Overrides::default(),
    )
    .expect("one plugin's bad policy does not fail the whole config");
    let err = settings
        .policy("big", Path::new("/p/big.wasm"))
        .unwrap_err();
    assert_eq!(
        err,
        "invalid configuration in /etc/capsule/capsule.toml: plugins.big.limits: limits.memory = 1 GiB exceeds the runtime memory ceiling of 256 MiB; lower it or raise runtime.memory-ceiling"
    );
}

#[test]
fn every_bound_is_checked_when_the_config_is_read() {
    let cases = [
        (
            "[runtime]\nmax-concurrent-calls = 10001",
            "runtime: runtime.max-concurrent-calls = 10001 is out of range; allowed: 1 to 10000",
        ),
        (
            "[runtime]\nmax-queued-calls = 1000001",
            "runtime: runtime.max-queued-calls = 1000001 is out of range; allowed: 0 to 1000000",
        ),
        (
            "[runtime]\nmemory-ceiling = \"8GiB\"",
            "runtime: runtime.memory-ceiling = 8 GiB is out of range; allowed: 1 MiB to 4 GiB",
        ),
        (
            "[runtime]\nmax-wasm-stack = \"1KiB\"",
            "runtime: runtime.max-wasm-stack = 1 KiB is out of range; allowed: 64 KiB to 64 MiB",
        ),
        (
            "[runtime]\nmax-concurrent-calls = 2000\nmemory-ceiling = \"512MiB\"",
            "runtime: (max-concurrent-calls 2000 + 12) × 2 × memory-ceiling 512 MiB reserves more than 1024 GiB of virtual memory; lower runtime.max-concurrent-calls, runtime.max-warm-instances or runtime.memory-ceiling",
        ),
        (
            "[limits]\nfuel = 0",
            "limits: limits.fuel = 0 is out of range; allowed: 1 to 10000000000000",
        ),
        (
            "[limits]\nfuel = 10000000000001",
            "limits: limits.fuel = 10000000000001 is out of range; allowed: 1 to 10000000000000",
        ),
        (
            "[limits]\ntimeout = 0",
            "limits: limits.timeout = 0ms is out of range; allowed: 1ms to 86400s",
        ),
        (
            "[limits]\ntimeout = \"1441m\"",
            "limits: limits.timeout = 86460s is out of range; allowed: 1ms to 86400s",
        ),
        (
            "[limits]\nmemory = \"1KiB\"",
            "limits: limits.memory must be at least 64KiB (one WebAssembly page)",
        ),
        (
            "[limits]\ntable-elements = 0",
            "limits: limits.table-elements = 0 is out of range; allowed: 1 to 200000",
        ),
        (
            "[limits]\ntable-elements = 200001",
            "limits: limits.table-elements = 200001 is out of range; allowed: 1 to 200000",
        ),
        (
            "[runtime]\nmax-concurrent-calls = 4\nmax-calls-per-plugin = 5",
            "runtime: runtime.max-calls-per-plugin = 5 is out of range; allowed: 1 to 4",
        ),
        (
            "[limits]\ninstances = 0",
            "limits: limits.instances = 0 is out of range; allowed: 1 to 32",
        ),
        (
            "[limits]\ninstances = 33",
            "limits: limits.instances = 33 is out of range; allowed: 1 to 32",
        ),
        (
            "[limits]\nresult = 10",
            "limits: limits.result = 10 bytes is out of range; allowed: 1 KiB to 256 MiB",
        ),
        (
            "[limits]\nresult = \"1GiB\"",
            "limits: limits.result = 1 GiB is out of range; allowed: 1 KiB to 256 MiB",
        ),
        (
            "[limits]\nlog-output = \"65MiB\"",
            "limits: limits.log-output = 65 MiB is out of range; allowed: 0 bytes to 64 MiB",
        ),
    ];
    for (text, expected) in cases {
        let err = resolve(text, Overrides::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid configuration in /etc/capsule/capsule.toml: {expected}"),
            "{text}"
        );
    }
    for (text, expected) in [
        (
            "timeout = \"61m\"",
            "plugins.x.net: net.timeout = 3660s is out of range; allowed: 1ms to 3600s",
        ),
        (
            "max-response = \"2GiB\"",
            "plugins.x.net: net.max-response = 2 GiB is out of range; allowed: 0 bytes to 1 GiB",
        ),
    ] {
        let settings = resolve(&format!("[plugins.x.net]\n{text}"), Overrides::default()).unwrap();
        let err = settings.policy("x", Path::new("/p/x.wasm")).unwrap_err();
        assert_eq!(
            err,
            format!("invalid configuration in /etc/capsule/capsule.toml: {expected}")
        );
    }
}

#[test]
fn the_grants_of_profiles_a_sidecar_names_are_withheld_too() {
    let dir = std::env::temp_dir().join(format!("capsule-sidecar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sidecar = dir.join("x.toml");
    std::fs::write(
        &sidecar,
        "profiles = [\"wide\"]\nconfig = { mode = \"sidecar\" }\nlimits.fuel = 5\n",
    )
    .unwrap();
    let text = "[profiles.wide]\nenv.set = { TOKEN = \"t\" }\nnet.allow = [\"api.example.com\"]\n";
    let settings = resolve(text, Overrides::default()).unwrap();
    let (policy, warnings) = settings.policy("x", &dir.join("x.wasm")).unwrap();
    assert!(policy.env.is_empty() && !policy.has_network(), "{policy:?}");
    assert!(policy.profiles.is_empty(), "no profile is shown as applied");
    assert_eq!(policy.config_value("mode").as_deref(), Some("sidecar"));
    assert_eq!(policy.limits.fuel, 5, "lowering a limit needs no approval");
    assert_eq!(
        policy.withheld.as_deref(),
        Some(format!(
            "net api.example.com, env TOKEN (asked for by {}; approve with `capsule approve x`)",
            sidecar.display()
        )
        .as_str())
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");

    let trusted = resolve(
        &format!("trust-sidecars = true\n{text}"),
        Overrides::default(),
    )
    .unwrap();
    let (policy, warnings) = trusted.policy("x", &dir.join("x.wasm")).unwrap();
    assert_eq!(*policy.env, [("TOKEN".to_string(), "t".to_string())]);
    assert!(policy.has_network() && policy.withheld.is_none() && warnings.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_profile_cannot_say_where_a_plugin_comes_from() {
    let err = resolve(
        "[profiles.remote]\nsource = \"oci://127.0.0.1:5000/p:1\"\n",
        Overrides::default(),
    )
    .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "invalid configuration in /etc/capsule/capsule.toml: profiles.remote.source: `source` belongs to one plugin; set it in its [plugins.NAME] entry"
    );
}
