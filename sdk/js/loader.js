// Sluice loader (the file behind <script async src="…/sluice.js">).
// Defines window.sluice as a call queue if the inline snippet has not,
// compiles the Wasm SDK while downloading it (streaming, in parallel with the
// glue), then replays the queued calls with the time they were made. GLUE and
// WASM are the content-hashed file names, filled in at build time.
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
  // The Wasm downloads alongside the glue, not after it; the glue's init
  // awaits the response and compiles it as it streams in.
  var wasm = fetch(base + WASM);
  wasm.catch(function () {}); // reported below, if the glue loads
  import(base + GLUE)
    .then(function (m) {
      return m.default({ module_or_path: wasm }).then(function () {
        // Every call goes through the core's one export, by its number
        // in this list (`OPS` in sdk/src/api.rs).
        var api = { loaded: true, readyAt: w.performance ? performance.now() : 0, ready: function (cb) { cb(api); }, consent: {} },
          replayAt;
        "load track page screen identify group alias reset user anonymousId debug flush stats audiences traits on consentSet consentGet consentOn replayAt"
          .split(" ")
          .forEach(function (n, i) {
            // `load` also hands the core its host's callback (the `wake` export).
            function f(a, b, c, d) {
              return m.op(i, a, b, i ? c : m.wake, d);
            }
            if (n == "replayAt") replayAt = f;
            else if (n.slice(0, 7) == "consent") api.consent[n[7].toLowerCase() + n.slice(8)] = f;
            else api[n] = f;
          });
        var calls = q.slice(), loads = calls.filter(function (c) { return c[0] === "load"; });
        if (loads.length) api.load.apply(null, loads[0][1]);
        else if (key) api.load(key);
        w.sluice = api;
        calls.forEach(function (c) {
          if (c[0] === "load") return;
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
      });
    })
    .catch(function (e) {
      console.error("sluice: failed to load", e);
    });
})(window, document);
