//! Helpers shared by the unit and property tests (compiled only for tests).

use proptest::test_runner::Config;

/// Property-test settings running `cases` cases unless `PROPTEST_CASES` says otherwise:
/// the defaults keep each property to a few seconds in a debug build (CI runs them all);
/// `PROPTEST_CASES=100000` runs a long local session. Failures are saved under
/// `host/proptest-regressions/` (commit them: they are replayed first on every run).
pub fn proptest_config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        ..Config::default()
    }
}

/// The runtime and the loaded fixture `name` (`target/fixtures/NAME.wasm`, built by
/// `cargo xtask plugins`) under the configuration `config` (TOML of `capsule.toml`),
/// with the resolved settings.
pub async fn load_fixture(
    name: &str,
    config: &str,
) -> (
    crate::runtime::Runtime,
    std::sync::Arc<crate::runtime::Plugin>,
    crate::config::Settings,
) {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures");
    let wasm = fixtures.join(format!("{name}.wasm"));
    assert!(
        wasm.is_file(),
        "no {}: run `cargo xtask plugins`",
        wasm.display()
    );
    let raw: crate::config::RawConfig = toml::from_str(config).expect("valid config");
    let settings =
        crate::config::Settings::resolve(raw, None, &fixtures, crate::config::Overrides::default())
            .expect("config resolves");
    // Optimized code only, unless the test asks for a compiler: a test of a tiered
    // runtime holds the optimizer itself (`runtime::tier`).
    let mut runtime_settings = settings.runtime.clone();
    if !config.contains("compiler") {
        runtime_settings.compiler = crate::config::Compiler::Cranelift;
    }
    let runtime = crate::runtime::Runtime::new(&runtime_settings, None).expect("runtime");
    let (policy, _) = settings.policy(name, &wasm).expect("policy");
    let plugin = runtime.load(name, &wasm, policy).await.expect("load");
    (runtime, std::sync::Arc::new(plugin), settings)
}

/// A component of `world` in the WIT package `wit` (source text) whose core module does
/// nothing but has every import and export the world names (`wit-component`'s dummy
/// module): for tests of what wasmtime makes of a component's types and layout.
pub fn dummy_component(wit: &str, world: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve
        .push_str("test.wit", wit)
        .unwrap_or_else(|err| panic!("WIT does not parse: {err:#}\n{wit}"));
    let world = resolve
        .select_world(&[package], Some(world))
        .expect("the world is in the package");
    let mut module =
        wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("embed metadata");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|err| panic!("cannot encode a component: {err:#}\n{wit}"))
}
