//! Turning the host's JSON argument text into a tool's argument type, with errors a model can
//! act on: the path of the offending field and serde's reason, without line/column noise.

use crate::error::CallError;
use serde::de::DeserializeOwned;

/// Parses `arguments` (a JSON object as text; empty text counts as `{}`) into `T`.
pub fn parse_arguments<T: DeserializeOwned>(arguments: &str) -> Result<T, CallError> {
    let text = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let reason = without_position(error.inner());
        CallError::InvalidArguments(if path == "." {
            reason
        } else {
            format!("`{path}`: {reason}")
        })
    })?;
    deserializer
        .end()
        .map_err(|error| CallError::InvalidArguments(without_position(&error)))?;
    Ok(value)
}

/// serde_json's message without its " at line 1 column 17" suffix, which means nothing to a
/// model that wrote a JSON object rather than a file.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    message
        .strip_suffix(&suffix)
        .map(str::to_owned)
        .unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Arguments {
        text: String,
        #[serde(default)]
        separator: Option<String>,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        #[allow(dead_code)]
        count: u32,
    }

    fn invalid(message: &str) -> Result<Arguments, CallError> {
        Err(CallError::InvalidArguments(message.into()))
    }

    #[test]
    fn parses_valid_arguments() {
        let parsed: Arguments = parse_arguments(r#"{"text": "hi", "separator": "_"}"#).unwrap();
        assert_eq!(parsed.text, "hi");
        assert_eq!(parsed.separator.as_deref(), Some("_"));
    }

    #[test]
    fn empty_text_is_an_empty_object() {
        #[derive(Deserialize)]
        struct Nothing {}
        assert!(parse_arguments::<Nothing>("  ").is_ok());
    }

    #[test]
    fn missing_field_names_the_field() {
        assert_eq!(parse_arguments(r#"{}"#), invalid("missing field `text`"));
    }

    #[test]
    fn wrong_type_gives_the_path() {
        assert_eq!(
            parse_arguments(r#"{"text": "a", "separator": 3}"#),
            invalid("`separator`: invalid type: integer `3`, expected a string")
        );
        assert_eq!(
            parse_arguments(r#"{"text": "a", "items": [{"count": 1}, {"count": -1}]}"#),
            invalid("`items[1].count`: invalid value: integer `-1`, expected u32")
        );
    }

    #[test]
    fn unknown_field_is_reported() {
        let Err(CallError::InvalidArguments(message)) =
            parse_arguments::<Arguments>(r#"{"text": "a", "sep": "_"}"#)
        else {
            panic!("expected invalid arguments");
        };
        assert!(message.contains("unknown field `sep`"), "{message}");
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        assert_eq!(
            parse_arguments(r#"{"text": "a"} x"#),
            invalid("trailing characters")
        );
    }
}
