use capsule_sdk::prelude::*;

/// One.
#[tool(name = "same")]
fn one() -> String {
    String::new()
}

/// Two.
#[tool(name = "same")]
fn two() -> String {
    String::new()
}

capsule_sdk::export_plugin!(one, two);

fn main() {}
