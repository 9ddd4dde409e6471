//! Watching the plugins folder: file events for plugins and their sidecars, collected until
//! the folder has been quiet for a settle time, so a file still being written is not loaded
//! half-way.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long the folder must be quiet before a batch of changes is applied. Long enough for
/// a copy or a compiler writing its output, short enough to feel immediate.
pub const SETTLE: Duration = Duration::from_millis(200);

/// A running watcher of one folder; dropping it stops the events.
pub struct FolderWatch {
    _watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<PathBuf>,
}

/// Whether a change of `path` can change what the loader loads: a `.wasm`, its policy
/// sidecar `NAME.toml`, or the `NAME.wit` that documents derived tools.
pub fn relevant(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == "wasm" || ext == "toml" || ext == "wit")
}

/// Whether `kind` may have changed a file's contents or presence. Reads (ours included:
/// the loader opens every file it examines) are not changes.
fn changes(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

impl FolderWatch {
    /// Watches `dir` (not recursive, as the loader reads it) for [`relevant`] files.
    pub fn start(dir: &Path) -> notify::Result<Self> {
        Self::start_for(dir, relevant)
    }

    /// Watches `dir` (not recursive) for the files `wanted` accepts.
    pub fn start_for(
        dir: &Path,
        wanted: impl Fn(&Path) -> bool + Send + 'static,
    ) -> notify::Result<Self> {
        let (send, events) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            match event {
                Ok(event) if changes(&event.kind) => {
                    for path in event.paths.into_iter().filter(|p| wanted(p)) {
                        // The receiver is gone only when reloading stopped.
                        let _ = send.send(path);
                    }
                }
                Ok(_) => {}
                Err(err) => tracing::warn!("watching the plugins folder: {err}"),
            }
        })?;
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
        Ok(Self {
            _watcher: watcher,
            events,
        })
    }

    /// The next batch of changed files: waits for a first change, then collects every
    /// change until none arrived for `settle`. `None` once the watcher stopped.
    pub async fn settled(&mut self, settle: Duration) -> Option<BTreeSet<PathBuf>> {
        let first = self.events.recv().await?;
        let mut batch = BTreeSet::from([first]);
        while let Ok(Some(path)) = tokio::time::timeout(settle, self.events.recv()).await {
            batch.insert(path);
        }
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_and_sidecars_are_relevant_other_files_not() {
        for path in ["p/echo.wasm", "p/echo.toml", "p/echo.wit"] {
            assert!(relevant(Path::new(path)), "{path}");
        }
        for path in [
            "p/echo.wasm.tmp",
            "p/.echo.wasm.swp",
            "p/notes.md",
            "p/echo",
        ] {
            assert!(!relevant(Path::new(path)), "{path}");
        }
    }

    #[tokio::test]
    async fn a_burst_of_writes_arrives_as_one_batch_after_the_folder_settles() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut watch = FolderWatch::start(dir.path()).expect("watch");
        let file = dir.path().join("echo.wasm");
        for part in 0..5u8 {
            std::fs::write(&file, vec![part; 1024]).expect("write");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        std::fs::write(dir.path().join("notes.md"), "ignored").expect("write");
        let batch = tokio::time::timeout(Duration::from_secs(10), watch.settled(SETTLE))
            .await
            .expect("a batch arrives")
            .expect("watching");
        assert_eq!(batch, BTreeSet::from([file]));
        let more = tokio::time::timeout(SETTLE * 3, watch.settled(SETTLE)).await;
        assert!(more.is_err(), "one burst is one batch: {more:?}");
    }
}
