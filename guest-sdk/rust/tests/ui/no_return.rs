use capsule_sdk::prelude::*;

/// Returns nothing.
#[tool]
fn nothing() {}

fn main() {}
