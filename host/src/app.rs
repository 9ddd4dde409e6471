//! The assembled host: settings, runtime and the loaded tool registry. Every front end
//! (stdio, the one-shot CLI commands, later HTTP) starts from one [`App`].

use std::sync::Arc;

use crate::audit::{Audit, AuditError};
use crate::config::{Compiler, Settings};
use crate::loader::{self, FolderError, Problem};
use crate::registry::{Registry, ToolSet};
use crate::runtime::{Runtime, RuntimeError};

/// Why the host could not start at all (as opposed to one plugin failing to load,
/// which is a [`Problem`] and leaves the others serving).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The engine could not be created.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The plugins folder could not be read.
    #[error(transparent)]
    Folder(#[from] FolderError),
}

/// A started host.
pub struct App {
    /// The resolved settings it runs with.
    pub settings: Settings,
    /// The engine and the call machinery.
    pub runtime: Arc<Runtime>,
    /// The tools being served.
    pub registry: Arc<Registry>,
    /// What went wrong while loading the plugins folder.
    pub problems: Vec<Problem>,
    /// The audit log; off until [`App::open_audit`] (only `capsule serve` opens it).
    pub audit: Audit,
}

impl App {
    /// Creates the runtime and loads every plugin in the plugins folder, compiling
    /// optimized code only (and caching it): with `runtime.compiler = "tiered"` too, as
    /// one-shot commands and `serve --locked` serve nothing before every plugin is loaded.
    pub async fn start(settings: Settings) -> Result<Self, StartError> {
        let cache_dir = settings.cache_dir.clone();
        let mut runtime_settings = settings.runtime.clone();
        if runtime_settings.compiler == Compiler::Tiered {
            runtime_settings.compiler = Compiler::Cranelift;
        }
        let runtime = Arc::new(Runtime::new(&runtime_settings, cache_dir)?);
        let report = loader::load_folder(&runtime, &settings).await?;
        Ok(Self {
            registry: Arc::new(Registry::new(report.tools)),
            problems: report.problems,
            runtime,
            settings,
            audit: Audit::off(),
        })
    }

    /// Opens the audit log `[audit]` asks for and records what was loaded: the
    /// configuration (`config.loaded`), then each plugin (`plugin.loaded` /
    /// `plugin.failed`, by name).
    pub fn open_audit(&mut self) -> Result<(), AuditError> {
        self.audit = Audit::open(&self.settings.audit)?;
        self.audit.config_loaded(&self.settings);
        self.audit
            .plugins(self.registry.snapshot().plugins(), &self.problems);
        Ok(())
    }

    /// Creates the runtime and an empty registry; `capsule serve` then loads the plugins
    /// while it already answers ([`crate::loading`]).
    pub fn start_empty(settings: Settings) -> Result<Self, StartError> {
        let cache_dir = settings.cache_dir.clone();
        let runtime = Arc::new(Runtime::new(&settings.runtime, cache_dir)?);
        Ok(Self {
            registry: Arc::new(Registry::new(ToolSet::default())),
            problems: Vec::new(),
            runtime,
            settings,
            audit: Audit::off(),
        })
    }

    /// Whether any plugin or tool failed to load.
    pub fn has_errors(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.severity == loader::Severity::Error)
    }
}
