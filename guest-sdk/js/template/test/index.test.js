import assert from "node:assert/strict";
import { it } from "node:test";

import { call } from "capsule-sdk/testing";

import { tools } from "../index.js";

it("greets", async () => {
  assert.equal((await call(tools, "greet", { name: "Ada" })).text, "Hello, Ada!");
});
