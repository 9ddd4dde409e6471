//! Property tests of the config parser: any text, and any TOML-ish text built from the
//! real keys with odd values (huge, negative, fractional, wrong types, unknown units),
//! parses and resolves without a panic; a parse error always gives its line and column,
//! a resolve error its key.
//!
//! `PROPTEST_CASES` sets the number of cases (default 4000, about two seconds); run longer
//! locally with e.g. `PROPTEST_CASES=100000 cargo test -p capsule --lib config::proptests`.

use proptest::prelude::*;

use super::*;
use crate::testing::proptest_config;

/// A size, a duration or a count as a string with a unit, some of them absurd.
fn with_unit() -> impl Strategy<Value = String> {
    (
        prop_oneof!["[0-9]{1,3}", "[0-9]{15,21}"],
        "( )?(B|KiB|MiB|GiB|KB|kB|MB|GB|ms|s|m|min|h|[a-zé]{0,3})",
    )
        .prop_map(|(n, unit)| format!("\"{n}{unit}\""))
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => with_unit(),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => (0u32..100).prop_map(|n| n.to_string()),
        1 => Just("18446744073709551616".to_string()),
        1 => any::<f64>().prop_map(|f| format!("{f:?}")),
        1 => prop::sample::select(vec!["inf", "nan", "true", "false", "\"ro\"", "\"rw\"", "\"${HOME}\"", "1979-05-27T07:32:00Z"]).prop_map(str::to_string),
        1 => "\"[^\"\\\\\\x00-\\x1f\\x7f]{0,12}\"",
        1 => "'[^'\\x00-\\x1f\\x7f]{0,8}'",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => scalar(),
        1 => proptest::collection::vec(scalar(), 0..3).prop_map(|v| format!("[{}]", v.join(", "))),
        1 => proptest::collection::vec((any_key(), scalar()), 0..3).prop_map(|pairs| {
            let body: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
            format!("{{ {} }}", body.join(", "))
        }),
    ]
}

fn any_key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z-]{1,8}", "\"[^\"\\\\\\x00-\\x1f\\x7f]{0,6}\""]
}

const LIMIT_KEYS: &[&str] = &[
    "fuel",
    "timeout",
    "memory",
    "table-elements",
    "instances",
    "result",
    "log-output",
];

/// A section header and the keys that belong in it (plus, sometimes, one that does not).
fn section() -> impl Strategy<Value = (String, Vec<&'static str>)> {
    let name = "[a-z]{1,2}";
    prop_oneof![
        Just((
            String::new(),
            vec!["plugins-dir", "cache-dir", "log-level", "secrets-file"]
        )),
        Just((
            "[runtime]".to_string(),
            vec![
                "max-concurrent-calls",
                "max-queued-calls",
                "memory-ceiling",
                "max-wasm-stack"
            ]
        )),
        Just(("[limits]".to_string(), LIMIT_KEYS.to_vec())),
        Just(("[ceiling]".to_string(), LIMIT_KEYS.to_vec())),
        name.prop_map(|n| (format!("[plugins.{n}.limits]"), LIMIT_KEYS.to_vec())),
        name.prop_map(|n| (format!("[profiles.{n}.limits]"), LIMIT_KEYS.to_vec())),
        name.prop_map(|n| (format!("[plugins.{n}]"), vec!["profiles", "secrets"])),
        name.prop_map(|n| (
            format!("[plugins.{n}.net]"),
            vec!["allow", "timeout", "max-response", "tcp"]
        )),
        name.prop_map(|n| (format!("[plugins.{n}.env]"), vec!["pass", "set"])),
        name.prop_map(|n| (
            format!("[[plugins.{n}.fs.mounts]]"),
            vec!["host", "guest", "mode"]
        )),
        name.prop_map(|n| (format!("[plugins.{n}.config]"), vec!["key"])),
        Just(("[secrets]".to_string(), vec!["token"])),
    ]
}

/// A value that mostly has the right type for `key`, so parsing gets past it to the checks
/// behind it, but with absurd magnitudes; sometimes any value.
fn value_for(key: &'static str) -> BoxedStrategy<String> {
    let number = || {
        prop_oneof![
            (0u64..100_000).prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
        ]
    };
    let typed: BoxedStrategy<String> = match key {
        "timeout" => (prop_oneof!["[0-9]{1,4}", "[0-9]{16,20}"], "(ms|s|m|min)")
            .prop_map(|(n, unit)| format!("\"{n}{unit}\""))
            .boxed(),
        "memory" | "result" | "log-output" | "memory-ceiling" | "max-wasm-stack"
        | "max-response" => prop_oneof![
            (
                prop_oneof!["[0-9]{1,4}", "[0-9]{16,20}"],
                "(B|KiB|MiB|GiB|KB|MB|GB)"
            )
                .prop_map(|(n, unit)| format!("\"{n}{unit}\"")),
            number(),
        ]
        .boxed(),
        "fuel" | "table-elements" | "instances" | "max-concurrent-calls" | "max-queued-calls" => {
            number().boxed()
        }
        "profiles" | "secrets" | "allow" | "tcp" | "pass" => {
            proptest::collection::vec(scalar(), 0..3)
                .prop_map(|v| format!("[{}]", v.join(", ")))
                .boxed()
        }
        _ => scalar().boxed(),
    };
    prop_oneof![4 => typed, 1 => value().boxed()].boxed()
}

fn section_text() -> impl Strategy<Value = String> {
    section().prop_flat_map(|(header, keys)| {
        let n = keys.len();
        let known = proptest::sample::subsequence(keys, 0..=n).prop_shuffle();
        let pairs = known.prop_flat_map(|known| {
            let values: Vec<BoxedStrategy<String>> = known.iter().map(|k| value_for(k)).collect();
            (
                Just(known),
                values,
                proptest::option::weighted(0.2, (any_key(), value())),
            )
        });
        pairs.prop_map(move |(known, values, extra)| {
            let mut lines = vec![header.clone()];
            lines.extend(known.iter().zip(values).map(|(k, v)| format!("{k} = {v}")));
            lines.extend(extra.map(|(k, v)| format!("{k} = {v}")));
            lines.join("\n")
        })
    })
}

fn toml_ish() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::collection::vec(section_text(), 0..5).prop_map(|s| s.join("\n")),
        1 => (proptest::collection::vec(section_text(), 1..4), ".{0,20}", any::<usize>())
            .prop_map(|(sections, noise, at)| {
                let mut text = sections.join("\n");
                text.insert_str(text.floor_char_boundary(at % (text.len() + 1)), &noise);
                text
            }),
        1 => ".{0,200}",
    ]
}

/// Parses and resolves `text` as `/etc/capsule/capsule.toml`, then resolves each plugin's
/// policy, asserting every error is located.
fn parse_and_resolve(text: &str) -> Result<(), TestCaseError> {
    let file = Path::new("/nonexistent/capsule/capsule.toml");
    let raw = match layer::layer(Some(file), text, Path::new("/nonexistent/work"), &[], &[]) {
        Ok(layered) => layered.raw,
        Err(err @ ConfigError::Parse { .. }) => {
            let message = err.to_string();
            prop_assert!(message.contains(", column "), "{}", message);
            return Ok(());
        }
        // A `${VAR}` that cannot be expanded: the key, line and column.
        Err(ConfigError::Invalid { key, message, .. }) => {
            prop_assert!(
                !key.is_empty() && message.contains(", column "),
                "{}",
                message
            );
            return Ok(());
        }
        Err(other) => {
            prop_assert!(false, "unexpected error: {}", other);
            return Ok(());
        }
    };
    match Settings::resolve(
        raw,
        Some(PathBuf::from("/nonexistent/capsule/capsule.toml")),
        Path::new("/nonexistent/work"),
        Overrides::default(),
    ) {
        Ok(settings) => {
            for name in settings.plugins.keys() {
                let wasm = Path::new("/nonexistent/plugins").join(format!("{name}.wasm"));
                if let Err(message) = settings.policy(name, &wasm) {
                    prop_assert!(message.contains(&format!("plugins.{name}")), "{}", message);
                }
            }
        }
        Err(ConfigError::Invalid { key, .. }) => prop_assert!(!key.is_empty()),
        Err(err @ ConfigError::Override { .. }) => prop_assert!(false, "no overrides: {}", err),
        // A `secrets-file` that cannot be read or parsed: the error names the file.
        Err(err @ (ConfigError::Read { .. } | ConfigError::Parse { .. })) => {
            // (`secrets-file = "${HOME}"` names the folder it expanded to.)
            let message = err.to_string();
            prop_assert!(
                message.contains("/nonexistent/capsule/") || message.contains(" /"),
                "{}",
                message
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config(4000))]

    #[test]
    fn any_config_text_parses_or_fails_with_a_location(text in toml_ish()) {
        parse_and_resolve(&text)?;
    }
}

/// Cases worth keeping whatever the generator does: each once broke or nearly broke.
#[test]
fn seeded_cases_parse_or_fail_with_a_location() {
    for text in [
        // A duration in minutes whose seconds overflow u64.
        "[limits]\ntimeout = \"999999999999999999m\"",
        "[plugins.a.net]\ntimeout = \"307445734561825861min\"",
        // One past u64::MAX, as a number and as a size.
        "[limits]\nfuel = 18446744073709551616",
        "[limits]\nmemory = \"18446744073709551616\"",
        "[limits]\nmemory = \"17179869184GiB\"",
        "[runtime]\nmemory-ceiling = -1",
        "[limits]\ntimeout = 1e400",
        "[[plugins.a.fs.mounts]]\nhost = \"\"\nguest = \"\"\nmode = \"rw\"",
        "[plugins.\"\"]\n",
        "x = \"\u{0}\"",
        // `${VAR}` expanded in a path, and a `${` left open.
        "secrets-file = \"${HOME}\"",
        "[plugins.a.config]\nx = \"${\"",
    ] {
        parse_and_resolve(text).unwrap_or_else(|err| panic!("{text:?}: {err}"));
    }
}
