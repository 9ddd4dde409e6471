//! Command-line arguments and the commands behind them. Every global option can also be
//! set with a `CAPSULE_*` environment variable; the command line wins over the
//! environment, which wins over `capsule.toml`, which wins over the defaults.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use capsule::app::App;
use capsule::config::{Overrides, ServerOverrides, Settings, Transport};
use capsule::loader::{Problem, Severity};
use capsule::mcp::{self, CapsuleServer};
use capsule::runtime::CallContext;
use capsule::units::list_or_none;
use clap::{Parser, Subcommand};
use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use tokio_util::sync::CancellationToken;

/// `println!` that returns the error instead of panicking, so `capsule list | head`
/// ends quietly when the reader goes away (see `main`).
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}

/// Serve sandboxed WebAssembly tools over MCP.
#[derive(Debug, Parser)]
#[command(name = "capsule", version, about, propagate_version = true)]
pub struct Args {
    /// Config file (default: ./capsule.toml if it exists).
    #[arg(long, global = true, env = "CAPSULE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Folder of plugin `.wasm` files (default: ./plugins).
    #[arg(long, global = true, env = "CAPSULE_PLUGINS", value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// Where compiled plugins are cached (default: $XDG_CACHE_HOME/capsule).
    #[arg(long, global = true, env = "CAPSULE_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile plugins in memory only; neither read nor write the cache.
    #[arg(long, global = true, env = "CAPSULE_NO_CACHE")]
    no_cache: bool,
    /// Log filter for stderr, e.g. `info`, `debug`, `capsule=debug,warn`.
    #[arg(long, global = true, env = "CAPSULE_LOG", value_name = "FILTER")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every plugin's tools over MCP, on stdin/stdout (the default command) or HTTP.
    Serve(ServeArgs),
    /// List the tools the plugins folder provides.
    List {
        /// Print the MCP tool descriptors as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Call one tool once and print its result.
    Call {
        /// The tool's exposed name, e.g. `text_slugify`.
        tool: String,
        /// Arguments as a JSON object.
        #[arg(long, default_value = "{}", value_name = "JSON")]
        args: String,
        /// Print the whole MCP result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Load and compile every plugin, report every problem; exit 1 if there is any error.
    Check,
    /// Show one plugin's file, effective grants and tools (with schemas).
    Inspect {
        /// The plugin's name (its file name without `.wasm`).
        plugin: String,
    },
    /// Approve the grants a plugin's sidecar policy (`NAME.toml` beside `NAME.wasm`) asks
    /// for: copies it into the config file as `[plugins.NAME]` and prints what it wrote.
    Approve {
        /// The plugin's name (its file name without `.wasm`).
        plugin: String,
    },
    /// Create a new plugin project from a template: `capsule new my-tool --lang python`.
    New {
        /// The plugin's name: its folder, its `.wasm` file and the prefix of its tools.
        name: String,
        /// The language: rust, python, js or c.
        #[arg(long, default_value = "rust")]
        lang: String,
        /// Where to create the project folder.
        #[arg(long, default_value = ".", value_name = "DIR")]
        dir: PathBuf,
    },
}

/// `capsule serve` flags; each wins over its `[server]` key in `capsule.toml`.
#[derive(Debug, Default, clap::Args)]
struct ServeArgs {
    /// `stdio` (default) or `http` (streamable HTTP on --host/--port).
    #[arg(long, value_name = "TRANSPORT")]
    transport: Option<Transport>,
    /// HTTP: the IP address to listen on (default 127.0.0.1).
    #[arg(long, value_name = "ADDRESS")]
    host: Option<String>,
    /// HTTP: the port (default 8080; 0 picks a free one, logged at startup).
    #[arg(long)]
    port: Option<u16>,
    /// HTTP: no sessions; every request stands alone (replicas behind a load balancer).
    #[arg(long)]
    stateless: bool,
    /// HTTP: serve on a non-loopback address without authentication (Capsule cannot
    /// authenticate clients yet; something in front of it must).
    #[arg(long)]
    allow_unauthenticated: bool,
}

impl ServeArgs {
    fn overrides(&self) -> ServerOverrides {
        ServerOverrides {
            transport: self.transport,
            host: self.host.clone(),
            port: self.port,
            stateless: self.stateless.then_some(true),
            allow_unauthenticated: self.allow_unauthenticated.then_some(true),
        }
    }
}

/// Runs the command `args` asks for.
pub async fn run(args: Args) -> Result<ExitCode> {
    let command = args
        .command
        .unwrap_or_else(|| Command::Serve(ServeArgs::default()));
    if let Command::New { name, lang, dir } = &command {
        return new_project(name, lang, dir);
    }
    let serving = matches!(command, Command::Serve(_));
    let server = match &command {
        Command::Serve(serve) => serve.overrides(),
        _ => ServerOverrides::default(),
    };
    let explicit_log_level = args.log_level.is_some();
    let settings = Settings::load(Overrides {
        config_file: args.config,
        plugins_dir: args.plugins,
        cache_dir: args.cache_dir,
        no_cache: args.no_cache,
        log_level: args.log_level,
        server,
    })?;
    // One-shot commands keep stderr quiet unless asked; the server logs at `info`.
    let filter = if serving || explicit_log_level {
        settings.log_level.clone()
    } else {
        "warn".to_string()
    };
    capsule::logging::init(&filter);
    if let Command::Approve { plugin } = &command {
        return approve(&settings, plugin);
    }

    let app = App::start(settings).await?;
    match command {
        Command::Serve(_) => serve(app).await,
        Command::List { json } => list(&app, json),
        Command::Call { tool, args, json } => call(&app, &tool, &args, json).await,
        Command::Check => check(&app),
        Command::Inspect { plugin } => inspect(&app, &plugin),
        Command::New { .. } | Command::Approve { .. } => {
            unreachable!("handled before loading plugins")
        }
    }
}

/// `capsule new`: writes the project and says how to build and try it.
fn new_project(name: &str, lang: &str, parent: &std::path::Path) -> Result<ExitCode> {
    let created = capsule::scaffold::create(name, lang, parent)?;
    out!(
        "created {lang} plugin `{name}` in {}",
        created.dir.display()
    );
    for file in &created.files {
        out!("  {file}");
    }
    out!(
        "
next:
  cd {}",
        created.dir.display()
    );
    if let Some(build) = &created.build_command {
        out!("  {build}");
    }
    out!("  capsule check --plugins .");
    out!("  capsule list --plugins .");
    if let Some(test) = &created.test_command {
        out!("\ntest it:\n  {test}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `capsule approve`: writes the sidecar's policy into the config file and shows it.
fn approve(settings: &Settings, plugin: &str) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let approval = capsule::approve::approve(settings, plugin, &cwd)?;
    out!(
        "approved {}: wrote [plugins.{plugin}] to {}:\n",
        approval.sidecar.display(),
        approval.config_file.display()
    );
    out!("{}", approval.section.trim_end());
    out!(
        "\n[plugins.{plugin}] is now the plugin's whole grant; its sidecar is ignored from now on (edit the grant in {})",
        approval.config_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn serve(app: App) -> Result<ExitCode> {
    for problem in &app.problems {
        match problem.severity {
            Severity::Error => tracing::error!("{}", problem.message),
            Severity::Warning => tracing::warn!("{}", problem.message),
        }
    }
    let settings = &app.settings.server;
    let snapshot = app.registry.snapshot();
    tracing::info!(
        plugins = snapshot.plugins().len(),
        tools = snapshot.tools().len(),
        folder = %app.settings.plugins_dir.display(),
        "serving MCP on {}",
        settings.transport
    );
    let server = CapsuleServer::new(app.runtime.clone(), app.registry.clone());
    let shutdown = CancellationToken::new();
    let signalled = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down on signal");
        signalled.cancel();
    });
    match settings.transport {
        Transport::Stdio => mcp::stdio::serve(server, shutdown, settings.drain_timeout).await?,
        Transport::Http => mcp::http::serve(server, settings, shutdown).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn list(app: &App, json: bool) -> Result<ExitCode> {
    report_problems(&app.problems);
    let snapshot = app.registry.snapshot();
    let tools: Vec<_> = snapshot.tools().iter().map(|t| &t.descriptor).collect();
    if json {
        out!("{}", serde_json::to_string_pretty(&tools)?);
        return Ok(ExitCode::SUCCESS);
    }
    if tools.is_empty() {
        eprintln!(
            "no tools: {} has no loadable .wasm plugins",
            app.settings.plugins_dir.display()
        );
    }
    let width = tools.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for plugin in snapshot.plugins() {
        out!("{}  ({})", plugin.name, plugin.path.display());
        for line in plugin.policy.describe() {
            out!("    {line}");
        }
        for tool in snapshot
            .tools()
            .iter()
            .filter(|t| Arc::ptr_eq(&t.plugin, plugin))
        {
            let summary = tool
                .descriptor
                .description
                .as_deref()
                .and_then(|d| d.lines().next())
                .unwrap_or("");
            out!("  {:width$}  {summary}", tool.exposed_name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Everything about one plugin: file, digest, grants and its tools with their schemas.
fn inspect(app: &App, name: &str) -> Result<ExitCode> {
    report_problems(&app.problems);
    let snapshot = app.registry.snapshot();
    let Some(plugin) = snapshot.plugins().iter().find(|p| &*p.name == name) else {
        let names: Vec<&str> = snapshot.plugins().iter().map(|p| &*p.name).collect();
        bail!(
            "no plugin named `{name}`; loaded: {} (see `capsule list`)",
            list_or_none(&names)
        );
    };
    out!("plugin   {}", plugin.name);
    out!("file     {}", plugin.path.display());
    out!("sha256   {}", plugin.digest);
    for line in plugin.policy.describe() {
        out!("policy   {line}");
    }
    for tool in snapshot
        .tools()
        .iter()
        .filter(|t| Arc::ptr_eq(&t.plugin, plugin))
    {
        out!("\ntool {}", serde_json::to_string_pretty(&tool.descriptor)?);
    }
    Ok(ExitCode::SUCCESS)
}

async fn call(app: &App, name: &str, args: &str, json: bool) -> Result<ExitCode> {
    report_problems(&app.problems);
    let arguments: JsonObject = serde_json::from_str(args)
        .with_context(|| format!("--args must be a JSON object, got `{args}`"))?;
    let snapshot = app.registry.snapshot();
    let Some(tool) = snapshot.get(name) else {
        let names: Vec<&str> = snapshot
            .tools()
            .iter()
            .map(|t| t.exposed_name.as_str())
            .collect();
        bail!(
            "unknown tool `{name}`; available: {} (see `capsule list`)",
            list_or_none(&names)
        );
    };
    let cancel = CancellationToken::new();
    let context = CallContext {
        cancel: cancel.clone(),
        events: None,
    };
    let result = tokio::select! {
        result = mcp::server::execute(&app.runtime, tool, arguments, context) => result,
        _ = shutdown_signal() => {
            cancel.cancel();
            bail!("interrupted");
        }
    };
    let failed = result.is_error == Some(true);
    if json {
        out!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_result(&result, failed)?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints a result for people: text as is, other content described in one line.
/// Error results go to stderr.
fn print_result(result: &CallToolResult, failed: bool) -> Result<()> {
    let mut lines: Vec<String> = result.content.iter().map(describe).collect();
    if result.content.is_empty()
        && let Some(structured) = &result.structured_content
    {
        lines.push(serde_json::to_string_pretty(structured)?);
    }
    for line in lines {
        if failed {
            eprintln!("{line}");
        } else {
            out!("{line}");
        }
    }
    Ok(())
}

fn describe(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(text) => text.text.clone(),
        ContentBlock::Image(image) => format!(
            "[image {}, {} base64 chars]",
            image.mime_type,
            image.data.len()
        ),
        ContentBlock::Audio(audio) => format!(
            "[audio {}, {} base64 chars]",
            audio.mime_type,
            audio.data.len()
        ),
        ContentBlock::ResourceLink(link) => format!("[link {} {}]", link.name, link.uri),
        ContentBlock::Resource(resource) => {
            format!(
                "[resource {}]",
                serde_json::to_string(&resource.resource).unwrap_or_default()
            )
        }
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn check(app: &App) -> Result<ExitCode> {
    let snapshot = app.registry.snapshot();
    for plugin in snapshot.plugins() {
        out!(
            "ok     {} ({} tools{}, {}) {}",
            plugin.name,
            plugin.tools.len(),
            if plugin.wit_derived() {
                " derived from its WIT exports"
            } else {
                ""
            },
            plugin.cache,
            plugin.path.display()
        );
        for line in plugin.policy.describe() {
            out!("         {line}");
        }
    }
    for problem in &app.problems {
        let tag = match problem.severity {
            Severity::Error => "error",
            Severity::Warning => "warn ",
        };
        out!("{tag}  {}", problem.message);
    }
    let errors = app
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    out!(
        "{} plugins, {} tools, {errors} errors, {} warnings",
        snapshot.plugins().len(),
        snapshot.tools().len(),
        app.problems.len() - errors
    );
    Ok(if app.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn report_problems(problems: &[Problem]) {
    for problem in problems {
        let tag = match problem.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        eprintln!("{tag}: {}", problem.message);
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
