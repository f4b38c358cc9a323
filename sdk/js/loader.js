// Sluice loader. Defines window.sluice as a call queue (if the inline snippet
// has not already), loads the Wasm SDK asynchronously, then replays the
// queued calls with the time they were made.
(function (w, d) {
  var methods = ["load", "track", "page", "anonymousId"];
  var q = (w.sluice = w.sluice || []);
  if (q.loaded || q.loading) return;
  q.loading = true;
  methods.forEach(function (m) {
    q[m] =
      q[m] ||
      function () {
        q.push([m, [].slice.call(arguments), Date.now()]);
        return q;
      };
  });
  var script = d.currentScript;
  var base = script ? script.src.replace(/[^/]*$/, "") : "/sluice/v1/";
  var key = script && script.getAttribute("data-write-key");
  import(base + "sdk.js")
    .then(function (m) {
      return m.default({ module_or_path: base + "sdk_bg.wasm" }).then(function () {
        var api = {
          loaded: true,
          load: m.load,
          anonymousId: m.anonymousId,
          track: function (e, p) { return m.track(e, p); },
          page: function (n, p) { return m.page(n, p); },
        };
        var calls = q.slice();
        if (key && !calls.some(function (c) { return c[0] === "load"; })) m.load(key);
        w.sluice = api;
        calls.forEach(function (c) {
          var args = c[1];
          try {
            if (c[0] === "track" || c[0] === "page") m[c[0]](args[0], args[1], c[2]);
            else if (api[c[0]]) api[c[0]].apply(null, args);
          } catch (e) {
            console.error("sluice:", e);
          }
        });
      });
    })
    .catch(function (e) {
      console.error("sluice: failed to load", e);
    });
})(window, document);
