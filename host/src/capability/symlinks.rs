//! Symlinks a plugin may create in a writable mount. `cap-std` already stops the plugin from
//! following any symlink out of its mounts, but a link it leaves behind is followed by
//! whatever else reads the folder on the host (an editor, a backup, a build). So
//! `wasi:filesystem`'s `symlink-at` is wrapped: a target must be a relative path that only
//! goes down from the link's folder (no leading `/`, no `..`). Such a link stays inside the
//! mount wherever the plugin later moves it or the folder holding it; a target with `..`
//! would not (moving its folder up a level makes `../x` point one level higher).
//! Refused targets fail with `not-permitted` and a `warn` log line.

use std::path::{Component, Path};

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    Descriptor, ErrorCode, Host as _, HostDescriptor as _,
};

use crate::runtime::state::CallState;

/// The `wasi:filesystem/types` instance `wasmtime_wasi::p2::add_to_linker_async` defines;
/// guests importing any older 0.2.x version are served by it too.
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Why a symlink target is refused, or `None` when it stays below the link's folder.
pub fn refusal(target: &str) -> Option<&'static str> {
    for component in Path::new(target).components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Some("it contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Some("it is an absolute path"),
        }
    }
    None
}

/// Replaces `symlink-at` in `linker` (after WASI was added) with the checked version.
pub fn guard(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let defined = linker.instance(FILESYSTEM_TYPES).and_then(|mut types| {
        types.func_wrap_async(
            "[method]descriptor.symlink-at",
            |mut store: StoreContextMut<'_, CallState>,
             (dir, target, link): (Resource<Descriptor>, String, String)| {
                Box::new(async move {
                    if let Some(why) = refusal(&target) {
                        tracing::warn!(
                            plugin = %store.data().plugin,
                            %link,
                            %target,
                            "denied symlink: {why}; a plugin may only create links that point below the link's own folder"
                        );
                        return Ok((Err(ErrorCode::NotPermitted),));
                    }
                    let mut fs = store.data_mut().filesystem();
                    match fs.symlink_at(dir, target, link).await {
                        Ok(()) => Ok((Ok(()),)),
                        Err(err) => Ok((Err(fs.convert_error_code(err)?),)),
                    }
                })
            },
        )
    });
    linker.allow_shadowing(false);
    defined
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn only_targets_below_the_link_are_allowed() {
        for ok in ["file.txt", "sub/file.txt", "./sub//file.txt", "."] {
            assert_eq!(refusal(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("/etc/passwd", "it is an absolute path"),
            ("../secret", "it contains `..`"),
            ("sub/../../x", "it contains `..`"),
            ("sub/..", "it contains `..`"),
            ("..", "it contains `..`"),
        ] {
            assert_eq!(refusal(bad), Some(why), "{bad}");
        }
    }
}
