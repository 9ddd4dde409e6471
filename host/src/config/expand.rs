//! `${VAR}` in string values of `capsule.toml`: replaced by the host environment
//! variable's value when the config is read. `$${` is a literal `${`; any other `$` is
//! kept as written. `[secrets]` expands its own values (a missing variable there only
//! stops the plugins granted the secret; see [`crate::capability::secrets`]).

/// Why a value cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// `${VAR}` names a variable that is not set.
    Missing(String),
    /// `${` without a closing `}`.
    Unterminated,
    /// `${...}` holds something that is not a variable name.
    BadName(String),
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(var) => write!(
                f,
                "environment variable {var} is not set; set it, or write $${{ for a literal ${{"
            ),
            Self::Unterminated => {
                write!(f, "`${{` has no closing `}}`; write $${{ for a literal ${{")
            }
            Self::BadName(name) => write!(
                f,
                "`${{{name}}}` is not a variable name (letters, digits and _); write $${{ for a literal ${{"
            ),
        }
    }
}

/// `template` with every `${VAR}` replaced, or `None` when it has nothing to expand.
pub fn expand(
    template: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, ExpandError> {
    if !template.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or(ExpandError::Unterminated)?;
            let name = &body[..end];
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ExpandError::BadName(name.to_string()));
            }
            out.push_str(&env(name).ok_or_else(|| ExpandError::Missing(name.to_string()))?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db.internal".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn variables_are_replaced_and_double_dollar_brace_is_a_literal() {
        assert_eq!(expand("plain $5", env), Ok(None));
        assert_eq!(
            expand("https://${HOST}:8080/${EMPTY}x", env),
            Ok(Some("https://db.internal:8080/x".into()))
        );
        assert_eq!(expand("$${HOST}", env), Ok(Some("${HOST}".into())));
        assert_eq!(
            expand("cost $ ${HOST}", env),
            Ok(Some("cost $ db.internal".into()))
        );
    }

    #[test]
    fn a_missing_or_malformed_reference_is_an_error_naming_it() {
        assert_eq!(
            expand("${NOPE}", env),
            Err(ExpandError::Missing("NOPE".into()))
        );
        assert_eq!(
            ExpandError::Missing("NOPE".into()).to_string(),
            "environment variable NOPE is not set; set it, or write $${ for a literal ${"
        );
        assert_eq!(expand("${HOST", env), Err(ExpandError::Unterminated));
        assert_eq!(
            expand("${a b}", env),
            Err(ExpandError::BadName("a b".into()))
        );
    }
}
