// Module resolution hooks installed by register.js (runs in node's loader thread).

const targets = {
  "capsule-sdk": new URL("./index.js", import.meta.url).href,
  "capsule-sdk/testing": new URL("./testing.js", import.meta.url).href,
  "capsule:plugin/host@0.1.0": new URL("./testing.js", import.meta.url).href,
};

export async function resolve(specifier, context, nextResolve) {
  const url = targets[specifier];
  if (url) return { url, shortCircuit: true, format: "module" };
  return nextResolve(specifier, context);
}
