//! WIT-derived tools: a component that does not export `capsule:plugin/tools` but exports
//! plain functions (at the top level or in any non-WASI interface) is served with one tool
//! per function. Input and output schemas come from the WIT types ([`schema`]), arguments
//! and results are converted by type ([`value`]), and the function is called dynamically.

pub mod docs;
#[cfg(test)]
mod proptests;
pub mod schema;
pub mod value;

use serde_json::{Value, json};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, Instance, Type, Val};
use wasmtime::{Engine, Store};

use super::bindings::{CallError, CallResult, Content, Tool, ToolAnnotations};
use super::state::CallState;

/// One exported function, served as a tool.
pub struct Function {
    /// The tool name: the function's name in snake case, prefixed with its interface's
    /// name when two interfaces export the same name.
    pub tool: String,
    /// Where it is exported: `greet`, or `example:rich/shapes@0.1.0#area`.
    pub export: String,
    /// Its doc comment, from the sidecar WIT ([`docs`]), if there is one.
    pub doc: Option<String>,
    index: ComponentExportIndex,
    params: Vec<(String, Type)>,
    result: Option<Type>,
    /// JSON Schema of the arguments, derived once from the parameter types.
    input_schema: String,
    /// JSON Schema of the structured result, if the result is structured.
    output_schema: Option<String>,
}

/// An exported function that cannot be served, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// Where it is exported.
    pub export: String,
    /// Why not.
    pub reason: String,
}

/// Every function `component` exports outside `wasi:*` interfaces: the ones that can be
/// served, and the ones whose types JSON cannot carry.
pub fn discover(component: &Component, engine: &Engine) -> (Vec<Function>, Vec<Skipped>) {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let ty = component.component_type();
    for (name, export) in ty.exports(engine) {
        match export.ty {
            ComponentItem::ComponentFunc(func) => {
                let index = component.get_export_index(None, name);
                add(&mut found, &mut skipped, None, name, &func, index);
            }
            ComponentItem::ComponentInstance(instance) if !name.starts_with("wasi:") => {
                let Some(instance_index) = component.get_export_index(None, name) else {
                    continue;
                };
                for (func_name, item) in instance.exports(engine) {
                    if let ComponentItem::ComponentFunc(func) = item.ty {
                        let index = component.get_export_index(Some(&instance_index), func_name);
                        add(
                            &mut found,
                            &mut skipped,
                            Some(name),
                            func_name,
                            &func,
                            index,
                        );
                    }
                }
            }
            _ => {}
        }
    }
    disambiguate(&mut found);
    (found, skipped)
}

fn add(
    found: &mut Vec<Function>,
    skipped: &mut Vec<Skipped>,
    interface: Option<&str>,
    name: &str,
    func: &wasmtime::component::types::ComponentFunc,
    index: Option<ComponentExportIndex>,
) {
    let export = match interface {
        Some(interface) => format!("{interface}#{name}"),
        None => name.to_string(),
    };
    let skip = |reason: String| Skipped {
        export: export.clone(),
        reason,
    };
    let Some(index) = index else {
        return skipped.push(skip("its export cannot be looked up".into()));
    };
    if name.starts_with('[') {
        return skipped.push(skip("resource methods are not served as tools".into()));
    }
    if func.async_() {
        return skipped.push(skip("async functions are not served as tools yet".into()));
    }
    let params: Vec<(String, Type)> = func.params().map(|(n, t)| (n.to_string(), t)).collect();
    let result = func.results().next();
    let schemas =
        schema::object(params.iter().map(|(n, t)| (n.as_str(), t.clone()))).and_then(|input| {
            // The whole result type must be JSON-able, the error side included.
            result.as_ref().map(schema::of).transpose()?;
            Ok((input, output_schema(success_type(result.as_ref()))?))
        });
    let (input, output) = match schemas {
        Ok(schemas) => schemas,
        Err(err) => return skipped.push(skip(err.to_string())),
    };
    found.push(Function {
        tool: name.replace('-', "_"),
        export,
        doc: None,
        index,
        params,
        result,
        input_schema: input.to_string(),
        output_schema: output.map(|s| s.to_string()),
    });
}

/// The type whose values become the result: the `ok` side of a `result`, else the result.
fn success_type(result: Option<&Type>) -> Option<Type> {
    match result {
        Some(Type::Result(result)) => result.ok(),
        other => other.cloned(),
    }
}

/// Records are structured content as they are; other values, but text, are wrapped in
/// `{"result": …}` because structured content is always an object.
fn output_schema(success: Option<Type>) -> Result<Option<Value>, schema::Unsupported> {
    Ok(match success {
        None | Some(Type::String) => None,
        Some(ty @ Type::Record(_)) => Some(schema::of(&ty)?),
        Some(ty) => Some(schema::object(std::iter::once(("result", ty)))?),
    })
}

/// Prefixes a tool name with its interface's name (`shapes_area`) when it is not unique.
fn disambiguate(found: &mut [Function]) {
    let names: Vec<String> = found.iter().map(|f| f.tool.clone()).collect();
    for function in found.iter_mut() {
        if names.iter().filter(|n| **n == function.tool).count() < 2 {
            continue;
        }
        if let Some((interface, _)) = function.export.split_once('#') {
            let short = interface.rsplit('/').next().unwrap_or(interface);
            let short = short.split('@').next().unwrap_or(short);
            function.tool = format!("{}_{}", short.replace('-', "_"), function.tool);
        }
    }
}

impl Function {
    /// The tool the function is served as.
    pub fn tool(&self) -> Tool {
        let names: Vec<&str> = self.params.iter().map(|(n, _)| n.as_str()).collect();
        Tool {
            name: self.tool.clone(),
            title: None,
            description: self.doc.clone().unwrap_or_else(|| {
                format!(
                    "Calls the WebAssembly function `{}({})`. Arguments and result follow its WIT types.",
                    self.export,
                    names.join(", ")
                )
            }),
            input_schema: self.input_schema.clone(),
            output_schema: self.output_schema.clone(),
            annotations: None::<ToolAnnotations>,
        }
    }

    /// Calls the function in `instance` with `arguments` (a JSON object as text).
    pub async fn call(
        &self,
        store: &mut Store<CallState>,
        instance: &Instance,
        arguments: &str,
    ) -> wasmtime::Result<Result<CallResult, CallError>> {
        let params = match self.arguments(arguments) {
            Ok(params) => params,
            Err(message) => return Ok(Err(CallError::InvalidArguments(message))),
        };
        let func = instance
            .get_func(&mut *store, self.index)
            .ok_or_else(|| wasmtime::format_err!("export {} disappeared", self.export))?;
        let mut results = vec![Val::Bool(false); usize::from(self.result.is_some())];
        func.call_async(&mut *store, &params, &mut results).await?;
        Ok(self.outcome(results.pop()))
    }

    fn arguments(&self, arguments: &str) -> Result<Vec<Val>, String> {
        let json: Value = serde_json::from_str(arguments).map_err(|e| e.to_string())?;
        let Value::Object(object) = json else {
            return Err("arguments must be a JSON object".into());
        };
        let params = self.params.iter().map(|(n, t)| (n.as_str(), t.clone()));
        let fields = value::fields_from_json(&object, params, "")?;
        Ok(fields.into_iter().map(|(_, v)| v).collect())
    }

    /// What a returned value means to a model: `result::err` is an error result, strings
    /// are text, everything else is structured content with its JSON as text.
    fn outcome(&self, returned: Option<Val>) -> Result<CallResult, CallError> {
        let returned = match returned {
            Some(Val::Result(Err(err))) => {
                let message = match err.as_deref() {
                    None => "the function returned an error".to_string(),
                    Some(Val::String(s) | Val::Enum(s)) => s.clone(),
                    Some(other) => value::to_json(other, "error")
                        .map_err(CallError::Failed)?
                        .to_string(),
                };
                return Ok(text(message, true));
            }
            Some(Val::Result(Ok(ok))) => ok.map(|v| *v),
            other => other,
        };
        match returned {
            None => Ok(text("ok".into(), false)),
            Some(Val::String(s)) => Ok(text(s, false)),
            Some(val) => {
                let json = value::to_json(&val, "result").map_err(CallError::Failed)?;
                let structured = match (&success_type(self.result.as_ref()), json) {
                    (Some(Type::Record(_)), json) => json,
                    (_, json) => json!({"result": json}),
                };
                let text = structured.to_string();
                Ok(CallResult {
                    content: vec![Content::Text(text.clone())],
                    structured: Some(text),
                    is_error: false,
                })
            }
        }
    }
}

fn text(message: String, is_error: bool) -> CallResult {
    CallResult {
        content: vec![Content::Text(message)],
        structured: None,
        is_error,
    }
}
