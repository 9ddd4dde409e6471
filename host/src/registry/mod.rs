//! The merged tool set of every loaded plugin: exposed names, descriptors and which
//! plugin serves which tool. Swapped atomically as a whole, so a reload never shows a
//! client half of the old set and half of the new one.

pub mod naming;
pub mod schemas;
pub mod tool;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use tool::RegisteredTool;

use crate::runtime::Plugin;

/// Something wrong with one tool or name, found while building a tool set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolProblem {
    /// The plugin.
    pub plugin: String,
    /// What is wrong.
    pub message: String,
    /// Whether the tool was left out (an error) or served anyway (a warning).
    pub skipped: bool,
}

/// An immutable set of tools.
#[derive(Default)]
pub struct ToolSet {
    plugins: Vec<Arc<Plugin>>,
    tools: Vec<Arc<RegisteredTool>>,
    index: HashMap<String, usize>,
    rate_limited: bool,
}

impl ToolSet {
    /// Builds the set from `plugins`. Names are given in plugin-name order, then in each
    /// plugin's tool order, so the outcome of a collision is the same on every start.
    pub fn build(plugins: Vec<Arc<Plugin>>) -> (Self, Vec<ToolProblem>) {
        Self::build_keeping(plugins, &HashMap::new(), None)
    }

    /// [`ToolSet::build`] of `plugins` while they load one after another into `previous`:
    /// the same names, but a tool that `previous` already serves under the same name, for
    /// the same loaded plugin, keeps its compiled schemas instead of compiling them again
    /// (so loading n plugins compiles each tool once, not n times). The problems of such
    /// reused tools are not reported again.
    pub fn build_growing(
        previous: &ToolSet,
        plugins: Vec<Arc<Plugin>>,
    ) -> (Self, Vec<ToolProblem>) {
        Self::build_keeping(plugins, &HashMap::new(), Some(previous))
    }

    /// Builds the set that follows `previous` (a reload): a tool of a plugin that is
    /// still served keeps the name clients already know, so a newly appearing plugin
    /// whose names collide gets the suffixed name instead of taking one over.
    pub fn build_after(previous: &ToolSet, plugins: Vec<Arc<Plugin>>) -> (Self, Vec<ToolProblem>) {
        let kept: HashMap<(String, String), String> = previous
            .tools
            .iter()
            .filter(|t| {
                plugins.iter().any(|p| {
                    p.name == t.plugin.name && p.tools.iter().any(|own| own.name == t.tool_name)
                })
            })
            .map(|t| {
                (
                    (t.plugin.name.to_string(), t.tool_name.clone()),
                    t.exposed_name.clone(),
                )
            })
            .collect();
        Self::build_keeping(plugins, &kept, None)
    }

    /// [`ToolSet::build`], with the exposed names in `kept` (by plugin and tool name)
    /// reserved for their tools before any other name is given, reusing the tools of
    /// `reuse` as [`ToolSet::build_growing`] says.
    fn build_keeping(
        mut plugins: Vec<Arc<Plugin>>,
        kept: &HashMap<(String, String), String>,
        reuse: Option<&ToolSet>,
    ) -> (Self, Vec<ToolProblem>) {
        plugins.sort_by(|a, b| a.name.cmp(&b.name));
        let mut names = naming::NameAllocator::default();
        for name in kept.values() {
            names.claim(name);
        }
        let mut set = ToolSet::default();
        let mut problems = Vec::new();
        for plugin in &plugins {
            let problem = |message: String, skipped: bool| ToolProblem {
                plugin: plugin.name.to_string(),
                message,
                skipped,
            };
            if plugin.tools.len() > tool::MAX_TOOLS {
                problems.push(problem(
                    format!(
                        "list-tools returned {} tools; only the first {} are served (at most {} tools per plugin); split the plugin",
                        plugin.tools.len(),
                        tool::MAX_TOOLS,
                        tool::MAX_TOOLS
                    ),
                    true,
                ));
            }
            let mut own = HashSet::new();
            for tool in plugin.tools.iter().take(tool::MAX_TOOLS) {
                let shown = naming::shown(&tool.name);
                if let Err(err) = naming::check(&tool.name) {
                    problems.push(problem(format!("tool {shown} skipped: {err}"), true));
                    continue;
                }
                if !own.insert(tool.name.as_str()) {
                    problems.push(problem(
                        format!(
                            "tool {shown} skipped: an earlier tool of this plugin has the same name; tool names must be unique within a plugin"
                        ),
                        true,
                    ));
                    continue;
                }
                let wanted = naming::exposed_name(&plugin.name, &tool.name);
                let exposed = match kept.get(&(plugin.name.to_string(), tool.name.clone())) {
                    Some(known) => known.clone(),
                    None => names.claim(&wanted),
                };
                let mut warnings = Vec::new();
                let served = reuse
                    .and_then(|previous| previous.get(&exposed))
                    .filter(|t| Arc::ptr_eq(&t.plugin, plugin) && t.tool_name == tool.name);
                let registered = match served {
                    Some(served) => Ok(served.clone()),
                    None => {
                        RegisteredTool::new(plugin.clone(), tool, exposed.clone(), &mut warnings)
                            .map(Arc::new)
                    }
                };
                match registered {
                    Ok(registered) => {
                        if exposed != wanted {
                            warnings.push(format!(
                                "it would be exposed as `{wanted}`, which is taken; serving it as `{exposed}`"
                            ));
                        }
                        set.index.insert(exposed, set.tools.len());
                        set.tools.push(registered);
                    }
                    Err(message) => {
                        problems.push(problem(format!("tool {shown} skipped: {message}"), true));
                    }
                }
                problems.extend(
                    warnings
                        .into_iter()
                        .map(|w| problem(format!("tool {shown}: {w}"), false)),
                );
            }
            for configured in plugin.policy.access.configured_tools() {
                if !own.contains(configured) {
                    let mut names: Vec<&str> = own.iter().copied().collect();
                    names.sort_unstable();
                    problems.push(problem(
                        format!(
                            "the policy sets `tools.{configured}`, but the plugin has no tool `{configured}` (its tools: {}); the setting has no effect",
                            crate::units::list_or_none(&names)
                        ),
                        false,
                    ));
                }
            }
        }
        set.plugins = plugins;
        set.rate_limited = set.tools.iter().any(|t| t.access.rate_limit.is_some());
        (set, problems)
    }

    /// The tool clients know as `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<RegisteredTool>> {
        self.index.get(name).map(|&i| &self.tools[i])
    }

    /// Every tool, in listing order.
    pub fn tools(&self) -> &[Arc<RegisteredTool>] {
        &self.tools
    }

    /// Whether any tool has a rate limit.
    pub fn has_rate_limits(&self) -> bool {
        self.rate_limited
    }

    /// Every plugin, by name.
    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }
}

/// The current tool set, replaceable at any time without blocking readers.
pub struct Registry {
    current: ArcSwap<ToolSet>,
}

impl Registry {
    /// A registry serving `set`.
    pub fn new(set: ToolSet) -> Self {
        Self {
            current: ArcSwap::from_pointee(set),
        }
    }

    /// The tool set now. Callers keep using the snapshot they got, even across a swap.
    pub fn snapshot(&self) -> Arc<ToolSet> {
        self.current.load_full()
    }

    /// Replaces the tool set; returns the old one.
    pub fn swap(&self, set: ToolSet) -> Arc<ToolSet> {
        self.current.swap(Arc::new(set))
    }
}
