//! Where audit lines go: a bounded channel to one writer thread, which writes each record
//! as one line (a single `write` to a file opened for appending, or to stderr) as soon
//! as it arrives. The call path never waits: when the channel is full the record is
//! counted as dropped, and the writer reports the count as an `audit.dropped` event
//! before its next line.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::SystemTime;

use super::event::{Event, Record};
use super::time::rfc3339;
use crate::config::AuditTarget;

/// Records the channel holds before new ones are dropped.
pub const CAPACITY: usize = 1024;

/// The audit log file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot open the audit log {}: {reason}; create its folder, or set audit.path to a file Capsule may write (or \"-\" for stderr)",
    path.display()
)]
pub struct AuditError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: std::io::Error,
}

enum Message {
    Line(Record),
    Close,
}

/// The sending side; the writer thread owns the output.
pub struct Sink {
    tx: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Sink {
    /// Opens `target` and starts the writer thread, with room for `capacity` records.
    pub fn open(target: &AuditTarget, capacity: usize) -> Result<Self, AuditError> {
        let out: Box<dyn Write + Send> = match target {
            AuditTarget::Stderr => Box::new(std::io::stderr()),
            AuditTarget::File(path) => Box::new(open_file(path)?),
        };
        Ok(Self::start(out, target.to_string(), capacity))
    }

    /// Starts the writer thread on `out`, named `name` in error messages.
    fn start(out: Box<dyn Write + Send>, name: String, capacity: usize) -> Self {
        let (tx, rx) = sync_channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        let writer = std::thread::Builder::new()
            .name("capsule-audit".into())
            .spawn(move || write_lines(rx, out, &name, &counter))
            .ok();
        if writer.is_none() {
            tracing::error!("cannot start the audit log writer thread; audit events are lost");
        }
        Self {
            tx,
            dropped,
            writer: Mutex::new(writer),
        }
    }

    /// Queues `event`, stamped now; counts it as dropped when the writer is behind.
    pub fn send(&self, event: Event) {
        let record = Record {
            ts: rfc3339(SystemTime::now()),
            event,
        };
        match self.tx.try_send(Message::Line(record)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Writes what is queued and stops the writer (waiting for it). Later events are
    /// dropped.
    pub fn close(&self) {
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer
            && self.tx.send(Message::Close).is_ok()
        {
            let _ = writer.join();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.close();
    }
}

/// Opens `path` for appending, creating it readable and writable by this user only.
fn open_file(path: &Path) -> Result<File, AuditError> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(|reason| AuditError {
        path: path.to_path_buf(),
        reason,
    })?;
    #[cfg(unix)]
    if let Ok(meta) = file.metadata() {
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "the audit log {} has mode {mode:o}: others may read it; `chmod 600` it",
                path.display()
            );
        }
    }
    Ok(file)
}

/// The writer thread: one line per record, the dropped count first when there is one.
fn write_lines(
    rx: Receiver<Message>,
    mut out: Box<dyn Write + Send>,
    name: &str,
    dropped: &AtomicU64,
) {
    let mut failing = false;
    let mut write = |record: &Record| {
        let mut line = match serde_json::to_string(record) {
            Ok(line) => line,
            Err(err) => format!(
                r#"{{"ts":"{}","event":"audit.unserializable","error":{}}}"#,
                record.ts,
                serde_json::Value::String(err.to_string())
            ),
        };
        line.push('\n');
        match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => failing = false,
            Err(err) if !failing => {
                failing = true;
                tracing::error!("cannot write the audit log {name}: {err}");
            }
            Err(_) => {}
        }
    };
    let report_drops = |write: &mut dyn FnMut(&Record)| {
        let count = dropped.swap(0, Ordering::Relaxed);
        if count > 0 {
            write(&Record {
                ts: rfc3339(SystemTime::now()),
                event: Event::Dropped { count },
            });
        }
    };
    while let Ok(message) = rx.recv() {
        report_drops(&mut write);
        match message {
            Message::Line(record) => write(&record),
            Message::Close => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// Output that says when a write starts, blocks it until the test lets it go, and
    /// keeps what it got.
    struct Gate {
        written: Arc<Mutex<Vec<u8>>>,
        entered: mpsc::Sender<()>,
        go: mpsc::Receiver<()>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.entered.send(());
            let _ = self.go.recv();
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn stop(reason: &str) -> Event {
        Event::ServerStop {
            reason: reason.into(),
            calls_cut_off: 0,
        }
    }

    fn events(written: &[u8]) -> Vec<serde_json::Value> {
        String::from_utf8_lossy(written)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_full_channel_drops_and_reports_the_count_instead_of_blocking() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let (entered, writing) = mpsc::channel();
        let (go, gate) = mpsc::channel();
        let out = Gate {
            written: written.clone(),
            entered,
            go: gate,
        };
        let sink = Sink::start(Box::new(out), "test".into(), 2);
        sink.send(stop("first"));
        // The writer holds the first record, blocked writing it: two more fill the
        // channel, the next three are dropped, and none of these sends waits.
        writing.recv().unwrap();
        for reason in ["second", "third", "lost", "lost", "lost"] {
            sink.send(stop(reason));
        }
        assert_eq!(sink.dropped.load(Ordering::Relaxed), 3);
        drop(go);
        sink.close();
        let lines = events(&written.lock().unwrap());
        let seen: Vec<String> = lines
            .iter()
            .map(|l| match l["event"].as_str().unwrap() {
                "audit.dropped" => format!("dropped {}", l["count"]),
                _ => l["reason"].as_str().unwrap().to_string(),
            })
            .collect();
        assert_eq!(seen, ["first", "dropped 3", "second", "third"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_log_file_is_private_and_appended_to() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        for reason in ["one", "two"] {
            let sink = Sink::open(&AuditTarget::File(path.clone()), CAPACITY).unwrap();
            sink.send(stop(reason));
            sink.close();
        }
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let lines = events(&std::fs::read(&path).unwrap());
        let reasons: Vec<&str> = lines
            .iter()
            .map(|l| l["reason"].as_str().unwrap())
            .collect();
        assert_eq!(reasons, ["one", "two"]);
    }

    #[test]
    fn a_missing_folder_names_the_file_and_the_fix() {
        let err = Sink::open(
            &AuditTarget::File("/nonexistent/capsule/audit.jsonl".into()),
            CAPACITY,
        )
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "cannot open the audit log /nonexistent/capsule/audit.jsonl: No such file or directory (os error 2); create its folder, or set audit.path to a file Capsule may write (or \"-\" for stderr)"
        );
    }
}
