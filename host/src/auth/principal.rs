//! The authenticated caller of one HTTP request.

use std::sync::Arc;

use rmcp::service::{RequestContext, RoleServer};

/// An authenticated caller: a name for logs and audit, and the OAuth scopes its token
/// carries. Put into the HTTP request's extensions by authentication. Shared, not copied:
/// a clone (per request, per call) counts references and allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who: the static token's name, or the JWT's `sub` (prefixed by nothing).
    pub name: Arc<str>,
    /// The scopes the credential grants, as written in it (`scope` claim split on spaces).
    pub scopes: Arc<[String]>,
}

impl Principal {
    /// The principal `name` with `scopes`.
    pub fn new(name: impl Into<Arc<str>>, scopes: impl Into<Arc<[String]>>) -> Self {
        Self {
            name: name.into(),
            scopes: scopes.into(),
        }
    }

    /// The principal of the HTTP request an MCP request came in, if it was authenticated.
    /// `None` over stdio and on HTTP without `[auth]`.
    pub fn of_request(context: &RequestContext<RoleServer>) -> Option<&Principal> {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
    }

    /// Whether the credential carries `scope` exactly.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}
