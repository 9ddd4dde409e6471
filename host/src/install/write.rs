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

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_symlinked_config_is_written_through_the_link_keeping_mode_and_a_backup() {
        let dir = tempfile::tempdir().expect("temp dir");
        let real = dir.path().join("dotfiles-claude.json");
        std::fs::write(&real, "{\"old\": true}\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join(".claude.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();

        let backup = replace(&link, "{\"new\": true}\n").expect("written");

        assert!(link.is_symlink(), "the link was replaced by a file");
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "{\"new\": true}\n");
        let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let backup = backup.expect("a backup of the previous file");
        assert_eq!(backup, dir.path().join("dotfiles-claude.json.bak"));
        assert_eq!(
            std::fs::read_to_string(backup).unwrap(),
            "{\"old\": true}\n"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "temporary file left behind: {left:?}");
    }
}
