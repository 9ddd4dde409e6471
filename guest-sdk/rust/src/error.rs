//! Errors a tool returns, and the three ways a call can fail as the host sees them.

use std::fmt;

/// Why a tool could not do its job. The message is shown to the model, so say what went wrong
/// and, where possible, what to change.
///
/// Any `std::error::Error` converts into a `ToolError` (its message and sources, joined by
/// `: `), so `?` works on `regex::Error`, `serde_json::Error` and the like.
pub struct ToolError {
    kind: ToolErrorKind,
    message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ToolErrorKind {
    Failed,
    InvalidArguments,
}

impl ToolError {
    /// The tool ran and failed; reported as the WIT `failed` error.
    pub fn new(message: impl fmt::Display) -> Self {
        ToolError {
            kind: ToolErrorKind::Failed,
            message: message.to_string(),
        }
    }

    /// The arguments passed the schema but make no sense (a pattern that does not compile, a
    /// group that does not exist); reported as `invalid-arguments` so the model fixes its call.
    pub fn invalid_arguments(message: impl fmt::Display) -> Self {
        ToolError {
            kind: ToolErrorKind::InvalidArguments,
            message: message.to_string(),
        }
    }

    /// The message the model will read.
    pub fn message(&self) -> &str {
        &self.message
    }
}

// `ToolError` deliberately does not implement `std::error::Error`: that is what lets this blanket
// conversion coexist with the reflexive `From<T> for T` (the same trick `anyhow` uses).
impl<E: std::error::Error> From<E> for ToolError {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let cause = cause.to_string();
            if !message.contains(&cause) {
                message.push_str(": ");
                message.push_str(&cause);
            }
            source = cause_of(source);
        }
        ToolError::new(message)
    }
}

fn cause_of<'a>(
    error: Option<&'a (dyn std::error::Error + 'static)>,
) -> Option<&'a (dyn std::error::Error + 'static)> {
    error.and_then(std::error::Error::source)
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish()
    }
}

impl From<ToolError> for CallError {
    fn from(error: ToolError) -> Self {
        match error.kind {
            ToolErrorKind::Failed => CallError::Failed(error.message),
            ToolErrorKind::InvalidArguments => CallError::InvalidArguments(error.message),
        }
    }
}

/// Why a call produced no result: the WIT `call-error`, as plain Rust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// No tool of that name in this plugin.
    UnknownTool(String),
    /// The arguments were rejected; the message says what to change.
    InvalidArguments(String),
    /// The tool failed; the message is shown to the model.
    Failed(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::UnknownTool(name) => write!(f, "unknown tool `{name}`"),
            CallError::InvalidArguments(message) => write!(f, "invalid arguments: {message}"),
            CallError::Failed(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CallError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("could not read the input")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn std_errors_convert_with_their_sources() {
        let error: ToolError = Outer(std::io::Error::other("disk on fire")).into();
        assert_eq!(error.message(), "could not read the input: disk on fire");
        assert_eq!(
            CallError::from(error),
            CallError::Failed("could not read the input: disk on fire".into())
        );
    }

    #[test]
    fn invalid_arguments_keeps_its_kind() {
        let error = ToolError::invalid_arguments("group 3 does not exist");
        assert_eq!(
            CallError::from(error),
            CallError::InvalidArguments("group 3 does not exist".into())
        );
    }
}
