//! Doc comments for WIT-derived tools. Components do not carry their WIT's doc comments
//! (wit-bindgen and componentize-* drop them), so they come from the WIT itself, put next to
//! the component as a sidecar: `rich.wit` (a file, or a folder of `.wit` files) beside
//! `rich.wasm`, just as `rich.toml` holds its policy.
//!
//! A sidecar is read once per load, on a blocking thread ([`Sidecar::read`]): the same read
//! gives the doc comments and the digest that fingerprints the tools remembered for the
//! next start (`runtime/listing.rs`), so what is remembered is what was read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wit_parser::{Resolve, WorldItem, WorldKey};

use crate::bounded_file;
use crate::units::ByteSize;

/// The sidecar WIT of `wasm`: `<stem>.wit` beside it, if it exists.
pub fn sidecar(wasm: &Path) -> Option<PathBuf> {
    let path = wasm.with_extension("wit");
    path.exists().then_some(path)
}

/// A plugin's sidecar WIT, as read once: its digest and its doc comments.
#[derive(Debug)]
pub struct Sidecar {
    /// The sidecar file or folder.
    pub path: PathBuf,
    /// sha256 of what was read: the file, or every file in the folder (with its path
    /// inside it), in name order; of the error if it could not be read.
    pub digest: [u8; 32],
    /// Its doc comments, keyed as [`docs_of`] keys them, or why they cannot be read.
    pub docs: Result<HashMap<String, String>, String>,
}

impl Sidecar {
    /// Reads the sidecar WIT of the plugin at `wasm`, if it has one. Blocking.
    pub fn read(wasm: &Path) -> Option<Sidecar> {
        let path = sidecar(wasm)?;
        let (digest, contents) = contents(&path);
        let docs = contents.and_then(|contents| match contents {
            Contents::File(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => parse(|resolve| resolve.push_str(&path, text).map(|_| ())),
                Err(err) => Err(format!("{}: not UTF-8 text: {err}", path.display())),
            },
            // wit-parser reads a folder itself (its `deps` are packages of their own).
            Contents::Folder => parse(|resolve| resolve.push_path(&path).map(|_| ())),
        });
        Some(Sidecar { path, digest, docs })
    }

    /// Only the digest of the sidecar WIT of the plugin at `wasm` (what [`Sidecar::read`]
    /// would give), without parsing it. Blocking.
    pub fn digest(wasm: &Path) -> Option<[u8; 32]> {
        sidecar(wasm).map(|path| contents(&path).0)
    }
}

/// What a sidecar holds: a file's bytes, or a folder (hashed, left to wit-parser to read).
enum Contents {
    File(Vec<u8>),
    Folder,
}

/// How deep a folder sidecar is hashed: its files, `deps/` and each package folder in it,
/// which is all wit-parser reads. The bound also ends a symlink loop.
const FOLDER_DEPTH: usize = 2;

/// The most WIT a sidecar may hold, in one file or all the files of a folder (WASI 0.2's
/// whole WIT is ~200 KiB). A sidecar only documents tools; a larger one is refused unread.
pub const MAX_WIT: ByteSize = ByteSize::mib(4);

/// The most files a folder sidecar may hold.
const MAX_FILES: usize = 1024;

/// What [`MAX_WIT`] bounds, in messages.
const WIT: &str = "sidecar WIT";

/// Reads the sidecar at `path`: the sha256 of what was read (a file; or a folder's files
/// down to [`FOLDER_DEPTH`], each with its path inside it, in name order; or the error),
/// and the contents, or why they could not be read.
fn contents(path: &Path) -> ([u8; 32], Result<Contents, String>) {
    let read = if path.is_dir() {
        folder_digest(path).map(|digest| (digest, Contents::Folder))
    } else {
        bounded_file::read(path, MAX_WIT, WIT)
            .map(|bytes| (Sha256::digest(&bytes).into(), Contents::File(bytes)))
    };
    match read {
        Ok((digest, contents)) => (digest, Ok(contents)),
        Err(err) => {
            let message = format!("cannot read {}: {err}", path.display());
            (Sha256::digest(&message).into(), Err(message))
        }
    }
}

/// The sha256 of the files of the folder `path` (see [`contents`]); at most [`MAX_FILES`]
/// files of [`MAX_WIT`] in all.
fn folder_digest(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut files = Vec::new();
    collect_files(path, FOLDER_DEPTH, &mut files)?;
    files.sort();
    let mut total = 0u64;
    for file in &files {
        total += std::fs::metadata(file)?.len();
    }
    if total > MAX_WIT.0 {
        return Err(bounded_file::too_large(total, MAX_WIT, WIT));
    }
    let mut digest = Sha256::new();
    let mut read = 0u64;
    for file in files {
        let inside = file.strip_prefix(path).unwrap_or(&file);
        digest.update(inside.to_string_lossy().as_bytes());
        digest.update(b"\0");
        let bytes = bounded_file::read(&file, MAX_WIT, WIT)?;
        // Files that grew since their sizes were added up.
        read += bytes.len() as u64;
        if read > MAX_WIT.0 {
            return Err(bounded_file::too_large(read, MAX_WIT, WIT));
        }
        digest.update((bytes.len() as u64).to_le_bytes());
        digest.update(&bytes);
    }
    Ok(digest.finalize().into())
}

/// Every file under `folder`, and in its folders `depth` levels down (more than
/// [`MAX_FILES`] is an error).
fn collect_files(folder: &Path, depth: usize, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if !path.is_dir() {
            if files.len() == MAX_FILES {
                return Err(std::io::Error::other(format!(
                    "it holds more than the {MAX_FILES} files a {WIT} folder may"
                )));
            }
            files.push(path);
        } else if depth > 0 {
            collect_files(&path, depth - 1, files)?;
        }
    }
    Ok(())
}

/// The doc comments of the WIT that `push` puts into a fresh [`Resolve`].
fn parse(
    push: impl FnOnce(&mut Resolve) -> anyhow::Result<()>,
) -> Result<HashMap<String, String>, String> {
    let mut resolve = Resolve::default();
    if let Err(err) = push(&mut resolve) {
        return Err(resolve.render_error(&err));
    }
    Ok(docs_of(&resolve))
}

/// Doc comments of the functions in `resolve`, keyed like [`super::Function::export`]:
/// `greet` for a function a world exports directly, `example:rich/shapes@0.1.0#area` for
/// one in an interface.
fn docs_of(resolve: &Resolve) -> HashMap<String, String> {
    let mut docs = HashMap::new();
    for (_, interface) in resolve.interfaces.iter() {
        let (Some(package), Some(name)) = (interface.package, interface.name.as_deref()) else {
            continue;
        };
        let id = resolve.id_of_name(package, name);
        for (function, f) in &interface.functions {
            if let Some(text) = &f.docs.contents {
                docs.insert(format!("{id}#{function}"), text.trim().to_string());
            }
        }
    }
    for (_, world) in resolve.worlds.iter() {
        for (key, item) in &world.exports {
            if let (WorldKey::Name(name), WorldItem::Function(f)) = (key, item)
                && let Some(text) = &f.docs.contents
            {
                docs.insert(name.clone(), text.trim().to_string());
            }
        }
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sidecar of `wasm`, read.
    fn read(wasm: &Path) -> Sidecar {
        Sidecar::read(wasm).expect("a sidecar")
    }

    #[test]
    fn docs_are_keyed_by_export() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("x.wasm");
        assert!(Sidecar::read(&wasm).is_none(), "no sidecar");
        assert!(Sidecar::digest(&wasm).is_none(), "no sidecar");
        std::fs::write(
            wasm.with_extension("wit"),
            "package a:b@1.0.0;\ninterface i {\n  /// Adds.\n  add: func(x: u8) -> u8;\n  sub: func();\n}\n\
             world w {\n  export i;\n  /// Says hi.\n  export hi: func();\n}\n",
        )
        .unwrap();
        let sidecar = read(&wasm);
        let docs = sidecar.docs.as_ref().unwrap();
        assert_eq!(docs["a:b/i@1.0.0#add"], "Adds.");
        assert_eq!(docs["hi"], "Says hi.");
        assert_eq!(docs.len(), 2, "{docs:?}");
        assert_eq!(Sidecar::digest(&wasm), Some(sidecar.digest));
        std::fs::write(
            wasm.with_extension("wit"),
            "package a:b;\ninterface i { oops }\n",
        )
        .unwrap();
        let changed = read(&wasm);
        let err = changed.docs.unwrap_err();
        assert!(err.contains("x.wit"), "{err}");
        assert_ne!(changed.digest, sidecar.digest);
    }

    /// A folder sidecar: its docs, and a digest that changes with any file in it, its
    /// `deps` too.
    #[test]
    fn a_folder_sidecar_is_read_and_every_file_in_it_counts() {
        let (_dir, wasm, folder) = folder_sidecar(
            "package a:b;\nworld w {\n  use a:types/t.{id};\n  /// Finds one.\n  export find: func(x: id) -> id;\n}\n",
        );
        std::fs::write(
            folder.join("deps/types.wit"),
            "package a:types;\ninterface t {\n  type id = u32;\n}\n",
        )
        .unwrap();
        let first = read(&wasm);
        assert_eq!(first.docs.as_ref().unwrap()["find"], "Finds one.");
        assert_eq!(Sidecar::digest(&wasm), Some(first.digest));
        std::fs::write(
            folder.join("deps/types.wit"),
            "package a:types;\ninterface t {\n  type id = u64;\n}\n",
        )
        .unwrap();
        let second = read(&wasm);
        assert_ne!(second.digest, first.digest, "a dependency changed");
        assert_eq!(second.docs.unwrap()["find"], "Finds one.");
    }

    /// A folder sidecar with two symlinks to itself is hashed to a bounded depth: followed
    /// until the kernel's symlink limit, the two loops would be 2^40 folders.
    #[cfg(unix)]
    #[test]
    fn a_symlink_loop_in_a_folder_sidecar_is_not_followed_for_ever() {
        let (_dir, wasm, folder) =
            folder_sidecar("package a:b;\nworld w {\n  /// Greets.\n  export hi: func();\n}\n");
        std::os::unix::fs::symlink(&folder, folder.join("deps/loop")).unwrap();
        std::os::unix::fs::symlink(&folder, folder.join("deps/again")).unwrap();
        let sidecar = read(&wasm);
        assert_eq!(Sidecar::digest(&wasm), Some(sidecar.digest));
        // wit-parser reads the links in `deps` as package folders: the same package again.
        let err = sidecar.docs.unwrap_err();
        assert!(
            err.contains("package `a:b` is defined in two different locations"),
            "{err}"
        );
    }

    /// A sidecar over [`MAX_WIT`], a file or a folder's files together, is refused unread,
    /// and so is a folder of more than [`MAX_FILES`] files.
    #[test]
    fn a_sidecar_over_the_bound_is_refused_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("big.wasm");
        let file = std::fs::File::create(wasm.with_extension("wit")).unwrap();
        file.set_len(1 << 30).unwrap();
        let err = read(&wasm).docs.unwrap_err();
        assert_eq!(
            err,
            format!(
                "cannot read {}: it is 1 GiB, larger than the 4 MiB a sidecar WIT may be",
                wasm.with_extension("wit").display()
            )
        );

        let (_dir, wasm, folder) =
            folder_sidecar("package a:b;\nworld w {\n  export hi: func();\n}\n");
        for name in ["deps/one.wit", "deps/two.wit"] {
            let file = std::fs::File::create(folder.join(name)).unwrap();
            file.set_len(3 << 20).unwrap();
        }
        let err = read(&wasm).docs.unwrap_err();
        assert!(
            err.ends_with(": it is 6.0 MiB, larger than the 4 MiB a sidecar WIT may be"),
            "{err}"
        );
        for i in 0..=MAX_FILES {
            std::fs::write(folder.join(format!("deps/{i}.wit")), "").unwrap();
        }
        let err = read(&wasm).docs.unwrap_err();
        assert!(
            err.ends_with(": it holds more than the 1024 files a sidecar WIT folder may"),
            "{err}"
        );
    }

    /// A temporary folder holding the folder sidecar of `x.wasm`: `x.wit/world.wit` with
    /// `world`, and an empty `x.wit/deps`. Returns the folder (kept while it lives), the
    /// `.wasm` path and the sidecar folder.
    fn folder_sidecar(world: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("x.wasm");
        let folder = wasm.with_extension("wit");
        std::fs::create_dir_all(folder.join("deps")).unwrap();
        std::fs::write(folder.join("world.wit"), world).unwrap();
        (dir, wasm, folder)
    }
}
