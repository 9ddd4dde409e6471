//! Embeds the `capsule new` templates: for each language in `guest-sdk/<lang>/`, every file
//! of `template/`, the SDK files listed in `template.files`, and `wit/capsule.wit`; and
//! names the source of the host's WIT-to-tool translation by a digest
//! (`CAPSULE_DERIVED_SOURCE`, see `runtime/listing.rs`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let repo = manifest
        .parent()
        .expect("host/ is in the repository")
        .to_path_buf();
    let sdk_root = repo.join("guest-sdk");
    let wit = repo.join("wit/capsule.wit");
    // Exactly what is embedded: watching all of `guest-sdk/` would rebuild the host whenever
    // a guest SDK's tests leave files behind (`__pycache__`, build output). A new language
    // folder is picked up once this script runs again (`touch host/build.rs`).
    println!("cargo:rerun-if-changed={}", wit.display());

    let mut out = String::from("/// (language, [(path in the project, contents)]).\n");
    out.push_str("pub const TEMPLATES: &[(&str, &[(&str, &str)])] = &[\n");
    let mut langs: Vec<PathBuf> = std::fs::read_dir(&sdk_root)
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    langs.sort();
    for lang_dir in langs {
        let template = lang_dir.join("template");
        if !template.is_dir() {
            continue;
        }
        println!("cargo:rerun-if-changed={}", template.display());
        println!(
            "cargo:rerun-if-changed={}",
            lang_dir.join("template.files").display()
        );
        let lang = lang_dir.file_name().unwrap_or_default().to_string_lossy();
        let mut files = Vec::new();
        walk(&template, &template, &mut files);
        let listed = std::fs::read_to_string(lang_dir.join("template.files")).unwrap_or_default();
        for line in listed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let path = lang_dir.join(line);
            println!("cargo:rerun-if-changed={}", path.display());
            files.push((line.to_string(), path));
        }
        files.push(("wit/capsule.wit".into(), wit.clone()));
        writeln!(out, "    ({lang:?}, &[").ok();
        for (relative, path) in files {
            writeln!(
                out,
                "        ({relative:?}, include_str!({:?})),",
                path.display().to_string()
            )
            .ok();
        }
        out.push_str("    ]),\n");
    }
    out.push_str("];\n");
    let dest =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it")).join("templates.rs");
    std::fs::write(dest, out).expect("write templates.rs");
    derived_source(&manifest.join("src/runtime/derived"));
}

/// Sets `CAPSULE_DERIVED_SOURCE` to a digest of every file in `folder` (the source of the
/// translation of WIT functions into tools), with its name: a build whose translation
/// differs has another, so it never lists tools another build derived. Not a security
/// hash: it tells builds apart, nobody forges it.
fn derived_source(folder: &Path) {
    use std::hash::{DefaultHasher, Hash, Hasher};
    // A folder: cargo reruns this script when any file in it changes.
    println!("cargo:rerun-if-changed={}", folder.display());
    let mut files = Vec::new();
    walk(folder, folder, &mut files);
    assert!(!files.is_empty(), "{} has no files", folder.display());
    let mut hasher = DefaultHasher::new();
    for (relative, path) in files {
        relative.hash(&mut hasher);
        std::fs::read(&path)
            .unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
            .hash(&mut hasher);
    }
    println!(
        "cargo:rustc-env=CAPSULE_DERIVED_SOURCE={:016x}",
        hasher.finish()
    );
}

/// Every file under `dir`, as (path relative to `root` with `/`, absolute path), sorted.
fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        // What building or testing a template in place leaves behind is not part of it.
        if ["target", "node_modules", "__pycache__"].contains(&name.as_ref())
            || name.ends_with(".wasm")
            || name.ends_with(".o")
        {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let relative: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            files.push((relative.join("/"), path));
        }
    }
}
