use capsule_sdk::prelude::*;

/// A tool with a name no client accepts.
#[tool(name = "has spaces")]
fn spaced() -> String {
    String::new()
}

fn main() {}
