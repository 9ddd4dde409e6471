//! `capsule auth add-token NAME --scopes …`: a new random static token, whose salted hash
//! goes into the config file as `[auth.tokens.NAME]` with `toml_edit` (the rest of the
//! file is kept as written). The token itself is returned once, to be printed, and stored
//! nowhere.

use std::path::{Path, PathBuf};

use toml_edit::{Array, DocumentMut, Item, Table, value};

use super::static_tokens;

/// Why no token was added. Each message names the file and what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum AddTokenError {
    /// The name cannot be a token's name.
    #[error(
        "`{0}` cannot name a token: use letters, digits, `-` and `_` (it is the principal's name in logs and the key in [auth.tokens.NAME])"
    )]
    BadName(String),
    /// A scope that is not one.
    #[error(
        "`{0}` is not a scope; a scope is printable ASCII without spaces, `\"` or `\\`, e.g. tools:call"
    )]
    BadScope(String),
    /// The token exists and `--force` was not given.
    #[error(
        "{} already has [auth.tokens.{name}]; pass --force to replace it (the old token stops working), or choose another name",
        path.display()
    )]
    Exists {
        /// The name.
        name: String,
        /// The config file.
        path: PathBuf,
    },
    /// The file could not be read, parsed, or written, or `auth` is not a table there.
    #[error("cannot add token `{name}` to {}: {message}", path.display())]
    File {
        /// The name.
        name: String,
        /// The config file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Adds token `name` with `scopes` to `config_file` (created if missing) and returns the
/// token. An existing `name` is replaced only with `force`.
pub fn add_token(
    config_file: &Path,
    name: &str,
    scopes: &[String],
    force: bool,
) -> Result<String, AddTokenError> {
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.contains("__");
    if !valid_name {
        return Err(AddTokenError::BadName(name.to_string()));
    }
    if let Some(bad) = scopes.iter().find(|s| !super::is_scope(s)) {
        return Err(AddTokenError::BadScope(bad.clone()));
    }
    let file_error = |message: String| AddTokenError::File {
        name: name.to_string(),
        path: config_file.to_path_buf(),
        message,
    };
    let text = match std::fs::read_to_string(config_file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(file_error(e.to_string())),
    };
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| file_error(e.to_string()))?;
    let not_table = |key: &str| {
        file_error(format!(
            "`{key}` is not written as a [{key}] table there; add [auth.tokens.{name}] by hand"
        ))
    };
    let auth = doc
        .as_table_mut()
        .entry("auth")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| not_table("auth"))?;
    let tokens = auth
        .entry("tokens")
        .or_insert_with(|| {
            let mut tokens = Table::new();
            tokens.set_implicit(true);
            Item::Table(tokens)
        })
        .as_table_mut()
        .ok_or_else(|| not_table("auth.tokens"))?;
    if tokens.contains_key(name) && !force {
        return Err(AddTokenError::Exists {
            name: name.to_string(),
            path: config_file.to_path_buf(),
        });
    }
    let (token, hash) = static_tokens::generate().map_err(file_error)?;
    let mut entry = Table::new();
    entry.insert("hash", value(hash.to_string()));
    entry.insert("scopes", value(scopes.iter().collect::<Array>()));
    tokens.insert(name, Item::Table(entry));
    std::fs::write(config_file, doc.to_string()).map_err(|e| file_error(e.to_string()))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenHash;

    #[test]
    fn the_hash_is_written_and_the_rest_of_the_file_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("capsule.toml");
        let before = "# my config\nlog-level = \"debug\" # keep me\n\n[server]\nport = 9000\n";
        std::fs::write(&file, before).unwrap();
        let token = add_token(&file, "ci", &["mcp".into(), "tools:call".into()], false).unwrap();
        let after = std::fs::read_to_string(&file).unwrap();
        assert!(after.starts_with(before), "{after}");
        assert!(!after.contains(&token));
        let doc: toml::Value = toml::from_str(&after).unwrap();
        let entry = &doc["auth"]["tokens"]["ci"];
        let hash: TokenHash = entry["hash"].as_str().unwrap().parse().unwrap();
        assert!(hash.matches(&token));
        assert_eq!(
            entry["scopes"],
            toml::Value::Array(vec!["mcp".into(), "tools:call".into()])
        );

        let again = add_token(&file, "ci", &[], false).unwrap_err();
        assert_eq!(
            again.to_string(),
            format!(
                "{} already has [auth.tokens.ci]; pass --force to replace it (the old token stops working), or choose another name",
                file.display()
            )
        );
        let replaced = add_token(&file, "ci", &[], true).unwrap();
        let doc: toml::Value = toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let hash: TokenHash = doc["auth"]["tokens"]["ci"]["hash"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(hash.matches(&replaced) && !hash.matches(&token));
    }

    #[test]
    fn bad_names_and_scopes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("capsule.toml");
        assert_eq!(
            add_token(&file, "a.b", &[], false).unwrap_err().to_string(),
            "`a.b` cannot name a token: use letters, digits, `-` and `_` (it is the principal's name in logs and the key in [auth.tokens.NAME])"
        );
        assert_eq!(
            add_token(&file, "ci", &["a b".into()], false)
                .unwrap_err()
                .to_string(),
            "`a b` is not a scope; a scope is printable ASCII without spaces, `\"` or `\\`, e.g. tools:call"
        );
        assert!(!file.exists());
    }
}
