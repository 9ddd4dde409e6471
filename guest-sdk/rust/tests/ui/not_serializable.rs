use capsule_sdk::prelude::*;

struct Plain {
    value: u32,
}

/// Returns a type that is not `Serialize`.
#[tool]
fn plain() -> Plain {
    Plain { value: 1 }
}

fn main() {}
