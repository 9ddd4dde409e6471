//! OAuth 2.0 Protected Resource Metadata (RFC 9728): what a client fetches to learn which
//! authorization servers issue tokens for this resource, and where it finds that document
//! (the `resource_metadata` of every 401).

use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::config::auth::AuthSettings;

/// The well-known path of the metadata document (RFC 9728 §3).
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// This server as a protected resource.
#[derive(Debug, Clone)]
pub struct ResourceMetadata {
    resource: String,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
}

impl ResourceMetadata {
    /// The metadata of `settings`; the resource defaults to `http://LOCAL{path}`.
    pub fn new(settings: &AuthSettings, local: SocketAddr, path: &str) -> Self {
        let resource = settings
            .resource
            .clone()
            .unwrap_or_else(|| format!("http://{local}{path}"));
        Self {
            resource,
            authorization_servers: settings.authorization_servers.clone(),
            scopes_supported: settings.required_scopes.clone(),
        }
    }

    /// The resource identifier.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The document's URL: the resource's origin, the well-known path, then the
    /// resource's path (RFC 9728 §3.1).
    pub fn url(&self) -> String {
        let (origin, path) = split_resource(&self.resource);
        format!(
            "{origin}{WELL_KNOWN}{}",
            if path == "/" { "" } else { path }
        )
    }

    /// The local paths the document is served at: the bare well-known path, and suffixed
    /// with the endpoint's path and the resource's (they differ behind a path-rewriting proxy).
    pub fn paths(&self, endpoint: &str) -> Vec<String> {
        let (_, resource_path) = split_resource(&self.resource);
        let mut paths = vec![WELL_KNOWN.to_string()];
        for suffix in [endpoint, resource_path] {
            let path = format!("{WELL_KNOWN}{suffix}");
            if suffix != "/" && !paths.contains(&path) {
                paths.push(path);
            }
        }
        paths
    }

    /// The JSON document.
    pub fn document(&self) -> Value {
        json!({
            "resource": self.resource,
            "authorization_servers": self.authorization_servers,
            "scopes_supported": self.scopes_supported,
            "bearer_methods_supported": ["header"],
        })
    }
}

/// `https://host:port` and `/path` of an absolute URL (the path without query).
fn split_resource(resource: &str) -> (&str, &str) {
    let after_scheme = resource.find("://").map_or(0, |i| i + 3);
    match resource[after_scheme..].find('/') {
        Some(i) => {
            let (origin, rest) = resource.split_at(after_scheme + i);
            (origin, rest.split('?').next().unwrap_or("/"))
        }
        None => (resource.split('?').next().unwrap_or(resource), "/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(resource: Option<&str>) -> ResourceMetadata {
        let settings = AuthSettings {
            resource: resource.map(str::to_owned),
            authorization_servers: vec!["https://auth.example.com".into()],
            required_scopes: vec!["mcp".into()],
            tokens: vec![],
            jwt: None,
        };
        ResourceMetadata::new(&settings, "127.0.0.1:8080".parse().unwrap(), "/mcp")
    }

    #[test]
    fn the_document_url_is_derived_from_the_resource() {
        let local = metadata(None);
        assert_eq!(local.resource(), "http://127.0.0.1:8080/mcp");
        assert_eq!(
            local.url(),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            local.paths("/mcp"),
            [
                "/.well-known/oauth-protected-resource",
                "/.well-known/oauth-protected-resource/mcp"
            ]
        );
        let proxied = metadata(Some("https://tools.example.com/api/mcp"));
        assert_eq!(
            proxied.url(),
            "https://tools.example.com/.well-known/oauth-protected-resource/api/mcp"
        );
        assert_eq!(proxied.paths("/mcp").len(), 3);
        let root = metadata(Some("https://tools.example.com"));
        assert_eq!(
            root.url(),
            "https://tools.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            root.document(),
            json!({
                "resource": "https://tools.example.com",
                "authorization_servers": ["https://auth.example.com"],
                "scopes_supported": ["mcp"],
                "bearer_methods_supported": ["header"],
            })
        );
    }
}
