// `node --import ./capsule-sdk/register.js --test`: lets a plugin's code run under plain node.
// Resolves the bare names "capsule-sdk" (to index.js) and "capsule-sdk/testing" (testing.js),
// and serves the WIT import `capsule:plugin/host@0.1.0` from the stand-in in testing.js.

import { register } from "node:module";

register("./hooks.js", import.meta.url);
