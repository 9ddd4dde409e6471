//! `{{name}}`: a Capsule tool plugin. Each `#[tool]` function is one MCP tool, exposed by the
//! host as `{{name}}_<function>`.

use capsule_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GreetArgs {
    /// Who to greet.
    name: String,
    /// How many exclamation marks to add (default 1).
    #[serde(default)]
    excitement: Option<u8>,
}

/// Greet someone by name. Replace this tool with your own: the doc comment is what the model
/// reads to decide when to call it.
#[tool(title = "Greet", read_only, idempotent)]
fn greet(args: GreetArgs) -> Result<String, ToolError> {
    if args.name.trim().is_empty() {
        return Err(ToolError::invalid_arguments("`name` must not be empty"));
    }
    let marks = "!".repeat(usize::from(args.excitement.unwrap_or(1)));
    Ok(format!("Hello, {}{marks}", args.name.trim()))
}

export_plugin!(greet);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_by_name() {
        let args = GreetArgs {
            name: "Ada".into(),
            excitement: Some(2),
        };
        assert_eq!(greet(args).unwrap(), "Hello, Ada!!");
    }

    #[test]
    fn refuses_an_empty_name() {
        let args = GreetArgs {
            name: " ".into(),
            excitement: None,
        };
        assert!(greet(args).is_err());
    }
}
