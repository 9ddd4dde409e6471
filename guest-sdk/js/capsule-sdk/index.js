// capsule-sdk: write Capsule tool plugins in JavaScript. See ../README.md.
//
// This entry binds the SDK to the real host imports of the component. Projects import it as
// "capsule-sdk" (esbuild aliases that name to this file when bundling; under node,
// register.js resolves it and serves the host imports from testing.js).

import * as host from "capsule:plugin/host@0.1.0";
import { setHost } from "./core.js";

setHost(host);

export {
  CallError,
  Content,
  InvalidArguments,
  Tool,
  ToolError,
  ToolOutput,
  audio,
  caller,
  cancelled,
  config,
  image,
  log,
  output,
  plugin,
  progress,
  resource,
  resourceLink,
  text,
  tool,
} from "./core.js";
