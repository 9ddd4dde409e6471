//! The authenticated caller of one HTTP request.

use rmcp::service::{RequestContext, RoleServer};

/// An authenticated caller: a name for logs and audit, and the OAuth scopes its token
/// carries. Put into the HTTP request's extensions by authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who: the static token's name, or the JWT's `sub` (prefixed by nothing).
    pub name: String,
    /// The scopes the credential grants, as written in it (`scope` claim split on spaces).
    pub scopes: Vec<String>,
}

impl Principal {
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
