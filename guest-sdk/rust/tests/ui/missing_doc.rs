use capsule_sdk::prelude::*;

#[tool]
fn undocumented() -> String {
    String::new()
}

fn main() {}
