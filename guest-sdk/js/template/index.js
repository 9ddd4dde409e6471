// The {{name}} plugin: each tool is a `tool(spec, handler)`; `plugin({...})` exports them.
// Build: `npm run build` -> {{name}}.wasm. Test under node: `npm test`.

import { plugin, tool } from "capsule-sdk";

export const greet = tool(
  {
    title: "Greet",
    description: "Greet someone by name. Use it to say hello to the user.",
    readOnly: true,
    idempotent: true,
    input: {
      name: { type: "string", minLength: 1, description: "Who to greet, e.g. Ada." },
    },
  },
  ({ name }) => `Hello, ${name}!`,
);

export const tools = plugin({ greet });
