//! Doc comments for WIT-derived tools. Components do not carry their WIT's doc comments
//! (wit-bindgen and componentize-* drop them), so they come from the WIT itself, put next to
//! the component as a sidecar: `rich.wit` (a file, or a folder of `.wit` files) beside
//! `rich.wasm`, just as `rich.toml` holds its policy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use wit_parser::{Resolve, WorldItem, WorldKey};

/// The sidecar WIT of `wasm`: `<stem>.wit` beside it, if it exists.
pub fn sidecar(wasm: &Path) -> Option<PathBuf> {
    let path = wasm.with_extension("wit");
    path.exists().then_some(path)
}

/// Doc comments of the functions in the WIT at `path`, keyed like
/// [`super::Function::export`]: `greet` for a function a world exports directly,
/// `example:rich/shapes@0.1.0#area` for one in an interface.
pub fn read(path: &Path) -> Result<HashMap<String, String>, String> {
    let mut resolve = Resolve::default();
    if let Err(err) = resolve.push_path(path) {
        return Err(resolve.render_error(&err));
    }
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
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_are_keyed_by_export() {
        let dir = tempfile::tempdir().unwrap();
        let wit = dir.path().join("x.wit");
        std::fs::write(
            &wit,
            "package a:b@1.0.0;\ninterface i {\n  /// Adds.\n  add: func(x: u8) -> u8;\n  sub: func();\n}\n\
             world w {\n  export i;\n  /// Says hi.\n  export hi: func();\n}\n",
        )
        .unwrap();
        let docs = read(&wit).unwrap();
        assert_eq!(docs["a:b/i@1.0.0#add"], "Adds.");
        assert_eq!(docs["hi"], "Says hi.");
        assert_eq!(docs.len(), 2, "{docs:?}");
        std::fs::write(&wit, "package a:b;\ninterface i { oops }\n").unwrap();
        let err = read(&wit).unwrap_err();
        assert!(err.contains("x.wit"), "{err}");
    }
}
