//! `capsule install CLIENT` merges the stdio entry into each client's config file under a
//! temporary `HOME`, keeping every other entry and key; `--print` writes nothing; an
//! existing entry is replaced only with `--force`; invalid JSON is refused with its line.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::capsule_bin;

/// A temporary HOME, a project folder (the working directory) with a config and plugins.
struct Setup {
    home: TempDir,
    project: TempDir,
}

impl Setup {
    fn new() -> Self {
        let project = tempfile::tempdir().unwrap();
        std::fs::create_dir(project.path().join("plugins")).unwrap();
        std::fs::write(project.path().join("capsule.toml"), "").unwrap();
        Self {
            home: tempfile::tempdir().unwrap(),
            project,
        }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    /// `capsule install ARGS` in the project folder with this HOME.
    fn install(&self, args: &[&str]) -> (i32, String, String) {
        let out = std::process::Command::new(capsule_bin())
            .arg("install")
            .args(args)
            .current_dir(self.project.path())
            .env("HOME", self.home())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("CAPSULE_CONFIG")
            .env_remove("CAPSULE_PLUGINS")
            .env_remove("CAPSULE_CACHE_DIR")
            .env_remove("CAPSULE_LOCKED")
            .output()
            .expect("run capsule install");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The args every entry should carry: `serve` with the absolute config and plugins.
    fn serve_args(&self) -> Vec<String> {
        vec![
            "serve".into(),
            "--config".into(),
            self.project
                .path()
                .join("capsule.toml")
                .display()
                .to_string(),
            "--plugins".into(),
            self.project.path().join("plugins").display().to_string(),
        ]
    }
}

fn exe() -> String {
    std::fs::canonicalize(capsule_bin())
        .unwrap()
        .display()
        .to_string()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

#[test]
fn each_client_gets_its_entry_beside_the_existing_ones() {
    // (client, extra args, file under HOME or the project, servers key, writes "type")
    type Case<'a> = (&'a str, &'a [&'a str], bool, &'a str, &'a str, bool);
    let cases: [Case; 7] = [
        ("claude-code", &[], true, ".claude.json", "mcpServers", true),
        (
            "claude-code",
            &["--scope", "project"],
            false,
            ".mcp.json",
            "mcpServers",
            true,
        ),
        (
            "claude-desktop",
            &[],
            true,
            ".config/Claude/claude_desktop_config.json",
            "mcpServers",
            false,
        ),
        ("cursor", &[], true, ".cursor/mcp.json", "mcpServers", false),
        (
            "cursor",
            &["--scope", "project"],
            false,
            ".cursor/mcp.json",
            "mcpServers",
            false,
        ),
        ("vscode", &[], false, ".vscode/mcp.json", "servers", true),
        (
            "gemini",
            &[],
            true,
            ".gemini/settings.json",
            "mcpServers",
            false,
        ),
    ];
    for (client, extra, in_home, file, key, typed) in cases {
        let setup = Setup::new();
        let path: PathBuf = if in_home {
            setup.home().join(file)
        } else {
            setup.project.path().join(file)
        };
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let before = format!(
            "{{\n  \"theme\": \"dark\",\n  \"{key}\": {{\n    \"other\": {{ \"command\": \"other-server\", \"args\": [\"--x\"] }}\n  }},\n  \"unknownKey\": {{ \"nested\": [1, 2] }}\n}}\n"
        );
        std::fs::write(&path, &before).unwrap();
        let mut args = vec![client];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = setup.install(&args);
        assert_eq!(code, 0, "{client}: {stdout}\n{stderr}");
        assert!(
            stdout.starts_with(&format!("added server `capsule` in {}\n", path.display())),
            "{client}: {stdout}"
        );
        let after = read_json(&path);
        let mut expected = json!({ "command": exe(), "args": setup.serve_args() });
        if typed {
            expected["type"] = json!("stdio");
        }
        assert_eq!(after[key]["capsule"], expected, "{client}");
        assert_eq!(
            after[key]["other"],
            json!({ "command": "other-server", "args": ["--x"] }),
            "{client}: another server was changed"
        );
        assert_eq!(after["theme"], json!("dark"), "{client}");
        assert_eq!(after["unknownKey"], json!({ "nested": [1, 2] }), "{client}");
        let bak = path.with_file_name(format!(
            "{}.bak",
            path.file_name().unwrap().to_string_lossy()
        ));
        assert_eq!(std::fs::read_to_string(&bak).unwrap(), before, "{client}");
    }
}

#[test]
fn print_shows_the_entry_and_writes_nothing() {
    let setup = Setup::new();
    let (code, stdout, stderr) = setup.install(&["cursor", "--print", "--name", "tools"]);
    assert_eq!(code, 0, "{stderr}");
    let path = setup.home().join(".cursor/mcp.json");
    let (first, snippet) = stdout.split_once('\n').unwrap();
    assert_eq!(first, format!("# Cursor config: {}", path.display()));
    let printed: Value = serde_json::from_str(snippet).expect("the snippet is JSON");
    assert_eq!(
        printed,
        json!({ "mcpServers": { "tools": { "command": exe(), "args": setup.serve_args() } } })
    );
    assert_eq!(
        std::fs::read_dir(setup.home()).unwrap().count(),
        0,
        "HOME was written"
    );
}

#[test]
fn an_existing_entry_is_replaced_only_with_force() {
    let setup = Setup::new();
    let path = setup.home().join(".gemini/settings.json");
    assert_eq!(setup.install(&["gemini"]).0, 0);
    let first = std::fs::read_to_string(&path).unwrap();

    let (code, stdout, _) = setup.install(&["gemini"]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        format!(
            "{} already has this `capsule` entry; nothing written\n",
            path.display()
        )
    );

    let (code, _, stderr) = setup.install(&["gemini", "--locked"]);
    assert_eq!(code, 2);
    let old_args = serde_json::to_string(&setup.serve_args()).unwrap();
    let mut new_args = setup.serve_args();
    new_args.push("--locked".into());
    let new_args = serde_json::to_string(&new_args).unwrap();
    assert_eq!(
        stderr,
        format!(
            "error: {} already has a server named `capsule` that differs:\n  - args: {old_args}\n  + args: {new_args}\nrerun with --force to replace it (the old file is kept as .bak), or pick another --name\n",
            path.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        first,
        "written without --force"
    );

    let (code, stdout, stderr) = setup.install(&["gemini", "--locked", "--force"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "replaced server `capsule` in {}\n",
            path.display()
        )),
        "{stdout}"
    );
    assert_eq!(
        read_json(&path)["mcpServers"]["capsule"]["args"]
            .as_array()
            .unwrap()
            .last(),
        Some(&json!("--locked"))
    );
    assert_eq!(
        std::fs::read_to_string(path.with_file_name("settings.json.bak")).unwrap(),
        first
    );
}

#[test]
fn invalid_json_is_refused_with_its_line_and_nothing_is_written() {
    let setup = Setup::new();
    let path = setup.home().join(".claude.json");
    let broken = "{\n  \"numStartups\": 3,\n  \"mcpServers\": \n}\n";
    std::fs::write(&path, broken).unwrap();
    let (code, stdout, stderr) = setup.install(&["claude-code"]);
    assert_eq!(code, 2, "{stdout}");
    assert_eq!(
        stderr,
        format!(
            "error: {}:4:1: invalid JSON: expected value; fix the file first (nothing was written)\n",
            path.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    assert!(!setup.home().join(".claude.json.bak").exists());

    let (code, _, stderr) = setup.install(&["claude-desktop", "--scope", "project"]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        "error: Claude Desktop has no project config; use --scope user\n"
    );
}

/// The real clients (Claude Code and Gemini CLI from npm, installed into
/// `target/clients`: `npm install --prefix target/clients @anthropic-ai/claude-code
/// @google/gemini-cli`, then `node install.cjs` in Claude Code's package) start the entry
/// `capsule install` wrote and report it connected.
#[test]
#[ignore = "needs Claude Code and Gemini CLI in target/clients; `cargo xtask test` installs them and runs it"]
fn real_clients_connect_to_the_installed_entry() {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/clients/node_modules/.bin");
    let setup = Setup::new();
    // First contact (issue #19): every example plugin, Python and JavaScript included, and
    // an empty cache under the fresh HOME. Gemini CLI showed "Disconnected" while the host
    // compiled the big guests (7-10 s) before answering `initialize`.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins");
    for name in ["tables.wasm", "dates.wasm", "text.wasm", "checksum.wasm"] {
        std::fs::copy(
            examples.join(name),
            setup.project.path().join("plugins").join(name),
        )
        .unwrap_or_else(|e| panic!("copy {name} (run `cargo xtask plugins`): {e}"));
    }
    assert_eq!(setup.install(&["claude-code"]).0, 0);
    assert_eq!(setup.install(&["gemini"]).0, 0);
    // Gemini CLI asks before trusting a folder; a test has no one to answer.
    let settings = setup.home().join(".gemini/settings.json");
    let mut gemini = read_json(&settings);
    gemini["security"] = json!({ "folderTrust": { "enabled": false } });
    std::fs::write(&settings, gemini.to_string()).unwrap();
    for client in ["claude", "gemini"] {
        let out = std::process::Command::new(bin.join(client))
            .args(["mcp", "list"])
            .current_dir(setup.home())
            .env("HOME", setup.home())
            .env_remove("XDG_CACHE_HOME")
            .env_remove("CAPSULE_CACHE_DIR")
            .output()
            .unwrap_or_else(|e| panic!("{client} not found in {}: {e}", bin.display()));
        // Gemini CLI prints the list on stderr.
        let stdout = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find(|l| l.contains("capsule:"))
            .unwrap_or_else(|| panic!("{client} lists no capsule server:\n{stdout}"));
        assert!(line.ends_with("Connected"), "{client}: {line}");
    }
}
