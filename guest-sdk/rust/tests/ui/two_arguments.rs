use capsule_sdk::prelude::*;

/// Takes two arguments.
#[tool]
fn two(a: String, b: String) -> String {
    a + &b
}

fn main() {}
