//! Every difference between a lock and what is loaded now, one line each.

use std::collections::BTreeMap;
use std::path::Path;

use crate::loader::{Problem, Severity};

use super::{Lock, LockedPlugin};

/// The differences between `locked` and `now`, then every load error in `problems`.
/// `plugins_dir` tells a removed plugin from one whose file is there but did not load.
pub(super) fn differences(
    locked: &Lock,
    now: &Lock,
    problems: &[Problem],
    plugins_dir: &Path,
) -> Vec<String> {
    let mut out = Vec::new();
    if locked.capsule != now.capsule {
        out.push(format!(
            "capsule version changed: the lock was written by {}, this is {}",
            locked.capsule, now.capsule
        ));
    }
    if locked.config.digest != now.config.digest {
        out.push(format!(
            "config digest changed: was {} now {}",
            locked.config.digest, now.config.digest
        ));
        map_changes(
            &mut out,
            "config: setting",
            &locked.config.settings,
            &now.config.settings,
        );
    }
    for (name, was) in &locked.plugins {
        match now.plugins.get(name) {
            Some(is) => plugin_changes(&mut out, name, was, is),
            None if was.source.is_some() => out.push(format!(
                "plugin `{name}` from {} did not load or was removed (any load error is listed below)",
                was.file
            )),
            None if plugins_dir.join(&was.file).is_file() => out.push(format!(
                "plugin `{name}` did not load ({} is in {}; its load error is listed below)",
                was.file,
                plugins_dir.display()
            )),
            None => out.push(format!(
                "plugin `{name}` removed: {} is not in {}",
                was.file,
                plugins_dir.display()
            )),
        }
    }
    for (name, is) in &now.plugins {
        if !locked.plugins.contains_key(name) {
            out.push(format!(
                "plugin `{name}` added: {} ({})",
                is.file, is.sha256
            ));
        }
    }
    out.extend(
        problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| format!("load error: {}", p.message)),
    );
    out
}

fn plugin_changes(out: &mut Vec<String>, name: &str, was: &LockedPlugin, is: &LockedPlugin) {
    let at = format!("plugin `{name}`:");
    if was.file != is.file {
        out.push(format!(
            "{at} file changed: was {} now {}",
            was.file, is.file
        ));
    }
    if was.source != is.source {
        out.push(format!(
            "{at} source changed: was {} now {}",
            was.source.as_deref().unwrap_or("a file"),
            is.source.as_deref().unwrap_or("a file")
        ));
    }
    if was.sha256 != is.sha256 {
        out.push(format!(
            "{at} digest changed: was {} now {}",
            was.sha256, is.sha256
        ));
    }
    for grant in &was.grants {
        if !is.grants.contains(grant) {
            out.push(format!("{at} grant removed: {grant}"));
        }
    }
    for grant in &is.grants {
        if !was.grants.contains(grant) {
            out.push(format!("{at} grant added: {grant}"));
        }
    }
    map_changes(out, &format!("{at} limit"), &was.limits, &is.limits);
    map_changes(out, &format!("{at} setting"), &was.settings, &is.settings);
    for (tool, digest) in &was.tools {
        match is.tools.get(tool) {
            None => out.push(format!("{at} tool `{tool}` removed")),
            Some(now) if now != digest => out.push(format!(
                "{at} tool `{tool}` schema changed: was {digest} now {now}"
            )),
            Some(_) => {}
        }
    }
    for tool in is.tools.keys() {
        if !was.tools.contains_key(tool) {
            out.push(format!("{at} tool `{tool}` added"));
        }
    }
}

/// Keys of `was` and `is` that were added, removed or changed, as `PREFIX key …` lines.
fn map_changes(
    out: &mut Vec<String>,
    prefix: &str,
    was: &BTreeMap<String, String>,
    is: &BTreeMap<String, String>,
) {
    for (key, old) in was {
        match is.get(key) {
            None => out.push(format!("{prefix} {key} removed (was {old})")),
            Some(new) if new != old => out.push(format!("{prefix} {key} changed: {old} → {new}")),
            Some(_) => {}
        }
    }
    for (key, new) in is {
        if !was.contains_key(key) {
            out.push(format!("{prefix} {key} added: {new}"));
        }
    }
}
