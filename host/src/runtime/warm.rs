//! Instances kept between calls, for plugins whose policy says `isolation = "reuse"`.
//!
//! By default every call gets a fresh instance, and a big guest pays for that on every
//! call: CPython or StarlingMonkey run their start code again (componentize-py fills its
//! function table with ~2,000 `ref.func`s) before the tool runs. A plugin that keeps
//! nothing from one call that the next may not see can say so; its instances then serve
//! up to `reuse-calls` calls each, one call at a time, and what a call leaves in the
//! instance's memory *is* seen by the next call that gets that instance. So:
//!
//! - an instance only ever serves one caller: the authenticated principal over HTTP
//!   (another principal's calls get another instance), everyone at once without
//!   `[auth]` (stdio has one client);
//! - every limit still applies to each call (fuel and the deadline are set again, the
//!   output budgets start again); memory is counted over the instance's life, since it
//!   never shrinks, so a plugin that leaks runs into `limits.memory` and its instance ends;
//! - an instance that faulted (trap, limit, cancellation, deadline) is never used again;
//! - an instance nobody calls for `reuse-idle` is ended (checked when one is taken, and
//!   by a sweep every [`SWEEP_EVERY`]);
//! - at most `runtime.max-warm-instances` instances are kept over all plugins, each
//!   holding one call's share of the instance pool (the pool has one share more for
//!   each); when all are kept, the one unused the longest makes room.

use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::Store;
use wasmtime::component::Instance;

use super::bindings;
use super::state::CallState;
use crate::capability::isolation::Reuse;

/// How often instances unused for longer than their `reuse-idle` are ended.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A live instance of a plugin.
pub(crate) enum Instantiated {
    /// Of a plugin exporting `capsule:plugin/tools`.
    Tools(bindings::Plugin),
    /// Of a plugin served with WIT-derived tools.
    Functions(Instance),
}

/// What goes with a kept instance besides its store: whom it serves, how many calls it
/// served, and its place among the kept instances.
pub(crate) struct Lease {
    caller: Option<Arc<str>>,
    served: u32,
    permit: Option<OwnedSemaphorePermit>,
}

impl Lease {
    /// The lease of an instance just created for `caller`.
    pub(crate) fn new(caller: Option<Arc<str>>) -> Self {
        Self {
            caller,
            served: 0,
            permit: None,
        }
    }
}

/// An instance kept for the next call of its plugin, in the store it lives in.
pub(crate) struct WarmInstance {
    /// The store, with the instance's memory and the plugin's WASI context.
    pub(crate) store: Store<CallState>,
    /// The instance.
    pub(crate) instance: Instantiated,
    /// Whom it serves and for how long.
    pub(crate) lease: Lease,
    since: Instant,
}

/// One plugin's kept instances, the longest unused first.
pub(crate) struct WarmPool {
    reuse: Reuse,
    idle: Mutex<Vec<WarmInstance>>,
    shared: Arc<WarmInstances>,
}

impl WarmPool {
    /// The instance of `caller` used last, unless none is kept or it was unused for too
    /// long (then it is ended, with every other instance of this plugin unused as long).
    pub(crate) fn take(&self, caller: Option<&str>) -> Option<WarmInstance> {
        let (taken, expired) = {
            let mut idle = self.lock();
            let expired = self.drain_expired(&mut idle, Instant::now());
            let position = idle
                .iter()
                .rposition(|warm| warm.lease.caller.as_deref() == caller);
            (position.map(|i| idle.remove(i)), expired)
        };
        drop(expired);
        taken
    }

    /// Keeps `store` and `instance` for the next call, after the call it just served,
    /// unless it has served `reuse-calls` calls or no place is left among the kept
    /// instances even after ending the one unused the longest.
    pub(crate) fn give_back(
        &self,
        store: Store<CallState>,
        instance: Instantiated,
        mut lease: Lease,
    ) {
        lease.served += 1;
        if lease.served >= self.reuse.calls {
            return;
        }
        if lease.permit.is_none() {
            lease.permit = self.shared.permit();
        }
        if lease.permit.is_none() {
            return;
        }
        let warm = WarmInstance {
            store,
            instance,
            lease,
            since: Instant::now(),
        };
        let expired = {
            let mut idle = self.lock();
            idle.push(warm);
            self.drain_expired(&mut idle, Instant::now())
        };
        drop(expired);
    }

    /// Ends every instance kept now (the plugin's code was replaced by its optimized code).
    pub(crate) fn clear(&self) {
        let ended = std::mem::take(&mut *self.lock());
        drop(ended);
    }

    /// How many instances are kept now.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WarmInstance>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes the instances unused for longer than `reuse-idle`, to be dropped by the
    /// caller once the lock is released (dropping a store resets its memory).
    fn drain_expired(&self, idle: &mut Vec<WarmInstance>, now: Instant) -> Vec<WarmInstance> {
        let fresh = idle
            .iter()
            .position(|warm| now.duration_since(warm.since) < self.reuse.idle)
            .unwrap_or(idle.len());
        idle.drain(..fresh).collect()
    }

    /// When its longest unused instance was last used.
    fn oldest(&self) -> Option<Instant> {
        self.lock().first().map(|warm| warm.since)
    }

    /// Ends its longest unused instance, if it has one.
    fn end_oldest(&self) {
        let ended = {
            let mut idle = self.lock();
            (!idle.is_empty()).then(|| idle.remove(0))
        };
        drop(ended);
    }
}

/// What every plugin's [`WarmPool`] shares: the bound on kept instances and the pools
/// themselves, for making room and for the sweep.
pub struct WarmInstances {
    max: usize,
    permits: Arc<Semaphore>,
    pools: Mutex<Vec<Weak<WarmPool>>>,
    sweeper: OnceLock<()>,
}

impl WarmInstances {
    /// At most `max` kept instances over all plugins.
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(Self {
            max: max as usize,
            permits: Arc::new(Semaphore::new(max as usize)),
            pools: Mutex::new(Vec::new()),
            sweeper: OnceLock::new(),
        })
    }

    /// Instances kept now, idle or serving a call.
    pub fn kept(&self) -> usize {
        self.max.saturating_sub(self.permits.available_permits())
    }

    /// A pool for one plugin with `reuse`'s bounds; starts the sweep with the first.
    pub(crate) fn pool(self: &Arc<Self>, reuse: Reuse) -> Arc<WarmPool> {
        let pool = Arc::new(WarmPool {
            reuse,
            idle: Mutex::new(Vec::new()),
            shared: self.clone(),
        });
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        pools.retain(|pool| pool.strong_count() > 0);
        pools.push(Arc::downgrade(&pool));
        drop(pools);
        self.sweeper
            .get_or_init(|| start_sweeper(Arc::downgrade(self)));
        pool
    }

    /// A place among the kept instances: a free one, or the one of the instance unused
    /// the longest, which is ended; `None` when every kept instance is in use.
    fn permit(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Some(permit);
        }
        let oldest = self
            .live_pools()
            .into_iter()
            .filter_map(|pool| pool.oldest().map(|since| (since, pool)))
            .min_by_key(|(since, _)| *since);
        if let Some((_, pool)) = oldest {
            pool.end_oldest();
        }
        self.permits.clone().try_acquire_owned().ok()
    }

    fn live_pools(&self) -> Vec<Arc<WarmPool>> {
        let pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        pools.iter().filter_map(Weak::upgrade).collect()
    }

    /// Ends every instance unused for longer than its plugin's `reuse-idle`.
    fn sweep(&self) {
        let now = Instant::now();
        for pool in self.live_pools() {
            let expired = {
                let mut idle = pool.lock();
                pool.drain_expired(&mut idle, now)
            };
            drop(expired);
        }
    }
}

/// Sweeps every [`SWEEP_EVERY`] on a thread of its own until the runtime is gone. Without
/// the thread (it could not start) an expired instance is still never used: it is ended
/// when its plugin is called next.
fn start_sweeper(shared: Weak<WarmInstances>) {
    let spawned = std::thread::Builder::new()
        .name("capsule-warm-sweep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(SWEEP_EVERY);
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                shared.sweep();
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(
            "cannot start the thread that ends unused reused instances ({err}); they end when their plugin is next called"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Principal;
    use crate::runtime::bindings::Content;
    use crate::runtime::{CallContext, Plugin, Runtime};

    /// The echo fixture served with `policy` (TOML of `[plugins.echo]`) and `runtime`
    /// (TOML of `[runtime]`).
    async fn echo(runtime: &str, policy: &str) -> (Runtime, Arc<Plugin>) {
        let config = format!("[runtime]\n{runtime}\n[plugins.echo]\n{policy}\n");
        let (runtime, plugin, _) = crate::testing::load_fixture("echo", &config).await;
        (runtime, plugin)
    }

    /// What `echo_counter` answers when called by `caller`.
    async fn counter(runtime: &Runtime, plugin: &Arc<Plugin>, caller: Option<&str>) -> String {
        let context = CallContext {
            caller: caller.map(|name| Principal::new(name, Vec::new())),
            ..CallContext::default()
        };
        let result = runtime
            .call(plugin, "counter", "{}", context)
            .await
            .expect("counter answers");
        match result.content.as_slice() {
            [Content::Text(text)] => text.clone(),
            other => panic!("unexpected content {other:?}"),
        }
    }

    const FRESH: &str = "1 heap-fresh pages-fresh";

    #[tokio::test]
    async fn an_instance_serves_one_caller_only() {
        let (runtime, plugin) = echo("", "isolation = \"reuse\"").await;
        assert_eq!(counter(&runtime, &plugin, Some("ann")).await, FRESH);
        assert_eq!(
            counter(&runtime, &plugin, Some("ann")).await,
            "2 heap-leaked pages-leaked 48"
        );
        assert_eq!(counter(&runtime, &plugin, Some("bob")).await, FRESH);
        assert_eq!(counter(&runtime, &plugin, None).await, FRESH);
        assert_eq!(
            counter(&runtime, &plugin, Some("ann")).await,
            "3 heap-leaked pages-leaked 48"
        );
        let kept = plugin.warm.as_ref().expect("a warm pool").kept();
        assert_eq!(kept, 3, "one instance each for ann, bob and no one");
    }

    #[tokio::test]
    async fn when_every_place_is_taken_the_longest_unused_instance_makes_room() {
        let (runtime, plugin) = echo("max-warm-instances = 1", "isolation = \"reuse\"").await;
        assert_eq!(counter(&runtime, &plugin, Some("ann")).await, FRESH);
        assert_eq!(counter(&runtime, &plugin, Some("bob")).await, FRESH);
        // Bob's instance took ann's place.
        assert_eq!(counter(&runtime, &plugin, Some("ann")).await, FRESH);
        assert_eq!(plugin.warm.as_ref().expect("a warm pool").kept(), 1);
    }

    #[tokio::test]
    async fn no_place_for_warm_instances_means_a_fresh_instance_per_call() {
        let (runtime, plugin) = echo("max-warm-instances = 0", "isolation = \"reuse\"").await;
        assert!(plugin.warm.is_none());
        for _ in 0..3 {
            assert_eq!(counter(&runtime, &plugin, None).await, FRESH);
        }
    }

    #[tokio::test]
    async fn an_instance_unused_for_reuse_idle_is_ended() {
        let (runtime, plugin) = echo("", "isolation = \"reuse\"\nreuse-idle = \"50ms\"").await;
        assert_eq!(counter(&runtime, &plugin, None).await, FRESH);
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(counter(&runtime, &plugin, None).await, FRESH);
        // Ended by the sweep, without another call.
        let pool = plugin.warm.as_ref().expect("a warm pool");
        assert_eq!(pool.kept(), 1);
        tokio::time::sleep(SWEEP_EVERY * 2 + Duration::from_millis(100)).await;
        assert_eq!(pool.kept(), 0);
    }
}
