//! Absurd numbers in the config are refused when it is read, naming the key and the
//! allowed range: never a panic or a wrapped value when a call runs.

use crate::support::Folder;

#[tokio::test]
async fn absurd_config_values_are_refused_with_the_key_and_the_range() {
    let cases = [
        (
            "[limits]\ntimeout = \"307445734561825861m\"\n",
            "invalid config file {file}: TOML parse error at line 2, column 11\n  |\n2 | timeout = \"307445734561825861m\"\n  |           ^^^^^^^^^^^^^^^^^^^^^\nduration `307445734561825861m` is too large",
        ),
        (
            "[limits]\ntimeout = \"5256000m\"\n",
            "invalid configuration in {file}: limits: limits.timeout = 315360000s is out of range; allowed: 1ms to 86400s",
        ),
        (
            "[limits]\nfuel = 9223372036854775807\n",
            "invalid configuration in {file}: limits: limits.fuel = 9223372036854775807 is out of range; allowed: 1 to 10000000000000",
        ),
        (
            "[limits]\ntable-elements = 4000000000\n",
            "invalid configuration in {file}: limits: limits.table-elements = 4000000000 is out of range; allowed: 1 to 200000",
        ),
        (
            "[limits]\nlog-output = \"16000000000GiB\"\n",
            "invalid configuration in {file}: limits: limits.log-output = 16000000000 GiB is out of range; allowed: 0 bytes to 64 MiB",
        ),
        (
            "[runtime]\nmax-concurrent-calls = 0\n",
            "invalid configuration in {file}: runtime: runtime.max-concurrent-calls = 0 is out of range; allowed: 1 to 10000",
        ),
        (
            "[runtime]\nmax-concurrent-calls = 10000\nmemory-ceiling = \"4GiB\"\n",
            "invalid configuration in {file}: runtime: (max-concurrent-calls 10000 + 12) × 2 × memory-ceiling 4 GiB reserves more than 1024 GiB of virtual memory; lower runtime.max-concurrent-calls, runtime.max-warm-instances or runtime.memory-ceiling",
        ),
    ];
    for (config, expected) in cases {
        let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], config);
        let (code, stdout, stderr) = folder.run(&["check"]).await;
        let file = folder.dir.path().join("capsule.toml");
        let expected = format!(
            "error: {}",
            expected.replace("{file}", &file.display().to_string())
        );
        assert_eq!(
            (code, stderr.trim_end()),
            (2, expected.as_str()),
            "{config}\n{stdout}"
        );
    }

    // A plugin's own absurd net limits keep only that plugin from loading.
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[plugins.echo.net]\ntimeout = \"100000m\"\n",
    );
    let (code, stdout, _) = folder.run(&["check"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "error  invalid configuration in {}: plugins.echo.net: net.timeout = 6000000s is out of range; allowed: 1ms to 3600s",
            folder.dir.path().join("capsule.toml").display()
        )),
        "{stdout}"
    );
}
