//! The host's imports (`capsule:plugin/host`), wrapped. In a wasm build they call the host; in a
//! native build (unit tests) they use the stand-ins in [`crate::testing`], so tool code that
//! logs, reports progress or reads config runs unchanged under `cargo test`.

/// Log levels, matching the WIT `level` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Writing to the host's log (its stderr, tagged with the plugin's name). Plugins have no
/// stdout/stderr of their own worth relying on; use these.
pub mod log {
    use super::Level;

    pub fn trace(message: impl AsRef<str>) {
        super::imports::log(Level::Trace, message.as_ref());
    }

    pub fn debug(message: impl AsRef<str>) {
        super::imports::log(Level::Debug, message.as_ref());
    }

    pub fn info(message: impl AsRef<str>) {
        super::imports::log(Level::Info, message.as_ref());
    }

    pub fn warn(message: impl AsRef<str>) {
        super::imports::log(Level::Warn, message.as_ref());
    }

    pub fn error(message: impl AsRef<str>) {
        super::imports::log(Level::Error, message.as_ref());
    }
}

/// Reports progress of the current call to the MCP client (dropped if the client did not ask
/// for progress). `total` is `None` when unknown.
pub fn progress(done: f64, total: Option<f64>, message: Option<&str>) {
    imports::progress(done, total, message);
}

/// True once the client has cancelled the current call. Long loops should check it and stop,
/// returning whatever they have or a `ToolError`.
pub fn cancelled() -> bool {
    imports::cancelled()
}

/// A per-plugin setting, or a secret granted to this plugin, by key.
pub fn config(key: &str) -> Option<String> {
    imports::config(key)
}

/// Who called the current tool: the principal authentication established for the HTTP
/// request. Never the caller's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The principal's name: a static token's name, or a JWT's `sub`.
    pub name: String,
    /// The OAuth scopes its credential grants.
    pub scopes: Vec<String>,
}

impl Caller {
    /// Whether the caller's credential grants `scope` exactly.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The authenticated caller of the current call. `None` over stdio, on HTTP without
/// `[auth]`, and unless the operator granted the plugin `caller-identity = true`.
pub fn caller() -> Option<Caller> {
    imports::caller()
}

#[cfg(target_arch = "wasm32")]
mod imports {
    use super::Level;
    use crate::export::bindings::capsule::plugin::host;
    use crate::export::bindings::capsule::plugin::types::Level as WitLevel;

    pub fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => WitLevel::Trace,
            Level::Debug => WitLevel::Debug,
            Level::Info => WitLevel::Info,
            Level::Warn => WitLevel::Warn,
            Level::Error => WitLevel::Error,
        };
        host::log(level, message);
    }

    pub fn progress(done: f64, total: Option<f64>, message: Option<&str>) {
        host::progress(done, total, message);
    }

    pub fn cancelled() -> bool {
        host::cancelled()
    }

    pub fn config(key: &str) -> Option<String> {
        host::config(key)
    }

    pub fn caller() -> Option<super::Caller> {
        host::caller().map(|principal| super::Caller {
            name: principal.name,
            scopes: principal.scopes,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imports {
    pub use crate::testing::stand_ins::{caller, cancelled, config, log, progress};
}
