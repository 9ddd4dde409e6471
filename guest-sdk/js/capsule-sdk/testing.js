// A stand-in for the WIT import `capsule:plugin/host@0.1.0` when tools run under plain node
// (register.js maps the import here), plus helpers to call tools the way the host does.

const state = { config: new Map(), cancelled: false, caller: undefined, logs: [], progress: [] };

// --- the host interface (same names and shapes as the WIT bindings) --------------------------

export function log(level, message) {
  state.logs.push({ level, message });
}

export function progress(done, total, message) {
  state.progress.push({ done, total, message });
}

export function cancelled() {
  return state.cancelled;
}

export function config(key) {
  return state.config.get(key);
}

export function caller() {
  return state.caller;
}

// --- controls for tests -----------------------------------------------------------------------

/** Sets (or, with `undefined`, removes) a config value the tools see through `config(key)`. */
export function setConfig(key, value) {
  if (value === undefined) state.config.delete(key);
  else state.config.set(key, String(value));
}

/** Makes `cancelled()` return `value`. */
export function setCancelled(value) {
  state.cancelled = Boolean(value);
}

/** Makes `caller()` return `value` (`{ name, scopes }`, or `undefined` for no caller). */
export function setCaller(value) {
  state.caller = value;
}

/** The log lines written so far (`{ level, message }`), emptying the list. */
export function takeLogs() {
  return state.logs.splice(0);
}

/** The progress reports so far (`{ done, total, message }`), emptying the list. */
export function takeProgress() {
  return state.progress.splice(0);
}

/** Forgets config, cancellation, caller, logs and progress. */
export function reset() {
  state.config.clear();
  state.cancelled = false;
  state.caller = undefined;
  state.logs.length = 0;
  state.progress.length = 0;
}

/**
 * Calls tool `name` of `tools` (the object `plugin()` returned) with `args` (an object, or JSON
 * text) the way the host does. Resolves to `{ text, structured, isError, content }`: `text`
 * joins the text blocks, `structured` is parsed. Rejects with the `CallError` whose `payload`
 * is the WIT `call-error` (`{ tag: "invalid-arguments" | "failed" | "unknown-tool", val }`).
 */
export async function call(tools, name, args = {}) {
  const json = typeof args === "string" ? args : JSON.stringify(args);
  const result = await tools.callTool(name, json);
  return {
    text: result.content
      .filter((block) => block.tag === "text")
      .map((block) => block.val)
      .join("\n"),
    structured: result.structured === undefined ? undefined : JSON.parse(result.structured),
    isError: result.isError,
    content: result.content,
  };
}
