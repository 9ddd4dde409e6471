//! `files`: work with the files of a folder the operator mounted for this plugin, e.g.
//! `fs.mounts = [{ host = "/home/me/project", guest = "/project" }]`. Paths are guest
//! paths (`/project/src/main.rs`); everything outside the mounts is invisible, and a
//! read-only mount cannot be written. Errors name the path and say what to check.

use std::fs;
use std::path::{Path, PathBuf};

use capsule_sdk::prelude::*;

/// Hint appended to I/O errors: the usual cause is a path outside the mounts.
const MOUNT_HINT: &str =
    "paths must be inside a folder mounted for this plugin (see its fs grant in `capsule list`)";

fn io_error(action: &str, path: &Path, err: std::io::Error) -> ToolError {
    ToolError::new(format!(
        "cannot {action} {}: {err}; {MOUNT_HINT}",
        path.display()
    ))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    /// Folder to list, e.g. "/project/src".
    path: String,
    /// Also list the contents of sub-folders.
    #[serde(default)]
    recursive: bool,
    /// Stop after this many entries (default 500).
    #[serde(default)]
    max_entries: Option<usize>,
}

/// One file or folder.
#[derive(Debug, PartialEq, Serialize, JsonSchema)]
struct Entry {
    /// Full path.
    path: String,
    /// `file`, `dir` or `other`.
    kind: String,
    /// Size in bytes (files only).
    size: Option<u64>,
}

/// The entries found, and whether the listing was cut at `max_entries`.
#[derive(Debug, Serialize, JsonSchema)]
struct Listing {
    entries: Vec<Entry>,
    truncated: bool,
}

/// List the files and folders in a folder (optionally recursively), with kinds and sizes,
/// sorted by path. Use it to find your way around a mounted project before reading files.
#[tool(title = "List folder", read_only, idempotent)]
fn list(args: ListArgs) -> Result<Listing, ToolError> {
    let max = args.max_entries.unwrap_or(500);
    let mut entries = Vec::new();
    let mut pending = vec![PathBuf::from(&args.path)];
    let mut truncated = false;
    while let Some(dir) = pending.pop() {
        let mut children: Vec<_> = fs::read_dir(&dir)
            .map_err(|e| io_error("list", &dir, e))?
            .filter_map(Result::ok)
            .collect();
        children.sort_by_key(|c| c.file_name());
        for child in children {
            if entries.len() >= max {
                truncated = true;
                break;
            }
            let path = child.path();
            let meta = child.metadata().ok();
            let kind = match &meta {
                Some(m) if m.is_dir() => "dir",
                Some(m) if m.is_file() => "file",
                _ => "other",
            };
            if kind == "dir" && args.recursive {
                pending.push(path.clone());
            }
            entries.push(Entry {
                path: path.display().to_string(),
                kind: kind.into(),
                size: meta.filter(|m| m.is_file()).map(|m| m.len()),
            });
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Listing { entries, truncated })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    /// File to read, e.g. "/project/README.md".
    path: String,
    /// Read at most this many bytes (default 1 MiB); longer files are cut and say so.
    #[serde(default)]
    max_bytes: Option<usize>,
}

/// Read a text file (UTF-8). Binary files are refused rather than returned as garbage.
#[tool(title = "Read file", read_only, idempotent)]
fn read(args: ReadArgs) -> Result<String, ToolError> {
    let path = Path::new(&args.path);
    let bytes = fs::read(path).map_err(|e| io_error("read", path, e))?;
    let max = args.max_bytes.unwrap_or(1 << 20);
    let cut = bytes.len() > max;
    let mut end = bytes.len().min(max);
    // Do not split a UTF-8 sequence at the cut.
    while cut && end > 0 && (bytes[end] & 0b1100_0000) == 0b1000_0000 {
        end -= 1;
    }
    let text = std::str::from_utf8(&bytes[..end]).map_err(|_| {
        ToolError::new(format!(
            "{} is not UTF-8 text (a binary file?); not returned",
            path.display()
        ))
    })?;
    Ok(if cut {
        format!(
            "{text}\n[… cut at {end} of {} bytes; pass a larger max_bytes to read more]",
            bytes.len()
        )
    } else {
        text.to_string()
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    /// Folder to search recursively (or a single file).
    path: String,
    /// Text to look for (plain text, not a regex).
    pattern: String,
    /// Ignore upper/lower case.
    #[serde(default)]
    case_insensitive: bool,
    /// Stop after this many matches (default 100).
    #[serde(default)]
    max_results: Option<usize>,
}

/// One matching line.
#[derive(Debug, PartialEq, Serialize, JsonSchema)]
struct Match {
    path: String,
    /// 1-based line number.
    line: usize,
    text: String,
}

/// The matches found, and whether the search stopped at `max_results`.
#[derive(Debug, Serialize, JsonSchema)]
struct Matches {
    matches: Vec<Match>,
    truncated: bool,
}

/// Find the lines containing a text in every UTF-8 file under a folder, like `grep -rn`.
/// Binary and unreadable files are skipped.
#[tool(title = "Search files", read_only, idempotent)]
fn search(args: SearchArgs) -> Result<Matches, ToolError> {
    if args.pattern.is_empty() {
        return Err(ToolError::invalid_arguments("pattern must not be empty"));
    }
    let max = args.max_results.unwrap_or(100);
    let needle = if args.case_insensitive {
        args.pattern.to_lowercase()
    } else {
        args.pattern.clone()
    };
    let root = PathBuf::from(&args.path);
    let meta = fs::metadata(&root).map_err(|e| io_error("search", &root, e))?;
    let mut files = Vec::new();
    if meta.is_dir() {
        let mut pending = vec![root];
        while let Some(dir) = pending.pop() {
            let Ok(children) = fs::read_dir(&dir) else {
                continue;
            };
            for child in children.filter_map(Result::ok) {
                match child.file_type() {
                    Ok(t) if t.is_dir() => pending.push(child.path()),
                    Ok(t) if t.is_file() => files.push(child.path()),
                    _ => {}
                }
            }
        }
        files.sort();
    } else {
        files.push(root);
    }
    let mut matches = Vec::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let hay = if args.case_insensitive {
                line.to_lowercase()
            } else {
                line.to_string()
            };
            if hay.contains(&needle) {
                if matches.len() >= max {
                    return Ok(Matches {
                        matches,
                        truncated: true,
                    });
                }
                matches.push(Match {
                    path: file.display().to_string(),
                    line: i + 1,
                    text: line.to_string(),
                });
            }
        }
    }
    Ok(Matches {
        matches,
        truncated: false,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    /// File to write, e.g. "/project/notes.md". Replaced if it exists.
    path: String,
    /// The new contents.
    content: String,
    /// Create missing parent folders.
    #[serde(default)]
    create_dirs: bool,
}

/// Write a text file, replacing it if it exists. Works only in folders mounted read-write.
#[tool(title = "Write file", destructive)]
fn write(args: WriteArgs) -> Result<String, ToolError> {
    let path = Path::new(&args.path);
    if args.create_dirs
        && let Some(parent) = path.parent()
    {
        fs::create_dir_all(parent).map_err(|e| io_error("create", parent, e))?;
    }
    fs::write(path, &args.content).map_err(|e| io_error("write", path, e))?;
    Ok(format!(
        "wrote {} bytes to {}",
        args.content.len(),
        path.display()
    ))
}

export_plugin!(list, read, search, write);

#[cfg(test)]
mod tests {
    use super::*;
    use capsule_sdk::serde_json::json;

    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("src")).unwrap();
        fs::write(dir.path().join("README.md"), "Hello\nTODO: docs\n").unwrap();
        fs::write(
            dir.path().join("src/main.rs"),
            "fn main() {}\n// todo: more\n",
        )
        .unwrap();
        fs::write(dir.path().join("blob.bin"), [0xff, 0xfe, 0x00]).unwrap();
        dir
    }

    fn root(dir: &tempfile::TempDir) -> String {
        dir.path().display().to_string()
    }

    #[test]
    fn lists_recursively_and_sorted() {
        let dir = project();
        let listing = list(ListArgs {
            path: root(&dir),
            recursive: true,
            max_entries: None,
        })
        .unwrap();
        let names: Vec<_> = listing
            .entries
            .iter()
            .map(|e| e.path.strip_prefix(&root(&dir)).unwrap().to_string())
            .collect();
        assert_eq!(names, ["/README.md", "/blob.bin", "/src", "/src/main.rs"]);
        assert_eq!(listing.entries[0].size, Some(17));
        let cut = list(ListArgs {
            path: root(&dir),
            recursive: true,
            max_entries: Some(1),
        })
        .unwrap();
        assert!(cut.truncated && cut.entries.len() == 1);
    }

    #[test]
    fn reads_text_refuses_binary_and_cuts_long_files() {
        let dir = project();
        let p = |f: &str| format!("{}/{f}", root(&dir));
        assert_eq!(
            read(ReadArgs {
                path: p("README.md"),
                max_bytes: None
            })
            .unwrap(),
            "Hello\nTODO: docs\n"
        );
        let err = read(ReadArgs {
            path: p("blob.bin"),
            max_bytes: None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        let cut = read(ReadArgs {
            path: p("README.md"),
            max_bytes: Some(5),
        })
        .unwrap();
        assert!(cut.starts_with("Hello\n[… cut at 5 of 17 bytes"), "{cut}");
        let missing = read(ReadArgs {
            path: p("nope"),
            max_bytes: None,
        })
        .unwrap_err();
        assert!(
            missing.to_string().contains("cannot read") && missing.to_string().contains("mounted"),
            "{missing}"
        );
    }

    #[test]
    fn searches_case_insensitively_with_line_numbers() {
        let dir = project();
        let found = search(SearchArgs {
            path: root(&dir),
            pattern: "todo".into(),
            case_insensitive: true,
            max_results: None,
        })
        .unwrap();
        let hits: Vec<_> = found
            .matches
            .iter()
            .map(|m| (m.path.rsplit('/').next().unwrap().to_string(), m.line))
            .collect();
        assert_eq!(
            hits,
            [("README.md".to_string(), 2), ("main.rs".to_string(), 2)]
        );
        let exact = search(SearchArgs {
            path: root(&dir),
            pattern: "todo".into(),
            case_insensitive: false,
            max_results: None,
        })
        .unwrap();
        assert_eq!(exact.matches.len(), 1);
    }

    #[test]
    fn writes_through_the_host_json_path() {
        let dir = project();
        let path = format!("{}/new/notes.md", root(&dir));
        let out = CAPSULE_PLUGIN
            .call(
                "write",
                &json!({"path": path, "content": "hi", "create_dirs": true}).to_string(),
            )
            .unwrap();
        assert!(out.text_content().starts_with("wrote 2 bytes"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "hi");
        let names: Vec<_> = CAPSULE_PLUGIN
            .definitions()
            .iter()
            .map(|t| t.name.clone())
            .collect();
        assert_eq!(names, ["list", "read", "search", "write"]);
    }
}
