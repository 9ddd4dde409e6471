//! Secrets: named values defined once (`[secrets]`, from the environment with `${VAR}` or
//! literally) and handed only to the plugins whose policy names them, through the
//! `host.config(name)` import. Their values never appear in logs, errors or `Debug` output.

use std::collections::BTreeMap;
use std::fmt;

/// A secret value. `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for handing to the plugin that was granted it. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A secret as defined: its value, or why it has none (a `${VAR}` that is not set). A
/// broken secret only stops the plugins that are granted it.
pub type Defined = BTreeMap<String, Result<Secret, String>>;

/// Expands `${VAR}` references in every secret definition of `[secrets]`.
pub fn resolve(
    raw: &BTreeMap<String, String>,
    host_env: impl Fn(&str) -> Option<String>,
) -> Defined {
    raw.iter()
        .map(|(name, template)| {
            let value = expand(template, &host_env).map(Secret).map_err(|var| {
                format!("secrets.{name}: environment variable {var} is not set; export it or define the secret another way")
            });
            (name.clone(), value)
        })
        .collect()
}

/// Replaces every `${VAR}` with the variable's value; `$$` is a literal `$`. Returns the
/// name of the first variable that is not set.
fn expand(template: &str, host_env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{')
            && let Some(end) = body.find('}')
        {
            let var = &body[..end];
            out.push_str(&host_env(var).ok_or_else(|| var.to_string())?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Picks the secrets a plugin's policy names.
pub fn grant(names: &[String], defined: &Defined) -> Result<BTreeMap<String, Secret>, String> {
    names
        .iter()
        .map(|name| match defined.get(name) {
            Some(Ok(secret)) => Ok((name.clone(), secret.clone())),
            Some(Err(why)) => Err(why.clone()),
            None => Err(format!(
                "no secret named `{name}`; define it under [secrets] (defined: {})",
                crate::units::list_or_none(defined.keys())
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cr3t".to_string())
    }

    #[test]
    fn expands_variables_and_redacts_debug() {
        let raw = BTreeMap::from([
            ("api".to_string(), "Bearer ${TOKEN}".to_string()),
            ("price".to_string(), "$$5 and $x".to_string()),
        ]);
        let secrets = grant(&["api".into(), "price".into()], &resolve(&raw, env)).unwrap();
        assert_eq!(secrets["api"].expose(), "Bearer s3cr3t");
        assert_eq!(secrets["price"].expose(), "$5 and $x");
        assert_eq!(
            format!("{:?}", secrets),
            r#"{"api": <redacted>, "price": <redacted>}"#
        );
    }

    #[test]
    fn missing_variables_and_unknown_grants_are_named() {
        let raw = BTreeMap::from([("api".to_string(), "${NOPE}".to_string())]);
        assert_eq!(
            grant(&["api".into()], &resolve(&raw, env)).unwrap_err(),
            "secrets.api: environment variable NOPE is not set; export it or define the secret another way"
        );
        let err = grant(&["api".into()], &BTreeMap::new()).unwrap_err();
        assert_eq!(
            err,
            "no secret named `api`; define it under [secrets] (defined: none)"
        );
    }
}
