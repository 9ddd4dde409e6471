//! Environment variables: only those the policy lists, copied from the host's environment
//! or given literally. A plugin never sees the host's environment as a whole.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[plugins.NAME.env]` as written.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawEnv {
    /// Variables copied from the host's environment when the plugin loads, if set there.
    #[serde(default)]
    pub pass: Vec<String>,
    /// Variables with literal values.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
}

/// The variables a plugin gets, and the listed host variables that were not set.
pub struct ResolvedEnv {
    /// `(name, value)` pairs.
    pub vars: Vec<(String, String)>,
    /// Names from `pass` that the host does not have (worth a warning).
    pub missing: Vec<String>,
}

impl RawEnv {
    /// The variables the plugin gets. Listed host variables that are not set are left out.
    pub fn resolve(
        &self,
        host_env: impl Fn(&str) -> Option<String>,
    ) -> Result<ResolvedEnv, String> {
        let mut vars = Vec::new();
        let mut missing = Vec::new();
        for name in self.pass.iter().chain(self.set.keys()) {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(format!("`{name}` is not a valid environment variable name"));
            }
        }
        for name in &self.pass {
            match host_env(name) {
                Some(value) => vars.push((name.clone(), value)),
                None => missing.push(name.clone()),
            }
        }
        for (name, value) in &self.set {
            vars.retain(|(n, _)| n != name);
            vars.push((name.clone(), value.clone()));
        }
        Ok(ResolvedEnv { vars, missing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_variables_pass_and_literals_win() {
        let raw = RawEnv {
            pass: vec!["LANG".into(), "UNSET".into(), "MODE".into()],
            set: BTreeMap::from([("MODE".into(), "test".into())]),
        };
        let host = |name: &str| match name {
            "LANG" => Some("C.UTF-8".to_string()),
            "MODE" => Some("prod".to_string()),
            _ => None,
        };
        let ResolvedEnv { vars, missing } = raw.resolve(host).unwrap();
        assert_eq!(
            vars,
            vec![
                ("LANG".into(), "C.UTF-8".into()),
                ("MODE".into(), "test".into())
            ]
        );
        assert_eq!(missing, vec!["UNSET".to_string()]);
        let bad = RawEnv {
            pass: vec!["A=B".into()],
            set: BTreeMap::new(),
        };
        assert!(bad.resolve(host).is_err_and(|e| e.contains("not a valid")));
    }
}
