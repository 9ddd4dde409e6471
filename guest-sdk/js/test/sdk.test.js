// Unit tests of the SDK helper layer, run under plain node:
// `node --import ./capsule-sdk/register.js --test test/` (from guest-sdk/js).

import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";

import {
  InvalidArguments,
  ToolError,
  caller,
  cancelled,
  config,
  image,
  log,
  output,
  plugin,
  progress,
  text,
  tool,
} from "capsule-sdk";
import {
  call,
  reset,
  setCaller,
  setCancelled,
  setConfig,
  takeLogs,
  takeProgress,
} from "capsule-sdk/testing";

const add = tool(
  {
    title: "Add",
    description: "Add two integers.",
    readOnly: true,
    idempotent: true,
    input: {
      a: { type: "integer", description: "First." },
      b: { type: "integer", description: "Second.", default: 10 },
      note: { type: "string", optional: true },
    },
    output: { sum: { type: "integer", description: "a + b" } },
  },
  ({ a, b }) => ({ sum: a + b }),
);

const tools = plugin({
  add,
  greet: tool({ description: "Greet.", input: { name: { type: "string" } } }, ({ name }) => `Hello, ${name}!`),
  nothing: tool({ description: "Returns nothing." }, () => undefined),
  list: tool({ description: "A list." }, () => [1, 2]),
  blocks: tool({ description: "Blocks." }, () => [text("a"), image(new Uint8Array([1, 2]), "image/png")]),
  soft: tool({ description: "Soft error." }, () => output({ content: text("no luck"), isError: true })),
  failing: tool({ description: "Fails." }, () => {
    throw new ToolError("the date 2025-02-30 does not exist");
  }),
  rejecting: tool({ description: "Rejects.", input: { value: { type: "integer" } } }, ({ value }) => {
    throw new InvalidArguments(`value ${value} is odd`);
  }),
  crashing: tool({ description: "Crashes." }, () => null.field),
  thrower: tool({ description: "Throws a string." }, () => {
    throw "plain string";
  }),
  later: tool({ description: "Async.", input: { ms: { type: "number" } } }, async ({ ms }) => {
    await Promise.resolve();
    if (ms < 0) throw new ToolError("negative");
    return { waited: ms };
  }),
  liar: tool({ description: "Breaks its output schema.", output: { n: { type: "integer" } } }, () => ({ n: "x" })),
  renamed: tool({ name: "custom-name", description: "Renamed." }, () => "ok"),
  host: tool({ description: "Uses the host." }, () => {
    log("plain");
    log.warn("careful");
    progress(1, 2, "half");
    return `${config("key")} ${config("missing")} ${cancelled()}`;
  }),
});

const byName = (name) => tools.listTools().find((t) => t.name === name);

async function callError(name, args) {
  try {
    await call(tools, name, args);
  } catch (error) {
    return error.payload;
  }
  assert.fail(`${name} did not fail`);
}

beforeEach(reset);

describe("listTools", () => {
  it("lists every tool with names from keys or spec.name", () => {
    const names = tools.listTools().map((t) => t.name);
    assert.ok(names.includes("add") && names.includes("custom-name") && !names.includes("renamed"));
  });

  it("completes the input schema: required, defaults, additionalProperties", () => {
    const record = byName("add");
    assert.deepEqual(JSON.parse(record.inputSchema), {
      type: "object",
      properties: {
        a: { type: "integer", description: "First." },
        b: { type: "integer", description: "Second.", default: 10 },
        note: { type: "string" },
      },
      required: ["a"],
      additionalProperties: false,
    });
    assert.deepEqual(JSON.parse(record.outputSchema), {
      type: "object",
      properties: { sum: { type: "integer", description: "a + b" } },
      required: ["sum"],
      additionalProperties: false,
    });
    assert.equal(record.title, "Add");
    assert.equal(record.description, "Add two integers.");
    assert.deepEqual(record.annotations, {
      readOnly: true,
      destructive: undefined,
      idempotent: true,
      openWorld: undefined,
    });
  });

  it("gives a tool without input an empty closed object schema and no annotations", () => {
    const record = byName("nothing");
    assert.deepEqual(JSON.parse(record.inputSchema), {
      type: "object",
      properties: {},
      required: [],
      additionalProperties: false,
    });
    assert.equal(record.annotations, undefined);
    assert.equal(record.outputSchema, undefined);
  });

  it("accepts a full object schema, an explicit required list, and closes nested objects", () => {
    const [record] = plugin({
      t: tool(
        {
          description: "d",
          input: {
            type: "object",
            properties: { p: { type: "object", properties: { x: { type: "string" } } }, q: { type: "string" } },
          },
          required: ["q"],
        },
        () => "",
      ),
    }).listTools();
    const schema = JSON.parse(record.inputSchema);
    assert.deepEqual(schema.required, ["q"]);
    assert.equal(schema.additionalProperties, false);
    assert.deepEqual(schema.properties.p.required, ["x"]);
    assert.equal(schema.properties.p.additionalProperties, false);
  });

  it("skips values that are not tools (a module namespace may hold helpers)", () => {
    const names = plugin({ helper: () => 1, limit: 3, only: tool({ description: "d" }, () => "") })
      .listTools()
      .map((t) => t.name);
    assert.deepEqual(names, ["only"]);
  });

  it("rejects bad definitions when the plugin is built", () => {
    assert.throws(() => plugin({ "bad name": tool({ description: "d" }, () => "") }), /names must match/);
    assert.throws(() => plugin({ t: tool({}, () => "") }), /description/);
    assert.throws(() => plugin({ t: tool({ description: "d", readonly: true }, () => "") }), /unknown option `readonly`/);
    assert.throws(() => plugin({ t: tool({ description: "d", required: ["x"] }, () => "") }), /`x` is not defined/);
    assert.throws(() => plugin({ t: tool({ description: "d", readOnly: "yes" }, () => "") }), /true or false/);
    assert.throws(() => plugin({}), /no tools/);
    const a = tool({ name: "x", description: "d" }, () => "");
    assert.throws(() => plugin({ a, b: a }), /two tools are named `x`/);
    assert.throws(() => tool({ description: "d" }), /handler must be a function/);
  });
});

describe("callTool", () => {
  it("returns structured content and the same JSON as text, with defaults applied", async () => {
    const result = await call(tools, "add", { a: 1 });
    assert.deepEqual(result.structured, { sum: 11 });
    assert.equal(result.text, '{"sum":11}');
    assert.equal(result.isError, false);
  });

  it("returns a string as one text block", async () => {
    const result = await call(tools, "greet", { name: "Ada" });
    assert.deepEqual(result.content, [{ tag: "text", val: "Hello, Ada!" }]);
    assert.equal(result.structured, undefined);
  });

  it("maps other return values", async () => {
    assert.deepEqual((await call(tools, "nothing")).content, []);
    assert.equal((await call(tools, "list")).text, "[1,2]");
    const blocks = await call(tools, "blocks");
    assert.equal(blocks.content[1].tag, "image");
    assert.deepEqual(blocks.content[1].val, { data: new Uint8Array([1, 2]), mimeType: "image/png" });
    const soft = await call(tools, "soft");
    assert.equal(soft.isError, true);
    assert.equal(soft.text, "no luck");
    assert.equal((await call(tools, "custom-name")).text, "ok");
  });

  it("awaits async handlers", async () => {
    assert.deepEqual((await call(tools, "later", { ms: 2 })).structured, { waited: 2 });
    assert.deepEqual(await callError("later", { ms: -1 }), { tag: "failed", val: "negative" });
  });

  it("maps errors to failed and invalid-arguments", async () => {
    assert.deepEqual(await callError("failing"), { tag: "failed", val: "the date 2025-02-30 does not exist" });
    assert.deepEqual(await callError("rejecting", { value: 3 }), { tag: "invalid-arguments", val: "value 3 is odd" });
    const crash = await callError("crashing");
    assert.equal(crash.tag, "failed");
    assert.match(crash.val, /null/);
    assert.deepEqual(await callError("thrower"), { tag: "failed", val: "plain string" });
    assert.deepEqual(await callError("nope"), { tag: "unknown-tool", val: "nope" });
    const liar = await callError("liar");
    assert.equal(liar.tag, "failed");
    assert.match(liar.val, /`\/n` must be integer, not string/);
  });

  it("rejects bad arguments naming the field", async () => {
    assert.deepEqual(await callError("add", {}), { tag: "invalid-arguments", val: "missing required field `/a`" });
    assert.deepEqual(await callError("add", { a: "1" }), {
      tag: "invalid-arguments",
      val: "`/a` must be integer, not string",
    });
    assert.deepEqual(await callError("add", { a: 1.5 }), {
      tag: "invalid-arguments",
      val: "`/a` must be integer, not number",
    });
    const unknown = await callError("add", { a: 1, c: 2 });
    assert.match(unknown.val, /unknown field `\/c`/);
    assert.equal((await callError("add", "{not json")).tag, "invalid-arguments");
    assert.match((await callError("add", "[1]")).val, /must be a JSON object, not array/);
  });

  it("calls synchronously when the handler is synchronous", () => {
    const result = tools.callTool("greet", '{"name":"x"}');
    assert.equal(result.content[0].val, "Hello, x!");
    assert.throws(() => tools.callTool("failing", "{}"), (error) => error.payload.tag === "failed");
  });
});

describe("host imports", () => {
  it("reach the host (the stand-in under node)", async () => {
    setConfig("key", "value");
    setCancelled(true);
    const result = await call(tools, "host");
    assert.equal(result.text, "value undefined true");
    assert.deepEqual(takeLogs(), [
      { level: "info", message: "plain" },
      { level: "warn", message: "careful" },
    ]);
    assert.deepEqual(takeProgress(), [{ done: 1, total: 2, message: "half" }]);
    assert.deepEqual(takeLogs(), []);
  });

  it("tell the caller when the host does", () => {
    reset();
    assert.equal(caller(), undefined);
    setCaller({ name: "alice", scopes: ["tools:call"] });
    assert.deepEqual(caller(), { name: "alice", scopes: ["tools:call"] });
    reset();
    assert.equal(caller(), undefined);
  });
});
