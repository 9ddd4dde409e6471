//! A tour of the SDK in one plugin: every kind of return value, the tool options, and the host
//! API. Build it as a component with
//! `cargo build --example tour --target wasm32-wasip2` (from `guest-sdk/rust`).

use capsule_sdk::prelude::*;
use capsule_sdk::{Content, cancelled, config, log, progress};

#[derive(Deserialize, JsonSchema)]
struct GreetArgs {
    /// Who to greet.
    name: String,
}

/// Greet someone by name, in the language set by the plugin's `greeting` config key.
#[tool(read_only, idempotent)]
fn greet(args: GreetArgs) -> String {
    let greeting = config("greeting").unwrap_or_else(|| "Hello".to_owned());
    log::debug(format!("greeting {}", args.name));
    format!("{greeting}, {}!", args.name)
}

/// Statistics of a list of numbers.
#[derive(Serialize, JsonSchema)]
struct Stats {
    /// How many numbers there were.
    count: usize,
    /// Their mean; absent for an empty list.
    #[serde(skip_serializing_if = "Option::is_none")]
    mean: Option<f64>,
}

#[derive(Deserialize, JsonSchema)]
struct StatsArgs {
    /// The numbers.
    numbers: Vec<f64>,
}

/// Compute the count and mean of a list of numbers, reporting progress as it goes and stopping
/// if the client cancels.
#[tool(name = "stats", title = "Statistics", read_only)]
fn statistics(args: StatsArgs) -> Result<Stats, ToolError> {
    let total = args.numbers.len();
    let mut sum = 0.0;
    for (i, number) in args.numbers.iter().enumerate() {
        if cancelled() {
            return Err(ToolError::new("cancelled"));
        }
        sum += number;
        if i % 1000 == 0 {
            progress(i as f64, Some(total as f64), Some("adding"));
        }
    }
    Ok(Stats {
        count: total,
        mean: (total > 0).then(|| sum / total as f64),
    })
}

/// Return a 1x1 PNG and a link to the project, to show rich content.
#[tool(read_only, idempotent, open_world = false)]
fn pixel() -> ToolOutput {
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8,
        0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00,
        0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    ToolOutput::text("a single white pixel")
        .with(Content::image(PNG, "image/png"))
        .with(Content::resource_link("https://example.com/pixel", "pixel"))
}

/// Fail on purpose, to show how a `ToolError` reaches the model.
#[tool(destructive = false)]
fn fail() -> Result<String, ToolError> {
    let number: u32 = "not a number".parse()?;
    Ok(number.to_string())
}

capsule_sdk::export_plugin!(greet, statistics, pixel, fail);
