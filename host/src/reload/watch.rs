//! Watching the plugins folder: file events for plugins and their sidecars, collected until
//! the folder has been quiet for a settle time, so a file still being written is not loaded
//! half-way.
//!
//! A file whose last event says its writer is done with it (closed after writing, renamed
//! into place, removed) needs no long wait: the batch is applied after [`QUIET`]. A file
//! still open for writing, or one whose writer the events cannot tell (a write seen
//! without its close), waits the full [`SETTLE`] after its last event. Either way the
//! loader validates what it reads, so a file that is still incomplete is refused and the
//! last good version keeps serving until the next event.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long the folder must be quiet before a batch of changes is applied. Long enough for
/// a copy or a compiler writing its output, short enough to feel immediate.
pub const SETTLE: Duration = Duration::from_millis(200);

/// How long the folder must be quiet when every changed file is complete: enough to
/// gather a plugin and its sidecar written together into one batch.
pub const QUIET: Duration = Duration::from_millis(10);

/// A running watcher of one folder; dropping it stops the events.
pub struct FolderWatch {
    _watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<(PathBuf, Written)>,
}

/// What an event says about whether a file's writer is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// Closed after writing, renamed, removed, or only its metadata changed.
    Complete,
    /// Created or written, with no close seen yet.
    InProgress,
}

/// Whether a change of `path` can change what the loader loads: a `.wasm`, its policy
/// sidecar `NAME.toml`, or the `NAME.wit` that documents derived tools.
pub fn relevant(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == "wasm" || ext == "toml" || ext == "wit")
}

/// Whether `kind` may have changed a file's contents or presence, and if so whether its
/// writer is done. Reads (ours included: the loader opens every file it examines) are
/// not changes.
fn change(kind: &EventKind) -> Option<Written> {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Written::Complete),
        EventKind::Access(_) => None,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_) | ModifyKind::Metadata(_)) => {
            Some(Written::Complete)
        }
        _ => Some(Written::InProgress),
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
                Ok(event) => {
                    let Some(written) = change(&event.kind) else {
                        return;
                    };
                    for path in event.paths.into_iter().filter(|p| wanted(p)) {
                        // The receiver is gone only when reloading stopped.
                        let _ = send.send((path, written));
                    }
                }
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
    /// change until none arrived for `settle`, or for [`QUIET`] while the last event of
    /// every file in the batch says its writer is done. `None` once the watcher stopped.
    pub async fn settled(&mut self, settle: Duration) -> Option<BTreeSet<PathBuf>> {
        let (path, written) = self.events.recv().await?;
        let mut batch = BTreeMap::from([(path, written)]);
        loop {
            let complete = batch.values().all(|w| *w == Written::Complete);
            let wait = if complete { QUIET.min(settle) } else { settle };
            match tokio::time::timeout(wait, self.events.recv()).await {
                Ok(Some((path, written))) => {
                    batch.insert(path, written);
                }
                Ok(None) | Err(_) => break,
            }
        }
        Some(batch.into_keys().collect())
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

    #[test]
    fn a_close_after_writing_a_rename_and_a_removal_complete_a_file_a_write_does_not() {
        use notify::event::{CreateKind, DataChange, RemoveKind, RenameMode};
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        let removed = EventKind::Remove(RemoveKind::File);
        for kind in [close, renamed, removed] {
            assert_eq!(change(&kind), Some(Written::Complete), "{kind:?}");
        }
        let created = EventKind::Create(CreateKind::File);
        let written = EventKind::Modify(ModifyKind::Data(DataChange::Content));
        for kind in [created, written] {
            assert_eq!(change(&kind), Some(Written::InProgress), "{kind:?}");
        }
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert_eq!(change(&read), None);
    }

    #[tokio::test]
    async fn a_file_held_open_for_writing_waits_for_its_close() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut watch = FolderWatch::start(dir.path()).expect("watch");
        let path = dir.path().join("echo.wasm");
        let mut file = std::fs::File::create(&path).expect("create");
        file.write_all(b"\0asm").expect("write");
        // Open and written, not closed: no batch while the writer pauses for less than
        // SETTLE, though far longer than QUIET.
        let early = tokio::time::timeout(SETTLE / 2, watch.settled(SETTLE)).await;
        assert!(
            early.is_err(),
            "a file still open came as a batch: {early:?}"
        );
        file.write_all(&[1; 64]).expect("write more");
        drop(file);
        let batch = tokio::time::timeout(Duration::from_secs(10), watch.settled(SETTLE))
            .await
            .expect("a batch once it is closed")
            .expect("watching");
        assert_eq!(batch, BTreeSet::from([path]));
    }

    #[tokio::test]
    async fn a_burst_of_writes_arrives_as_one_batch_after_the_folder_settles() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut watch = FolderWatch::start(dir.path()).expect("watch");
        let path = dir.path().join("echo.wasm");
        let mut file = std::fs::File::create(&path).expect("create");
        for part in 0..5u8 {
            file.write_all(&[part; 1024]).expect("write");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(file);
        std::fs::write(dir.path().join("notes.md"), "ignored").expect("write");
        let batch = tokio::time::timeout(Duration::from_secs(10), watch.settled(SETTLE))
            .await
            .expect("a batch arrives")
            .expect("watching");
        assert_eq!(batch, BTreeSet::from([path]));
        let more = tokio::time::timeout(SETTLE * 3, watch.settled(SETTLE)).await;
        assert!(more.is_err(), "one burst is one batch: {more:?}");
    }
}
