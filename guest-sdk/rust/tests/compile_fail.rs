//! The compile errors a tool author sees for common mistakes, as golden files
//! (`tests/ui/*.stderr`). After changing a message: `TRYBUILD=overwrite cargo test`, then review
//! the diff.

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn mistakes_fail_with_clear_messages() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
