//! Command-line arguments and the commands behind them. Every key of `capsule.toml` can
//! also be set with a `CAPSULE_*` environment variable (see `capsule::config::keys`), the
//! main ones with a global flag here; the command line wins over the environment, which
//! wins over `capsule.toml`, which wins over the defaults.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use capsule::app::App;
use capsule::audit::Audit;
use capsule::auth::limiter::RateLimiter;
use capsule::config::{FlagValue, Overrides, Settings, Transport};
use capsule::degraded::Degraded;
use capsule::loader::{Problem, Severity};
use capsule::mcp::peers::Peers;
use capsule::mcp::{self, CapsuleServer};
use capsule::metrics::{Metrics, PluginEvent};
use capsule::runtime::CallContext;
use capsule::units::list_or_none;

use crate::cli_distribution;
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
    /// Folder of plugin `.wasm` files (default: ./plugins) [env: CAPSULE_PLUGINS_DIR or CAPSULE_PLUGINS].
    #[arg(long, global = true, value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// Where compiled plugins are cached (default: $XDG_CACHE_HOME/capsule) [env: CAPSULE_CACHE_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile plugins in memory only; neither read nor write the cache.
    #[arg(long, global = true, env = "CAPSULE_NO_CACHE")]
    no_cache: bool,
    /// Log filter for stderr, e.g. `info`, `debug`, `capsule=debug,warn` [env: CAPSULE_LOG_LEVEL or CAPSULE_LOG].
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
    /// Refuse to run when the plugins or the configuration differ from `capsule.lock`
    /// (written by `capsule check --lock`), listing every difference.
    #[arg(long, global = true, env = "CAPSULE_LOCKED", action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new())]
    locked: bool,
    /// Sets any key of capsule.toml, e.g. `--set limits.timeout=30s` (repeatable).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Calls running at once over all plugins ([runtime] max-concurrent-calls).
    #[arg(long, global = true, value_name = "N")]
    max_concurrent_calls: Option<String>,
    /// Calls allowed to wait for a slot ([runtime] max-queued-calls).
    #[arg(long, global = true, value_name = "N")]
    max_queued_calls: Option<String>,
    /// Calls of one plugin running at once ([runtime] max-calls-per-plugin).
    #[arg(long, global = true, value_name = "N")]
    max_calls_per_plugin: Option<String>,
    /// The most memory of any linear memory, e.g. `512MiB` ([runtime] memory-ceiling).
    #[arg(long, global = true, value_name = "SIZE")]
    memory_ceiling: Option<String>,
    /// WebAssembly stack of every call, e.g. `512KiB` ([runtime] max-wasm-stack).
    #[arg(long, global = true, value_name = "SIZE")]
    max_wasm_stack: Option<String>,
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
    Check {
        /// Also write `capsule.lock` (beside the config file): each plugin's digest,
        /// grants, limits and tools, and the effective configuration.
        #[arg(long, conflicts_with = "locked")]
        lock: bool,
    },
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
    /// Add Capsule's stdio server entry to an MCP client's config (merging; other
    /// servers and keys are kept), e.g. `capsule install claude-code`.
    Install {
        /// The client whose config to write.
        #[arg(value_enum)]
        client: capsule::install::Client,
        /// Print the entry and the file it belongs in; write nothing.
        #[arg(long)]
        print: bool,
        /// The server's name in the client's config.
        #[arg(long, default_value = "capsule")]
        name: String,
        /// The user's config or this project's (default: user; project for vscode).
        #[arg(long, value_enum)]
        scope: Option<capsule::install::Scope>,
        /// Replace an existing, different entry of the same name.
        #[arg(long)]
        force: bool,
    },
    /// HTTP authentication: static bearer tokens (see docs/auth.md).
    Auth {
        #[command(subcommand)]
        action: AuthCommand,
    },
    /// The configuration: its JSON Schema, or the effective values and their sources.
    Config {
        #[command(subcommand)]
        action: ConfigCommand,
    },
    /// A running server's calls per plugin, read from its `/metrics`: calls, calls/s,
    /// p50/p99 run time, errors and sandbox faults by kind; refreshed until Ctrl-C.
    Top {
        /// The server's metrics URL, e.g. `http://127.0.0.1:8080/metrics` (no path: `/metrics`).
        url: String,
        /// Print one table (totals since the server started) and exit.
        #[arg(long)]
        once: bool,
        /// Time between refreshes, e.g. `2s`.
        #[arg(long, default_value = "2s", value_name = "DURATION")]
        interval: String,
    },
    /// Fetch a plugin from an OCI registry into the cache (checked, and verified with
    /// `require-signature`) and print the config entry that pins it.
    Pull {
        /// `[oci://]REGISTRY/REPOSITORY:TAG[@sha256:…]`.
        reference: String,
    },
    /// Publish a component to an OCI registry as a Wasm artifact, optionally signed.
    Push {
        /// The `.wasm` component.
        file: PathBuf,
        /// `[oci://]REGISTRY/REPOSITORY:TAG`.
        reference: String,
        /// Also sign it with this PEM PKCS #8 ECDSA P-256 private key (as `capsule sign`).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Sign the artifact a reference names, cosign-compatibly (signature at tag `sha256-DIGEST.sig`).
    Sign {
        /// `[oci://]REGISTRY/REPOSITORY:TAG[@sha256:…]`.
        reference: String,
        /// PEM PKCS #8 ECDSA P-256 private key.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// The cache folder: precompiled artifacts and pulled plugins.
    Cache {
        #[command(subcommand)]
        action: crate::cli_distribution::CacheCommand,
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

#[derive(Debug, Subcommand)]
enum AuthCommand {
    /// Create a static bearer token: prints it once on stdout and writes only its salted
    /// hash into the config file as [auth.tokens.NAME].
    AddToken {
        /// The token's name: the principal in logs and the audit log.
        name: String,
        /// The scopes it grants, comma-separated, e.g. `mcp,tools:call`.
        #[arg(long, value_delimiter = ',', value_name = "SCOPES")]
        scopes: Vec<String>,
        /// Replace an existing token of that name (the old one stops working).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the JSON Schema of `capsule.toml` (for editors: `#:schema ./capsule.schema.json`).
    Schema,
    /// Print the effective configuration, each value with its source; secrets redacted.
    Show {
        /// Print JSON: `{ "key": { "value": …, "source": … } }`.
        #[arg(long)]
        json: bool,
    },
    /// Print the Markdown table of every key (for docs/configuration.md).
    #[command(hide = true)]
    Table {
        /// Replace the table between the markers in this file instead of printing it.
        #[arg(long, value_name = "FILE")]
        write: Option<PathBuf>,
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
    /// HTTP: serve on a non-loopback address without [auth] (something in front of
    /// Capsule must authenticate clients).
    #[arg(long)]
    allow_unauthenticated: bool,
    /// Serve Prometheus `/metrics` on a listener of its own: `HOST:PORT`, or a port
    /// alone for 127.0.0.1 ([metrics] addr; needed for metrics in stdio mode).
    #[arg(long, value_name = "ADDRESS")]
    metrics_addr: Option<String>,
    /// Export a span per tools/call over OTLP/HTTP to this collector, e.g.
    /// http://otel-collector:4318 ([telemetry] otlp-endpoint).
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// Reload a plugin when its file or sidecar in the plugins folder changes ([server]
    /// watch; default: on for stdio, off for HTTP).
    #[arg(long, conflicts_with = "no_watch")]
    watch: bool,
    /// Do not watch the plugins folder.
    #[arg(long)]
    no_watch: bool,
}

impl ServeArgs {
    /// The flags given, as assignments to their `[server]` keys.
    fn flags(&self) -> Vec<FlagValue> {
        let flag = |key: &str, value: String| FlagValue {
            key: format!("server.{key}"),
            flag: format!("--{key}"),
            value,
        };
        let mut flags = Vec::new();
        if let Some(transport) = self.transport {
            flags.push(flag("transport", transport.to_string()));
        }
        if let Some(host) = &self.host {
            flags.push(flag("host", host.clone()));
        }
        if let Some(port) = self.port {
            flags.push(flag("port", port.to_string()));
        }
        if self.stateless {
            flags.push(flag("stateless", "true".into()));
        }
        if self.allow_unauthenticated {
            flags.push(flag("allow-unauthenticated", "true".into()));
        }
        if self.watch || self.no_watch {
            flags.push(FlagValue {
                key: "server.watch".into(),
                flag: if self.watch { "--watch" } else { "--no-watch" }.into(),
                value: self.watch.to_string(),
            });
        }
        if let Some(addr) = &self.metrics_addr {
            flags.push(FlagValue {
                key: "metrics.addr".into(),
                flag: "--metrics-addr".into(),
                value: addr.clone(),
            });
        }
        if let Some(url) = &self.otlp_endpoint {
            flags.push(FlagValue {
                key: "telemetry.otlp-endpoint".into(),
                flag: "--otlp-endpoint".into(),
                value: url.clone(),
            });
        }
        flags
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
    if let Command::Top {
        url,
        once,
        interval,
    } = &command
    {
        return top(url, *once, interval).await;
    }
    let serving = matches!(command, Command::Serve(_));
    let explicit_cache_dir = args.cache_dir.is_some();
    let explicit_log_level = args.log_level.is_some()
        || ["CAPSULE_LOG", "CAPSULE_LOG_LEVEL"]
            .iter()
            .any(|var| std::env::var_os(var).is_some());
    let runtime_flags = [
        ("max-concurrent-calls", args.max_concurrent_calls),
        ("max-queued-calls", args.max_queued_calls),
        ("max-calls-per-plugin", args.max_calls_per_plugin),
        ("memory-ceiling", args.memory_ceiling),
        ("max-wasm-stack", args.max_wasm_stack),
    ];
    let mut flags: Vec<FlagValue> = runtime_flags
        .into_iter()
        .filter_map(|(key, value)| {
            value.map(|value| FlagValue {
                key: format!("runtime.{key}"),
                flag: format!("--{key}"),
                value,
            })
        })
        .collect();
    if let Command::Serve(serve) = &command {
        flags.extend(serve.flags());
    }
    for assignment in args.set {
        let Some((key, value)) = assignment.split_once('=') else {
            bail!("--set {assignment}: write KEY=VALUE, e.g. --set limits.timeout=30s");
        };
        flags.push(FlagValue {
            key: key.trim().to_string(),
            flag: format!("--set {}", key.trim()),
            value: value.to_string(),
        });
    }
    let overrides = Overrides {
        config_file: args.config,
        plugins_dir: args.plugins,
        cache_dir: args.cache_dir,
        no_cache: args.no_cache,
        log_level: args.log_level,
        flags,
    };
    if let Command::Config { action } = command {
        return config(action, overrides);
    }
    if let Command::Auth { action } = command {
        return auth(action, overrides.config_file);
    }
    let settings = Settings::load(overrides.clone())?;
    // One-shot commands keep stderr quiet unless asked; the server logs at `info`.
    let filter = if serving || explicit_log_level {
        settings.log_level.clone()
    } else {
        "warn".to_string()
    };
    // Only a server exports spans; kept until `run` returns, then the last batch is sent.
    let otlp = settings.telemetry.otlp.as_ref().filter(|_| serving);
    capsule::logging::init(&filter);
    let _exporter = otlp.and_then(capsule::telemetry::start);
    if let Command::Approve { plugin } = &command {
        return approve(&settings, plugin);
    }
    if let Command::Install {
        client,
        print,
        name,
        scope,
        force,
    } = &command
    {
        let mut serve = vec!["serve".to_string()];
        if let Some(file) = &settings.config_file {
            serve.extend(["--config".into(), file.display().to_string()]);
        }
        serve.extend([
            "--plugins".into(),
            settings.plugins_dir.display().to_string(),
        ]);
        match &settings.cache_dir {
            Some(dir) if explicit_cache_dir => {
                serve.extend(["--cache-dir".into(), dir.display().to_string()])
            }
            None => serve.push("--no-cache".into()),
            Some(_) => {}
        }
        if args.locked {
            serve.push("--locked".into());
        }
        return install(*client, *scope, name, &serve, *print, *force);
    }
    match command {
        Command::Pull { reference } => return cli_distribution::pull(&settings, &reference).await,
        Command::Push {
            file,
            reference,
            key,
        } => return cli_distribution::push(&settings, &file, &reference, key.as_deref()).await,
        Command::Sign { reference, key } => {
            return cli_distribution::sign(&settings, &reference, &key).await;
        }
        Command::Cache { action } => return cli_distribution::cache(&settings, action),
        _ => {}
    }

    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let lock_path = capsule::lock::path(&settings, &cwd);
    // Before any plugin loads (and logs): a refusal is the last thing the server says.
    let prepared = match settings.server.transport {
        Transport::Http if serving => {
            Some(mcp::http::prepare(&settings.server, settings.auth.as_ref()).await?)
        }
        _ => None,
    };
    if serving && !args.locked {
        // The handshake must not wait for compilers: plugins load while serving.
        let app = App::start_empty(settings)?;
        return serve(app, true, None, overrides, prepared).await;
    }
    let app = App::start(settings).await?;
    let mut lock = None;
    if args.locked {
        capsule::lock::verify(
            &lock_path,
            &app.settings,
            &app.registry.snapshot(),
            &app.problems,
        )?;
        lock = Some(capsule::lock::Lock::read(&lock_path)?);
    }
    match command {
        Command::Serve(_) => serve(app, false, lock, overrides, prepared).await,
        Command::List { json } => list(&app, json),
        Command::Call { tool, args, json } => call(&app, &tool, &args, json).await,
        Command::Check { lock } => check(&app, lock.then_some(lock_path.as_path())),
        Command::Inspect { plugin } => inspect(&app, &plugin),
        Command::New { .. }
        | Command::Top { .. }
        | Command::Approve { .. }
        | Command::Auth { .. }
        | Command::Install { .. }
        | Command::Pull { .. }
        | Command::Push { .. }
        | Command::Sign { .. }
        | Command::Cache { .. }
        | Command::Config { .. } => {
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

/// `capsule top`: scrapes `url` every `interval` and prints the table (once with `once`).
async fn top(url: &str, once: bool, interval: &str) -> Result<ExitCode> {
    use capsule::metrics::top::{Snapshot, render};
    let interval = capsule::units::parse_duration(interval)
        .map_err(|err| anyhow::anyhow!("--interval {interval}: {err}"))?;
    let mut previous: Option<(Snapshot, std::time::Instant)> = None;
    loop {
        let now = Snapshot::scrape(url).await.map_err(anyhow::Error::msg)?;
        let taken = std::time::Instant::now();
        let table = render(&now, previous.as_ref().map(|(p, at)| (p, taken - *at)));
        if once {
            out!("{}", table.trim_end());
            return Ok(ExitCode::SUCCESS);
        }
        // Clear the screen and home the cursor, then the table.
        out!(
            "\x1b[2J\x1b[H{url}  every {}\n{}",
            capsule::units::format_duration(interval),
            table.trim_end()
        );
        previous = Some((now, taken));
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown_signal() => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// `capsule config`: the schema, the effective configuration or the docs' key table.
fn config(action: ConfigCommand, overrides: Overrides) -> Result<ExitCode> {
    use capsule::config::{schema, show, table};
    match action {
        ConfigCommand::Schema => out!("{}", schema::json_schema_text().trim_end()),
        ConfigCommand::Show { json } => {
            let (settings, entries) = Settings::load_with_sources(overrides)?;
            for warning in &settings.warnings {
                eprintln!("warning: {warning}");
            }
            if json {
                out!("{}", serde_json::to_string_pretty(&show::json(&entries))?);
            } else {
                out!("{}", show::toml(&entries).trim_end());
            }
        }
        ConfigCommand::Table { write: None } => out!("{}", table::markdown().trim_end()),
        ConfigCommand::Table { write: Some(path) } => {
            let doc = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let Some(updated) = table::update(&doc) else {
                bail!(
                    "{} has no table markers; add the lines `{}` and `{}` where the table goes",
                    path.display(),
                    table::START,
                    table::END
                );
            };
            std::fs::write(&path, updated)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `capsule auth add-token`: the token on stdout (once), where its hash went on stderr.
fn auth(action: AuthCommand, config_file: Option<PathBuf>) -> Result<ExitCode> {
    let AuthCommand::AddToken {
        name,
        scopes,
        force,
    } = action;
    let file = config_file.unwrap_or_else(|| PathBuf::from(capsule::config::DEFAULT_CONFIG_FILE));
    let token = capsule::auth::add_token::add_token(&file, &name, &scopes, force)?;
    out!("{token}");
    eprintln!(
        "added token `{name}` (scopes: {}) to {}; it is shown only this once: store it now (the file keeps only its salted hash)",
        list_or_none(&scopes),
        file.display()
    );
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

/// `capsule install`: the entry running this binary with `serve_args`, merged into the
/// client's config or printed.
fn install(
    client: capsule::install::Client,
    scope: Option<capsule::install::Scope>,
    name: &str,
    serve_args: &[String],
    print: bool,
    force: bool,
) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the running capsule binary")?;
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let dirs = capsule::install::Dirs::from_env();
    let plan = capsule::install::Plan::new(client, scope, name, &exe, serve_args, &dirs, &cwd)?;
    let path = plan.location.path.display();
    if print {
        out!("# {} config: {path}", client.title());
        out!("{}", plan.snippet());
        return Ok(ExitCode::SUCCESS);
    }
    match plan.apply(force)? {
        capsule::install::Outcome::Unchanged => {
            out!("{path} already has this `{name}` entry; nothing written");
        }
        capsule::install::Outcome::Written { backup, replaced } => {
            let verb = if replaced { "replaced" } else { "added" };
            out!("{verb} server `{name}` in {path}");
            if let Some(backup) = backup {
                out!("previous file kept as {}", backup.display());
            }
            out!("  {} {}", exe.display(), serve_args.join(" "));
            out!(
                "restart {} (or reload its MCP servers) to use it",
                client.title()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Serves MCP; with `load`, loads the plugins folder meanwhile ([`capsule::loading`]),
/// else serves what `app` loaded. With `server.watch`, reloads changed plugins
/// ([`capsule::reload`]), accepting only the digests of `lock` when given (`--locked`).
/// Over HTTP, `prepared` is what [`mcp::http::prepare`] set up before anything loaded.
async fn serve(
    mut app: App,
    load: bool,
    lock: Option<capsule::lock::Lock>,
    overrides: Overrides,
    prepared: Option<mcp::http::Prepared>,
) -> Result<ExitCode> {
    for problem in &app.problems {
        match problem.severity {
            Severity::Error => tracing::error!("{}", problem.message),
            Severity::Warning => tracing::warn!("{}", problem.message),
        }
    }
    app.open_audit()?;
    let settings = &app.settings.server;
    let metrics = metrics_for(&app);
    let mut server = CapsuleServer::new(app.runtime.clone(), app.registry.clone())
        .with_audit(app.audit.clone())
        .with_metrics(metrics.clone())
        .with_limiter(RateLimiter::new(app.settings.per_principal_rate_limit))
        .with_resilience(app.settings.runtime.breaker, Degraded::default());
    if settings.degraded {
        server.degraded().set(true, "config", &app.audit);
    }
    toggle_degraded_on_sigusr1(
        server.degraded().clone(),
        app.audit.clone(),
        server.peers().clone(),
    );
    if load {
        let peers = server.peers().clone();
        let loading = capsule::loading::spawn(
            app.runtime.clone(),
            Arc::new(app.settings.clone()),
            app.registry.clone(),
            app.audit.clone(),
            metrics.clone(),
            Arc::new(move || peers.tools_changed()),
        )?;
        tracing::info!(
            plugins = loading.progress().remaining,
            folder = %app.settings.plugins_dir.display(),
            "serving MCP on {} while the plugins load",
            settings.transport
        );
        server = server.with_loading(loading, settings.list_wait);
    } else {
        let snapshot = app.registry.snapshot();
        tracing::info!(
            plugins = snapshot.plugins().len(),
            tools = snapshot.tools().len(),
            folder = %app.settings.plugins_dir.display(),
            "serving MCP on {}",
            settings.transport
        );
    }
    if settings.watches() {
        let peers = server.peers().clone();
        capsule::reload::spawn(capsule::reload::Wiring {
            runtime: app.runtime.clone(),
            settings: Arc::new(app.settings.clone()),
            registry: app.registry.clone(),
            audit: app.audit.clone(),
            metrics: metrics.clone(),
            announce: Arc::new(move || peers.tools_changed()),
            loading: server.loading().clone(),
            lock,
            overrides,
        })
        .with_context(|| {
            format!(
                "cannot watch the plugins folder {} (serve with --no-watch to run without reloading)",
                app.settings.plugins_dir.display()
            )
        })?;
    }
    let shutdown = CancellationToken::new();
    let metrics_addr = app.settings.metrics.addr.filter(|_| metrics.is_on());
    if let Some(addr) = metrics_addr {
        mcp::http::metrics::serve(metrics, addr, &settings.allowed_hosts, shutdown.clone()).await?;
    }
    let signalled = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down on signal");
        signalled.cancel();
    });
    let served: Result<()> = match settings.transport {
        Transport::Stdio => {
            mcp::stdio::serve(server.clone(), shutdown.clone(), settings.drain_timeout)
                .await
                .map_err(Into::into)
        }
        Transport::Http => {
            let prepared = match prepared {
                Some(prepared) => prepared,
                None => mcp::http::prepare(settings, app.settings.auth.as_ref()).await?,
            };
            mcp::http::serve(
                server.clone(),
                settings,
                app.settings.auth.as_ref(),
                prepared,
                metrics_addr.is_some(),
                shutdown.clone(),
            )
            .await
            .map_err(Into::into)
        }
    };
    let reason = match &served {
        Err(err) => format!("error: {err}"),
        Ok(()) if shutdown.is_cancelled() => "signal".into(),
        Ok(()) => "stdin closed".into(),
    };
    app.audit.server_stop(&reason, server.calls().cut_off());
    served?;
    Ok(ExitCode::SUCCESS)
}

/// The metrics `[metrics]` asks for: on when enabled and served somewhere (the HTTP
/// listener, or `metrics.addr`); the plugins loaded and failed so far counted.
fn metrics_for(app: &App) -> Metrics {
    let wanted = &app.settings.metrics;
    if !wanted.enabled
        || (app.settings.server.transport == Transport::Stdio && wanted.addr.is_none())
    {
        return Metrics::off();
    }
    let metrics = Metrics::new(app.runtime.clone(), app.registry.clone());
    let failed = app
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error && p.plugin.is_some())
        .count();
    metrics.plugin_event(
        PluginEvent::Loaded,
        app.registry.snapshot().plugins().len() as u64,
    );
    metrics.plugin_event(PluginEvent::Failed, failed as u64);
    metrics
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
        out!("access   {}", tool.access.describe());
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
        ..CallContext::default()
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

/// `capsule check`, and with `lock` the lock file written there when nothing failed.
fn check(app: &App, lock: Option<&std::path::Path>) -> Result<ExitCode> {
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
    if app.has_errors() {
        if let Some(path) = lock {
            out!("not writing {}: fix the errors above first", path.display());
        }
        return Ok(ExitCode::from(1));
    }
    if let Some(path) = lock {
        let written = capsule::lock::Lock::of(&app.settings, &snapshot);
        written.write(path)?;
        out!(
            "wrote {} ({} plugins, {} tools); serve with --locked to refuse any other setup",
            path.display(),
            written.plugins.len(),
            snapshot.tools().len()
        );
    }
    Ok(ExitCode::SUCCESS)
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

/// Flips degraded mode on each SIGUSR1 (nothing where there are no such signals) and tells
/// every client that the tools listed changed.
fn toggle_degraded_on_sigusr1(degraded: Degraded, audit: Audit, peers: Arc<Peers>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::user_defined1()) {
            Ok(mut usr1) => {
                tokio::spawn(async move {
                    while usr1.recv().await.is_some() {
                        degraded.toggle("SIGUSR1", &audit);
                        peers.tools_changed();
                    }
                });
            }
            Err(err) => tracing::warn!(
                "cannot listen for SIGUSR1, degraded mode can only be set in the config: {err}"
            ),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (degraded, audit, peers);
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
