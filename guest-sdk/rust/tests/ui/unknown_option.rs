use capsule_sdk::prelude::*;

/// Has a typo in its options.
#[tool(readonly)]
fn typo() -> String {
    String::new()
}

fn main() {}
