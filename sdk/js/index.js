// Sluice for bundlers: `import { load } from "@sluice/sdk"`.
// Fetches and compiles the Wasm next to this file (streaming), then returns the API.
import init, * as m from "./sdk.js";

let ready;

/** Load the SDK with a write key and options; resolves to the API. */
export function load(writeKey, options) {
  ready = ready || init({ module_or_path: new URL("./sdk_bg.wasm", import.meta.url) }).then(function () {
    m.load(writeKey, options);
    return {
      track: m.track,
      page: m.page,
      screen: m.screen,
      identify: m.identify,
      group: m.group,
      alias: m.alias,
      reset: m.reset,
      user: m.user,
      anonymousId: m.anonymousId,
      debug: m.debug,
      flush: m.flush,
      stats: m.stats,
      audiences: m.audiences,
      traits: m.traits,
      on: m.on,
      consent: { set: m.consentSet, get: m.consentGet, on: m.consentOn },
    };
  });
  return ready;
}
