// Sluice for bundlers: `import { load } from "@sluice/sdk"`.
// Fetches and compiles the Wasm next to this file (streaming), then returns the API.
import init, { op, wake } from "./sdk.js";

let ready;

/** Load the SDK with a write key and options; resolves to the API. */
export function load(writeKey, options) {
  ready = ready || init({ module_or_path: new URL("./sdk_bg.wasm", import.meta.url) }).then(function () {
    // `load` also hands the core its host's callback (the `wake` export).
    op(0, writeKey, options, wake);
    // Every call goes through the core's one export, by its number in this
    // list (`OPS` in sdk/src/api.rs); `load` and `replayAt` are the loader's.
    const api = { consent: {} };
    "load track page screen identify group alias reset user anonymousId debug flush stats audiences traits on consentSet consentGet consentOn replayAt"
      .split(" ")
      .forEach(function (n, i) {
        const f = (a, b, c, d) => op(i, a, b, c, d);
        if (n == "load" || n == "replayAt") return;
        if (n.startsWith("consent")) api.consent[n[7].toLowerCase() + n.slice(8)] = f;
        else api[n] = f;
      });
    return api;
  });
  return ready;
}
