//! The merged tool set of every loaded plugin: exposed names, descriptors and which
//! plugin serves which tool. Swapped atomically as a whole, so a reload never shows a
//! client half of the old set and half of the new one.

pub mod naming;
pub mod tool;

use std::collections::HashMap;
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
}

impl ToolSet {
    /// Builds the set from `plugins`. Names are given in plugin-name order, then in each
    /// plugin's tool order, so the outcome of a collision is the same on every start.
    pub fn build(mut plugins: Vec<Arc<Plugin>>) -> (Self, Vec<ToolProblem>) {
        plugins.sort_by(|a, b| a.name.cmp(&b.name));
        let mut names = naming::NameAllocator::default();
        let mut set = ToolSet::default();
        let mut problems = Vec::new();
        for plugin in &plugins {
            for tool in &plugin.tools {
                let wanted = naming::exposed_name(&plugin.name, &tool.name);
                let exposed = names.claim(&wanted);
                match RegisteredTool::new(plugin.clone(), tool, exposed.clone()) {
                    Ok(registered) => {
                        if exposed != wanted {
                            problems.push(ToolProblem {
                                plugin: plugin.name.to_string(),
                                message: format!(
                                    "tool `{}` would be exposed as `{wanted}`, which is taken; serving it as `{exposed}`",
                                    tool.name
                                ),
                                skipped: false,
                            });
                        }
                        set.index.insert(exposed, set.tools.len());
                        set.tools.push(Arc::new(registered));
                    }
                    Err(message) => problems.push(ToolProblem {
                        plugin: plugin.name.to_string(),
                        message: format!("tool `{}` skipped: {message}", tool.name),
                        skipped: true,
                    }),
                }
            }
        }
        set.plugins = plugins;
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
