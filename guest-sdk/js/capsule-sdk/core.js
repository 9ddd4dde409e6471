// capsule-sdk core: tool definitions, JSON Schema completion, argument checks, dispatch and
// result conversion for the `capsule:plugin/tools` export. It has no WIT import of its own, so
// it runs unchanged under plain Node (`node --test`); `index.js` plugs the real host in.

const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const LEVELS = ["trace", "debug", "info", "warn", "error"];
const FLAGS = ["readOnly", "destructive", "idempotent", "openWorld"];
const OPTIONS = new Set(["name", "title", "description", "input", "required", "output", ...FLAGS]);

// ---------------------------------------------------------------------------------------------
// Errors

/** A tool failure the model should see: becomes the WIT error `failed(message)`. */
export class ToolError extends Error {
  constructor(message) {
    super(message);
    this.name = "ToolError";
  }
}

/** Arguments the tool cannot use: becomes the WIT error `invalid-arguments(message)`. */
export class InvalidArguments extends ToolError {
  constructor(message) {
    super(message);
    this.name = "InvalidArguments";
  }
}

/**
 * What `callTool` throws: the `call-error` variant in `payload` (`{ tag, val }`), the shape
 * componentize-js turns into the `err` case of `result<call-result, call-error>`.
 */
export class CallError extends Error {
  constructor(tag, message) {
    super(`${tag}: ${message}`);
    this.name = "CallError";
    this.payload = { tag, val: message };
  }
}

// ---------------------------------------------------------------------------------------------
// Host imports (`capsule:plugin/host`), injected by index.js or by the test stand-in.

let host = null;

/**
 * Plugs in the implementation of the host imports (`log`, `progress`, `cancelled`, `config`,
 * `caller`).
 */
export function setHost(implementation) {
  host = implementation;
}

function theHost() {
  if (!host) {
    throw new Error(
      "capsule-sdk: no host imports; import the SDK through capsule-sdk/index.js " +
        "(or, in node tests, run node with --import ./capsule-sdk/register.js)",
    );
  }
  return host;
}

function writeLog(level, message) {
  theHost().log(level, String(message));
}

/**
 * Writes a line to the host's log (stderr, tagged with the plugin's name): `log(msg)` is info;
 * `log.trace`, `log.debug`, `log.info`, `log.warn`, `log.error` choose the level.
 */
export const log = (message) => writeLog("info", message);
for (const level of LEVELS) log[level] = (message) => writeLog(level, message);

/** Reports progress of the current call to the client (if it asked for progress). */
export function progress(done, total, message) {
  theHost().progress(Number(done), total == null ? undefined : Number(total), message ?? undefined);
}

/** True once the client has cancelled the current call; long loops should check it. */
export function cancelled() {
  return theHost().cancelled();
}

/** A per-plugin setting or granted secret by key, or `undefined` when it is not set. */
export function config(key) {
  return theHost().config(String(key)) ?? undefined;
}

/**
 * The authenticated caller of the current call, `{ name, scopes }` (never its token), or
 * `undefined` over stdio, on HTTP without `[auth]`, and unless the operator granted the plugin
 * `caller-identity = true`.
 */
export function caller() {
  const principal = theHost().caller();
  return principal == null ? undefined : { name: principal.name, scopes: [...principal.scopes] };
}

// ---------------------------------------------------------------------------------------------
// Content and results

/** One block of a tool result; build it with `text`, `image`, `audio`, `resourceLink`, `resource`. */
export class Content {
  constructor(tag, val) {
    this.tag = tag;
    this.val = val;
  }
}

/** A text block. */
export const text = (value) => new Content("text", String(value));

function bytes(data, what) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data)) return Uint8Array.from(data);
  throw new TypeError(`${what} data must be a Uint8Array, ArrayBuffer or array of bytes`);
}

/** An image block: `image(bytes, "image/png")`. */
export const image = (data, mimeType) =>
  new Content("image", { data: bytes(data, "image"), mimeType: String(mimeType) });

/** An audio block: `audio(bytes, "audio/wav")`. */
export const audio = (data, mimeType) =>
  new Content("audio", { data: bytes(data, "audio"), mimeType: String(mimeType) });

/** A link to a resource the client may fetch: `resourceLink({ uri, name, description?, mimeType? })`. */
export const resourceLink = ({ uri, name, description, mimeType }) =>
  new Content("resource-link", {
    uri: String(uri),
    name: String(name),
    description: description ?? undefined,
    mimeType: mimeType ?? undefined,
  });

/** An embedded resource: `resource({ uri, mimeType?, text })` or `resource({ uri, mimeType?, data })`. */
export function resource({ uri, mimeType, text: body, data }) {
  const content =
    body !== undefined ? { tag: "text", val: String(body) } : { tag: "binary", val: bytes(data, "resource") };
  return new Content("resource", { uri: String(uri), mimeType: mimeType ?? undefined, body: content });
}

/** A full result: blocks, optional structured content (an object), and `isError`. */
export class ToolOutput {
  constructor({ content = [], structured, isError = false } = {}) {
    this.content = Array.isArray(content) ? content : [content];
    this.structured = structured;
    this.isError = Boolean(isError);
  }
}

/** Builds a `ToolOutput`: `output({ content: [text("…")], structured: {…}, isError: false })`. */
export const output = (fields) => new ToolOutput(fields);

// ---------------------------------------------------------------------------------------------
// JSON Schema completion

const isPlainObject = (value) =>
  value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype;

const clone = (value) => JSON.parse(JSON.stringify(value));

// A `{ type: "object", properties: {...} }` schema, or a map of property name -> schema.
function isObjectSchema(schema) {
  return schema.type === "object" && (schema.properties === undefined || isPlainObject(schema.properties));
}

// Closes every object schema that lists its properties (`additionalProperties: false` unless
// stated) and turns the SDK's `optional: true` marker into `required` lists.
function complete(schema, defaultRequired) {
  if (!isPlainObject(schema)) return;
  if (isPlainObject(schema.properties)) {
    const names = Object.keys(schema.properties);
    if (schema.required === undefined) {
      schema.required = names.filter((name) => defaultRequired(schema.properties[name]));
    }
    for (const name of names) {
      const property = schema.properties[name];
      if (isPlainObject(property)) delete property.optional;
      complete(property, defaultRequired);
    }
    if (schema.additionalProperties === undefined) schema.additionalProperties = false;
  }
  if (isPlainObject(schema.items)) complete(schema.items, defaultRequired);
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    if (Array.isArray(schema[key])) for (const sub of schema[key]) complete(sub, defaultRequired);
  }
}

/**
 * The object schema of `spec` (a properties map or a full object schema) with `required` and
 * `additionalProperties: false` filled in. `what` names it in errors.
 */
export function objectSchema(spec, required, defaultRequired, what) {
  if (!isPlainObject(spec)) throw new TypeError(`${what} must be an object of properties or an object schema`);
  const schema = isObjectSchema(spec) ? clone(spec) : { type: "object", properties: clone(spec) };
  if (schema.properties === undefined) schema.properties = {};
  for (const [name, property] of Object.entries(schema.properties)) {
    if (!isPlainObject(property)) throw new TypeError(`${what}: property \`${name}\` must be a JSON Schema object`);
  }
  if (required !== undefined) {
    if (!Array.isArray(required)) throw new TypeError(`${what}: \`required\` must be an array of property names`);
    for (const name of required) {
      if (!(name in schema.properties)) throw new TypeError(`${what}: required property \`${name}\` is not defined`);
    }
    schema.required = [...required];
  }
  complete(schema, defaultRequired);
  return schema;
}

// Input fields are required unless they have a `default` or say `optional: true`.
const inputRequired = (property) => isPlainObject(property) && property.default === undefined && !property.optional;
// Output fields are required unless they say `optional: true`.
const outputRequired = (property) => isPlainObject(property) && !property.optional;

// ---------------------------------------------------------------------------------------------
// Checking JSON values against the schemas (the subset a tool's own schemas use)

const typeOf = (value) => {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
};

const pointer = (path) => (path === "" ? "the arguments" : `\`${path}\``);

/** The first problem of `value` against `schema` (a message naming the field), or null. */
export function check(value, schema, path = "") {
  if (!isPlainObject(schema)) return null;
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const actual = typeOf(value);
    const ok = types.some((type) => type === actual || (type === "number" && actual === "integer"));
    if (!ok) return `${pointer(path)} must be ${types.join(" or ")}, not ${actual}`;
  }
  if (schema.enum !== undefined && !schema.enum.some((option) => option === value)) {
    return `${pointer(path)} must be one of ${schema.enum.map((o) => JSON.stringify(o)).join(", ")}`;
  }
  if (schema.const !== undefined && schema.const !== value) {
    return `${pointer(path)} must be ${JSON.stringify(schema.const)}`;
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) return `${pointer(path)} must be >= ${schema.minimum}`;
    if (schema.maximum !== undefined && value > schema.maximum) return `${pointer(path)} must be <= ${schema.maximum}`;
  }
  if (typeof value === "string" && schema.minLength !== undefined && value.length < schema.minLength) {
    return `${pointer(path)} must have at least ${schema.minLength} characters`;
  }
  if (Array.isArray(value) && isPlainObject(schema.items)) {
    for (let i = 0; i < value.length; i++) {
      const problem = check(value[i], schema.items, `${path}/${i}`);
      if (problem) return problem;
    }
  }
  if (isPlainObject(value)) {
    const properties = isPlainObject(schema.properties) ? schema.properties : {};
    for (const name of schema.required ?? []) {
      if (value[name] === undefined) return `missing required field \`${path}/${name}\``;
    }
    for (const [name, field] of Object.entries(value)) {
      if (name in properties) {
        const problem = check(field, properties[name], `${path}/${name}`);
        if (problem) return problem;
      } else if (schema.additionalProperties === false) {
        return `unknown field \`${path}/${name}\` (expected ${Object.keys(properties).map((n) => `\`${n}\``).join(", ") || "none"})`;
      }
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Tools

/** A tool made by `tool(spec, handler)`; `plugin()` exports it under its key or `spec.name`. */
export class Tool {
  constructor(spec, handler) {
    if (!isPlainObject(spec)) throw new TypeError("tool(spec, handler): spec must be an object");
    if (typeof handler !== "function") throw new TypeError("tool(spec, handler): handler must be a function");
    for (const key of Object.keys(spec)) {
      if (!OPTIONS.has(key)) {
        throw new TypeError(`tool(): unknown option \`${key}\` (known: ${[...OPTIONS].join(", ")})`);
      }
    }
    this.spec = spec;
    this.handler = handler;
  }
}

/**
 * Defines a tool. `spec`: `description` (required, written for a model), `title`, the MCP
 * annotation flags `readOnly`, `destructive`, `idempotent`, `openWorld`, `input` (properties
 * map or object schema), `required` (defaults to every input property without a `default` or
 * `optional: true`), `output` (schema of the structured result), and `name` (defaults to the
 * key under which it is passed to `plugin`). `handler(args)` returns (or resolves to) the result.
 */
export const tool = (spec, handler) => new Tool(spec, handler);

// The `tool` record (WIT) plus what dispatch needs.
function define(name, { spec, handler }) {
  const where = `tool \`${name}\``;
  if (!TOOL_NAME.test(name)) throw new TypeError(`${where}: names must match ^[a-zA-Z0-9_-]{1,64}$`);
  if (typeof spec.description !== "string" || spec.description.trim() === "") {
    throw new TypeError(`${where}: a \`description\` (what it does, written for a model) is required`);
  }
  const input = objectSchema(spec.input ?? {}, spec.required, inputRequired, `${where} input`);
  const outputSchema = spec.output === undefined ? undefined : objectSchema(spec.output, undefined, outputRequired, `${where} output`);
  const flags = FLAGS.filter((flag) => spec[flag] !== undefined);
  for (const flag of flags) {
    if (typeof spec[flag] !== "boolean") throw new TypeError(`${where}: \`${flag}\` must be true or false`);
  }
  const annotations = flags.length === 0 ? undefined : Object.fromEntries(FLAGS.map((flag) => [flag, spec[flag]]));
  return {
    record: {
      name,
      title: spec.title ?? undefined,
      description: spec.description.trim(),
      inputSchema: JSON.stringify(input),
      outputSchema: outputSchema === undefined ? undefined : JSON.stringify(outputSchema),
      annotations,
    },
    input,
    output: outputSchema,
    handler,
  };
}

const describe = (error) => {
  if (error instanceof Error) return error.message || error.name;
  return typeof error === "string" ? error : JSON.stringify(error) ?? String(error);
};

// The `call-error` for something a tool threw.
function callError(error) {
  if (error instanceof CallError) return error;
  if (error instanceof InvalidArguments) return new CallError("invalid-arguments", error.message);
  if (error instanceof ToolError) return new CallError("failed", error.message);
  return new CallError("failed", describe(error));
}

function contentBlock(block) {
  if (!(block instanceof Content)) {
    throw new ToolError(`tool returned a content list holding ${typeOf(block)}; use text(), image(), … for each block`);
  }
  return { tag: block.tag, val: block.val };
}

// The WIT `call-result` for what a handler returned.
function callResult(tool, value) {
  let content;
  let structured;
  let isError = false;
  if (value instanceof ToolOutput) {
    content = value.content.map(contentBlock);
    structured = value.structured;
    isError = value.isError;
    if (structured !== undefined && !isPlainObject(structured)) {
      throw new ToolError(`structured content must be an object, not ${typeOf(structured)}`);
    }
  } else if (value instanceof Content) {
    content = [contentBlock(value)];
  } else if (Array.isArray(value) && value.length > 0 && value.every((block) => block instanceof Content)) {
    content = value.map(contentBlock);
  } else if (isPlainObject(value)) {
    structured = value;
    content = [];
  } else if (value === undefined || value === null) {
    content = [];
  } else if (typeof value === "string") {
    content = [{ tag: "text", val: value }];
  } else {
    content = [{ tag: "text", val: JSON.stringify(value) }];
  }
  if (tool.output !== undefined && !isError) {
    if (structured === undefined) {
      throw new ToolError(`tool \`${tool.record.name}\` declares an output schema but returned ${typeOf(value)}, not an object`);
    }
    const problem = check(structured, tool.output);
    if (problem) throw new ToolError(`tool \`${tool.record.name}\` returned output that does not match its output schema: ${problem}`);
  }
  if (structured === undefined) return { content, structured: undefined, isError };
  const json = JSON.stringify(structured);
  if (content.length === 0) content = [{ tag: "text", val: json }];
  return { content, structured: json, isError };
}

// Parses and checks the arguments JSON; fills in defaults.
function argumentsOf(tool, json) {
  let args;
  try {
    args = json === "" ? {} : JSON.parse(json);
  } catch (error) {
    throw new InvalidArguments(`the arguments are not valid JSON: ${describe(error)}`);
  }
  if (!isPlainObject(args)) throw new InvalidArguments(`the arguments must be a JSON object, not ${typeOf(args)}`);
  const problem = check(args, tool.input);
  if (problem) throw new InvalidArguments(problem);
  for (const [name, property] of Object.entries(tool.input.properties)) {
    if (args[name] === undefined && property.default !== undefined) args[name] = clone(property.default);
  }
  return args;
}

/**
 * The `tools` export of the component: `export const tools = plugin({ add_days, diff })`.
 * Keys are the tool names (unless a tool's spec sets `name`). Checks every definition now, so
 * a mistake fails the build, and returns `{ listTools, callTool }` as componentize-js expects.
 */
export function plugin(toolsByKey) {
  if (!toolsByKey || typeof toolsByKey !== "object") {
    throw new TypeError("plugin({ name: tool(...), ... }) takes an object of tools");
  }
  const table = new Map();
  for (const [key, value] of Object.entries(toolsByKey)) {
    if (!(value instanceof Tool)) continue; // other exports of a module namespace
    const name = value.spec.name ?? key;
    if (table.has(name)) throw new TypeError(`two tools are named \`${name}\``);
    table.set(name, define(name, value));
  }
  if (table.size === 0) throw new TypeError("plugin(): no tools given; pass { name: tool(...) }");
  const records = [...table.values()].map((tool) => tool.record);

  return {
    listTools() {
      return records.map((record) => ({ ...record }));
    },
    callTool(name, json) {
      const tool = table.get(name);
      if (!tool) throw new CallError("unknown-tool", name);
      const fail = (error) => {
        throw callError(error);
      };
      let value;
      try {
        value = tool.handler(argumentsOf(tool, json));
      } catch (error) {
        fail(error);
      }
      const finish = (resolved) => {
        try {
          return callResult(tool, resolved);
        } catch (error) {
          return fail(error);
        }
      };
      return value instanceof Promise ? value.then(finish, fail) : finish(value);
    },
  };
}
