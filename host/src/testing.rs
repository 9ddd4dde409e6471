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
