//! Replacing a config file safely: the new text goes to a temporary file in the same
//! folder, which is renamed over the old one (readers see the old or the new file, never
//! half), after the old one is copied to `FILE.bak`. A symlinked config is written through
//! the link, and the file keeps its permissions.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `text` to `path`; returns the backup of the previous file, if there was one.
pub fn replace(path: &Path, text: &str) -> std::io::Result<Option<PathBuf>> {
    let target = if path.is_symlink() {
        std::fs::canonicalize(path)?
    } else {
        path.to_path_buf()
    };
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let previous = std::fs::metadata(&target).ok();
    let backup = match &previous {
        Some(_) => {
            let backup = dir.join(format!("{file_name}.bak"));
            std::fs::copy(&target, &backup)?;
            Some(backup)
        }
        None => None,
    };
    let temp = dir.join(format!(".{file_name}.capsule-{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        if let Some(previous) = &previous {
            std::fs::set_permissions(&temp, previous.permissions())?;
        }
        std::fs::rename(&temp, &target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.map(|()| backup)
}
