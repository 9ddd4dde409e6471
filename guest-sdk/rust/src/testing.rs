//! Stand-ins for the host, for unit tests on the build machine (native targets only).
//!
//! State is per thread, and cargo runs each test on its own thread, so tests don't see each
//! other's config or progress.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::host::{Caller, Level};

/// One `progress` report, as recorded by the stand-in.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressReport {
    pub done: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

#[derive(Default)]
struct FakeHost {
    config: HashMap<String, String>,
    cancelled: bool,
    progress: Vec<ProgressReport>,
    logs: Vec<(Level, String)>,
    caller: Option<Caller>,
}

thread_local! {
    static HOST: RefCell<FakeHost> = RefCell::new(FakeHost::default());
}

/// Makes `capsule_sdk::config(key)` return `value` on this thread.
pub fn set_config(key: &str, value: &str) {
    HOST.with_borrow_mut(|host| host.config.insert(key.to_owned(), value.to_owned()));
}

/// Makes `capsule_sdk::cancelled()` return `cancelled` on this thread.
pub fn set_cancelled(cancelled: bool) {
    HOST.with_borrow_mut(|host| host.cancelled = cancelled);
}

/// Makes `capsule_sdk::caller()` return `caller` on this thread.
pub fn set_caller(caller: Option<Caller>) {
    HOST.with_borrow_mut(|host| host.caller = caller);
}

/// The progress reports made on this thread so far, emptying the record.
pub fn take_progress() -> Vec<ProgressReport> {
    HOST.with_borrow_mut(|host| std::mem::take(&mut host.progress))
}

/// The log lines written on this thread so far, emptying the record.
pub fn take_logs() -> Vec<(Level, String)> {
    HOST.with_borrow_mut(|host| std::mem::take(&mut host.logs))
}

pub(crate) mod stand_ins {
    use super::{HOST, ProgressReport};
    use crate::host::Level;

    pub fn log(level: Level, message: &str) {
        HOST.with_borrow_mut(|host| host.logs.push((level, message.to_owned())));
    }

    pub fn progress(done: f64, total: Option<f64>, message: Option<&str>) {
        HOST.with_borrow_mut(|host| {
            host.progress.push(ProgressReport {
                done,
                total,
                message: message.map(str::to_owned),
            })
        });
    }

    pub fn cancelled() -> bool {
        HOST.with_borrow(|host| host.cancelled)
    }

    pub fn config(key: &str) -> Option<String> {
        HOST.with_borrow(|host| host.config.get(key).cloned())
    }

    pub fn caller() -> Option<crate::Caller> {
        HOST.with_borrow(|host| host.caller.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Caller, caller, cancelled, config, log, progress};

    #[test]
    fn stand_ins_record_what_a_tool_did() {
        assert_eq!(config("api-key"), None);
        set_config("api-key", "secret");
        assert_eq!(config("api-key").as_deref(), Some("secret"));

        assert!(!cancelled());
        set_cancelled(true);
        assert!(cancelled());

        progress(1.0, Some(4.0), Some("reading"));
        assert_eq!(
            take_progress(),
            vec![ProgressReport {
                done: 1.0,
                total: Some(4.0),
                message: Some("reading".into())
            }]
        );
        assert!(take_progress().is_empty());

        log::warn("careful");
        assert_eq!(take_logs(), vec![(Level::Warn, "careful".to_owned())]);

        assert_eq!(caller(), None);
        let alice = Caller {
            name: "alice".into(),
            scopes: vec!["tools:call".into()],
        };
        set_caller(Some(alice.clone()));
        assert_eq!(caller(), Some(alice));
        assert!(caller().is_some_and(|c| c.has_scope("tools:call") && !c.has_scope("tools")));
    }
}
