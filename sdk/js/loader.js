// Sluice loader (the file behind <script async src="…/sluice.js">).
// Defines window.sluice as a call queue if the inline snippet has not,
// compiles the Wasm SDK while downloading it (streaming), then replays the
// queued calls with the time they were made. The build bundles the glue
// (wasm-bindgen's, with the JavaScript host) into this file, one request:
// `sluice-glue` is its alias for it. WASM is the Wasm's content-hashed file
// name, filled in at build time.
import * as glue from "sluice-glue";

(function (w, d) {
  var q = (w.sluice = w.sluice || []);
  if (q.loaded || q.started) return;
  q.started = 1;
  var methods = ["load", "track", "page", "screen", "identify", "group", "alias", "reset", "ready", "debug", "flush", "on", "consent.set", "consent.on"];
  methods.forEach(function (m) {
    var p = m.split("."), o = p[1] ? (q[p[0]] = q[p[0]] || {}) : q, f = p[1] || m;
    o[f] = o[f] || function () {
      q.push([m, [].slice.call(arguments), Date.now()]);
      return q;
    };
  });
  var script = d.currentScript || d.querySelector("script[data-write-key]");
  var base = script && script.src ? script.src.replace(/[^/]*$/, "") : "/sluice/v1/";
  var key = script && script.getAttribute("data-write-key");
  // The glue's init awaits the Wasm's response and compiles it as it
  // streams in. The inline snippet has started the download already, beside
  // this file's (`q.w`: the current build's Wasm at its stable URL, named in
  // `x-sluice-wasm`): that one is used if it is this build's (a page can hold
  // a loader and a Wasm of two deploys while both are cached), else the
  // content-hashed file.
  var own = function () {
      return fetch(base + WASM);
    },
    wasm = q.w
      ? q.w.then(function (r) {
          return r.headers.get("x-sluice-wasm") == WASM ? r : own();
        }, own)
      : own();
  glue.default({ module_or_path: wasm })
    .then(function () {
      // Every call goes through the core's one export, by its number
      // in this list (`OPS` in sdk/src/api.rs).
      var api = { loaded: true, readyAt: performance.now(), ready: function (cb) { cb(api); }, consent: {} },
        replayAt;
      "load track page screen identify group alias reset user anonymousId debug flush stats audiences traits on consentSet consentGet consentOn replayAt"
        .split(" ")
        .forEach(function (n, i) {
          // `load` also hands the core its host's callback (the `wake` export).
          function f(a, b, c, d) {
            return glue.op(i, a, b, i ? c : glue.wake, d);
          }
          if (n == "replayAt") replayAt = f;
          else if (n.slice(0, 7) == "consent") api.consent[n[7].toLowerCase() + n.slice(8)] = f;
          else api[n] = f;
        });
      var calls = q.slice(), loads = calls.filter(function (c) { return c[0] == "load"; });
      if (loads.length) api.load.apply(null, loads[0][1]);
      else if (key) api.load(key);
      w.sluice = api;
      calls.forEach(function (c) {
        if (c[0] == "load") return;
        var p = c[0].split("."), f = p[1] ? api[p[0]][p[1]] : api[c[0]];
        try {
          replayAt(c[2]);
          f.apply(null, c[1]);
        } catch (e) {
          console.error("sluice:", e);
        } finally {
          replayAt();
        }
      });
    })
    .catch(function (e) {
      console.error("sluice: failed to load", e);
    });
})(window, document);
