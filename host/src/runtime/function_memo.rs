//! Compiled functions shared by every compilation of the process: Cranelift's incremental
//! cache, in memory and bounded (issue #19: 50 plugins compiled in as little time as can
//! be).
//!
//! Plugins built with one toolchain share much of their code (the standard library,
//! `serde_json`, the SDK's glue), and a rebuilt plugin that hot reload picks up differs
//! from its previous build in a few functions. Cranelift keys each function by the sha256
//! of its IR and the target's settings, so a function compiled once in this process is
//! reused, not compiled again, by every later compilation that has it. Kept in memory only
//! (the artifacts on disk already spare a restart any compiling), and at most
//! [`MAX_BYTES`]: once full, new functions are compiled as usual and not kept.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use wasmtime::CacheStore;

/// How many bytes of compiled functions (keys and values) the memo holds at most.
pub const MAX_BYTES: usize = 32 << 20;

/// The memo; hand it to `Config::enable_incremental_compilation`.
#[derive(Debug, Default)]
pub struct FunctionMemo {
    held: Mutex<Held>,
    /// Lookups that found their function.
    reused: AtomicUsize,
}

#[derive(Debug, Default)]
struct Held {
    functions: HashMap<Vec<u8>, Vec<u8>>,
    bytes: usize,
}

impl FunctionMemo {
    /// The process's memo, which every engine of the host compiles through.
    pub fn shared() -> Arc<Self> {
        static SHARED: LazyLock<Arc<FunctionMemo>> = LazyLock::new(Arc::default);
        SHARED.clone()
    }

    /// How many functions it holds, and their bytes.
    pub fn size(&self) -> (usize, usize) {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        (held.functions.len(), held.bytes)
    }

    /// How many times a compilation took a function from the memo instead of compiling it.
    pub fn reused(&self) -> usize {
        self.reused.load(Ordering::Relaxed)
    }
}

impl CacheStore for FunctionMemo {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let code = held.functions.get(key)?;
        self.reused.fetch_add(1, Ordering::Relaxed);
        Some(Cow::Owned(code.clone()))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let size = key.len() + value.len();
        if held.bytes + size > MAX_BYTES || held.functions.contains_key(key) {
            return false;
        }
        held.bytes += size;
        held.functions.insert(key.to_vec(), value);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_keeps_functions_up_to_its_bound() {
        let memo = FunctionMemo::default();
        assert!(memo.insert(b"a", vec![1; 10]));
        assert_eq!(memo.get(b"a").as_deref(), Some(&[1u8; 10][..]));
        assert!(memo.get(b"b").is_none());
        assert!(!memo.insert(b"big", vec![0; MAX_BYTES]), "over the bound");
        assert_eq!(memo.size(), (1, 11));
        assert_eq!(memo.reused(), 1);
    }

    /// Winch compiles a component's core functions itself and its trampolines (here: the
    /// lowered import and the export's entry points) with Cranelift, through the memo
    /// (vendor/README.md): a second compilation of the same component compiles none of them.
    #[test]
    fn winch_compiles_its_trampolines_through_the_memo() {
        use wasmtime::component::Component;
        use wasmtime::{Config, Engine, Strategy};

        let component = crate::testing::dummy_component(
            "package test:memo;\nworld w {\n  import f: func(x: u32) -> string;\n  export g: func(s: string) -> u32;\n}\n",
            "w",
        );
        let memo = Arc::new(FunctionMemo::default());
        let compile = || {
            let mut config = Config::new();
            config.wasm_component_model(true);
            config.strategy(Strategy::Winch);
            config
                .enable_incremental_compilation(memo.clone())
                .expect("Winch takes the memo (the vendored wasmtime-internal-winch)");
            let engine = Engine::new(&config).expect("Winch engine");
            Component::new(&engine, &component).expect("Winch compiles the component");
        };
        compile();
        let (kept, _) = memo.size();
        assert!(kept > 0, "Winch compiled no trampoline through the memo");
        let before = memo.reused();
        compile();
        // Not necessarily all of them: with other compiles running (the parallel tests), a
        // few trampolines of the same component hash differently from one compile to the
        // next. A miss costs a compile, never correctness: the key is the whole IR's hash.
        let reused = memo.reused() - before;
        assert!(
            reused * 2 >= kept,
            "{reused} of {kept} trampolines taken from the memo by the second compilation"
        );
    }
}
