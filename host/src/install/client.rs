//! The MCP clients `capsule install` knows: where each keeps its server list, under which
//! key, and the shape of one stdio entry.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// A client whose config `capsule install` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    /// Claude Code: `~/.claude.json` (user) or `.mcp.json` (project), `mcpServers`.
    ClaudeCode,
    /// Claude Desktop: `claude_desktop_config.json` in its settings folder, `mcpServers`.
    ClaudeDesktop,
    /// Cursor: `~/.cursor/mcp.json` (user) or `.cursor/mcp.json` (project), `mcpServers`.
    Cursor,
    /// VS Code: `.vscode/mcp.json` (project) or the user profile's `mcp.json`, `servers`.
    Vscode,
    /// Gemini CLI: `~/.gemini/settings.json` (user) or `.gemini/settings.json`, `mcpServers`.
    Gemini,
}

/// Whose config: the user's (every project) or this project's (the working folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// The user's config, under `$HOME`.
    User,
    /// The project's config, under the working folder.
    Project,
}

/// Where a config file lives and what the entry looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The config file.
    pub path: PathBuf,
    /// The key of the servers object at the top level (`mcpServers` or `servers`).
    pub key: &'static str,
}

impl Client {
    /// The client's name for people.
    pub fn title(self) -> &'static str {
        match self {
            Client::ClaudeCode => "Claude Code",
            Client::ClaudeDesktop => "Claude Desktop",
            Client::Cursor => "Cursor",
            Client::Vscode => "VS Code",
            Client::Gemini => "Gemini CLI",
        }
    }

    /// The scope used when none is given: VS Code's is the project, the others' the user.
    pub fn default_scope(self) -> Scope {
        match self {
            Client::Vscode => Scope::Project,
            _ => Scope::User,
        }
    }

    /// The config file of `scope`: under `dirs` for the user scope, under `cwd` (the
    /// project) for the project scope. `None` when the client has no config of that scope
    /// or `$HOME` is unknown.
    pub fn location(self, scope: Scope, dirs: &Dirs, cwd: &Path) -> Option<Location> {
        let home = dirs.home.as_deref();
        let servers = |path: PathBuf| Location {
            path,
            key: "mcpServers",
        };
        Some(match (self, scope) {
            (Client::ClaudeCode, Scope::User) => servers(home?.join(".claude.json")),
            (Client::ClaudeCode, Scope::Project) => servers(cwd.join(".mcp.json")),
            (Client::ClaudeDesktop, Scope::User) => {
                servers(dirs.app_config()?.join("Claude/claude_desktop_config.json"))
            }
            (Client::ClaudeDesktop, Scope::Project) => return None,
            (Client::Cursor, Scope::User) => servers(home?.join(".cursor/mcp.json")),
            (Client::Cursor, Scope::Project) => servers(cwd.join(".cursor/mcp.json")),
            (Client::Vscode, Scope::User) => Location {
                path: dirs.app_config()?.join("Code/User/mcp.json"),
                key: "servers",
            },
            (Client::Vscode, Scope::Project) => Location {
                path: cwd.join(".vscode/mcp.json"),
                key: "servers",
            },
            (Client::Gemini, Scope::User) => servers(home?.join(".gemini/settings.json")),
            (Client::Gemini, Scope::Project) => servers(cwd.join(".gemini/settings.json")),
        })
    }

    /// The stdio server entry that runs `command` with `args`.
    pub fn entry(self, command: &Path, args: &[String]) -> Entry {
        Entry {
            // Both write `"type": "stdio"` themselves (`claude mcp add`, VS Code's UI).
            kind: matches!(self, Client::ClaudeCode | Client::Vscode).then_some("stdio"),
            command: command.to_string_lossy().into_owned(),
            args: args.to_vec(),
        }
    }
}

/// One stdio server entry, its keys in the order clients write them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// `"stdio"` for the clients that write the transport type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// The absolute path of the `capsule` binary.
    pub command: String,
    /// `serve` and its options.
    pub args: Vec<String>,
}

/// The user's folders that client configs live in.
#[derive(Debug, Clone, Default)]
pub struct Dirs {
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME` (Linux desktop apps keep their settings there when it is set).
    pub xdg_config: Option<PathBuf>,
    /// `%APPDATA%` (Windows).
    pub app_data: Option<PathBuf>,
}

impl Dirs {
    /// The folders of this process's environment; empty or relative values count as unset.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        Self {
            home: var("HOME").or_else(|| var("USERPROFILE")),
            xdg_config: var("XDG_CONFIG_HOME"),
            app_data: var("APPDATA"),
        }
    }

    /// Where desktop apps (Electron's `appData`) keep settings: `~/Library/Application
    /// Support` on macOS, `%APPDATA%` on Windows, `$XDG_CONFIG_HOME` or `~/.config` elsewhere.
    fn app_config(&self) -> Option<PathBuf> {
        if cfg!(target_os = "macos") {
            Some(self.home.as_ref()?.join("Library/Application Support"))
        } else if cfg!(windows) {
            self.app_data.clone()
        } else {
            self.xdg_config
                .clone()
                .or_else(|| Some(self.home.as_ref()?.join(".config")))
        }
    }
}
