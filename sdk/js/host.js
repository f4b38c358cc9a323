// The SDK's JavaScript host: what only JavaScript can do for the Wasm core,
// with nothing decided here (when to send, what, and what an answer means
// are the core's, in Rust). wasm-bindgen imports it; the build bundles it
// into the glue. Everything that happens is reported through one callback,
// wake(kind, a, b, c), with kind a number of `Wake` in sdk/src/host.rs.

var wake,
  // The post whose body is being compressed (its number), else 0.
  compressing = 0,
  posts = 0;

// The core's callback.
export function init(w) {
  wake = w;
}

// Report `kind` in `ms` (11: the send timer, 12: the persist timer).
export function timer(kind, ms) {
  setTimeout(wake, ms, kind);
}

// console.log, for debug(true).
export function log(what, detail) {
  console.log("[sluice]", what, detail);
}

// navigator.sendBeacon(url, body): true if the browser queued it.
export function beacon(url, body) {
  try {
    return navigator.sendBeacon(url, body);
  } catch (e) {
    return false;
  }
}

// The id endpoint: a GET with credentials, whose answer sets the cookie.
export function idCookie(url) {
  try {
    fetch(url, { credentials: "include" }).catch(String);
  } catch (e) {}
}

// document.cookie; undefined where reading it throws (cookies blocked).
export function cookies() {
  try {
    return document.cookie;
  } catch (e) {}
}

export function setCookie(text) {
  try {
    document.cookie = text;
  } catch (e) {}
}

// localStorage; undefined where touching it throws (sandboxed iframes,
// storage blocked: the core then keeps things in memory).
function ls(f) {
  try {
    return f(localStorage);
  } catch (e) {}
}

export function lsGet(k) {
  return ls(function (s) {
    return s.getItem(k);
  });
}

// False where it throws (quota, blocked).
export function lsSet(k, v) {
  return !!ls(function (s) {
    s.setItem(k, v);
    return 1;
  });
}

export function lsRemove(k) {
  ls(function (s) {
    s.removeItem(k);
  });
}

// The keys starting with `prefix`, one per line.
export function lsKeys(prefix) {
  return (
    ls(function (s) {
      return Object.keys(s)
        .filter(function (k) {
          return !k.indexOf(prefix);
        })
        .join("\n");
    }) || ""
  );
}

// A form-encoded component decoded (`+` is a space); itself where malformed.
export function formDecode(s) {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch (e) {
    return s;
  }
}

// A v4 UUID: crypto.randomUUID() in secure contexts, else from random bytes.
export function uuid() {
  var c = crypto, b;
  if (c.randomUUID) return c.randomUUID();
  b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  return [].map
    .call(b, function (x, i) {
      return (i > 3 && i < 11 && !(i & 1) ? "-" : "") + (x + 256).toString(16).slice(1);
    })
    .join("");
}

// ISO 8601 of `ms` (a whole number within a Date's range: the core's).
export function isoAt(ms) {
  return new Date(ms).toISOString();
}

// The Authorization header of a write key (HTTP Basic, no password).
export function basicAuth(key) {
  try {
    return "Basic " + btoa(key + ":");
  } catch (e) {
    return "Basic ";
  }
}

// POST `body` to `url` with `keepalive`, gzipped by the browser's
// CompressionStream where it has one (plain where it has not, or where
// compression fails). Reports 1 (wired) once `fetch` has a keepalive request (from
// then on the browser completes it even if the page goes), and 2 (answered:
// status, retryAfter, profile) once (profile: the answer's `profile` field,
// if any), status 0 on a network error (or a `fetch` that throws), after
// reading the response so the keepalive quota is freed. withdraw(), while
// the body is still being compressed, cancels the request and returns true
// (it is then never answered); afterwards it returns false.
export function post(url, auth, body) {
  var me = ++posts;
  function send(b, gzipped) {
    compressing = 0;
    var headers = { "content-type": "text/plain", authorization: auth },
      status = 0,
      retryAfter,
      profile;
    if (gzipped) headers["content-encoding"] = "gzip";
    function finish() {
      wake(2, status, retryAfter, profile);
    }
    // A network error is reported a task later (below): leaving the page
    // rejects its keepalive fetch although the browser still delivers it,
    // and by then the page is gone, so the core never takes that for a
    // failure (and never sends those events again by beacon).
    // keepalive has a 64 KiB budget (with beacons): a body larger than
    // that (rarely: a large batch that gzip could not shrink, or a browser
    // without CompressionStream) goes as a plain fetch, and is not reported
    // wired, so its events stay stored until it is answered.
    var keep = (b.byteLength || b.length * 3) < 6e4;
    try {
      fetch(url, { method: "POST", body: b, headers: headers, keepalive: keep })
        .then(function (r) {
          status = r.status;
          retryAfter = r.headers.get("retry-after");
          return r.text();
        })
        .then(function (t) {
          try {
            profile = JSON.parse(t).profile;
          } catch (e) {}
        })
        .then(finish, function () {
          setTimeout(finish);
        });
      keep && wake(1);
    } catch (e) {
      finish();
    }
  }
  // The body to the compressor as a Response's stream (UTF-8 encoded here),
  // not a Blob's: a Blob is a copy handed to the browser process, and that
  // was most of the main thread's time in a burst.
  if (self.CompressionStream) {
    compressing = me;
    new Response(new Response(body).body.pipeThrough(new CompressionStream("gzip")))
      .arrayBuffer()
      .then(
        function (b) {
          compressing == me && send(b, 1);
        },
        function () {
          compressing == me && send(body);
        }
      );
  } else send(body);
}

export function withdraw() {
  return !!compressing && !(compressing = 0);
}

// Every consent-management platform on the page, reported as
// wake(kind, data, text), plain text that the core parses and decides on:
// - 3, an IAB TCF v2 tcData (`__tcfapi`): data is
//   "<0 if gdprApplies is false, else 1>;<eventStatus>;<purpose consents>;<legitimate interests>"
//   (purposes 1-11 as bits 1-11), text the tcString;
// - 4, an IAB GPP pingData (`__gpp`, on every event and once by `ping`): data is
//   "<signalStatus>|<parsedSections>" with one
//   "<SaleOptOut>,<SharingOptOut>,<TargetedAdvertisingOptOut>,<Gpc>" per section
//   or sub-section, joined by ";" (empty without parsedSections), text the gppString;
// - 5, a Google Consent Mode `gtag('consent', …, settings)` in the `dataLayer`
//   (those already there, then every push): data is "<key>=<value>;…".
export function watchCmps() {
  var w = window,
    dl = w.dataLayer,
    push = dl && dl.push;
  function str(x) {
    return typeof x == "string" ? x : undefined;
  }
  function bits(o) {
    for (var b = 0, i = 1; i < 12; i++) if (o && o[i] === true) b |= 1 << i;
    return b;
  }
  if (typeof w.__tcfapi == "function")
    w.__tcfapi("addEventListener", 2, function (tc, ok) {
      if (ok === false || !tc) return;
      var p = tc.purpose || {};
      wake(3, [tc.gdprApplies === false ? 0 : 1, tc.eventStatus, bits(p.consents), bits(p.legitimateInterests)].join(";"), str(tc.tcString));
    });
  if (typeof w.__gpp == "function") {
    var gpp = function (d, ok) {
      if (ok === false || !d) return;
      // addEventListener passes {eventName, pingData}; ping passes pingData itself.
      var p = d.pingData && typeof d.pingData == "object" ? d.pingData : d,
        s = p.parsedSections,
        parts = [];
      if (s && typeof s == "object")
        Object.keys(s).forEach(function (k) {
          [].concat(s[k]).forEach(function (x) {
            if (x) parts.push([x.SaleOptOut, x.SharingOptOut, x.TargetedAdvertisingOptOut, x.Gpc].join(","));
          });
        });
      wake(4, (p.signalStatus === undefined ? "ready" : p.signalStatus) + "|" + (s && typeof s == "object" ? parts.join(";") : "-"), str(p.gppString));
    };
    w.__gpp("addEventListener", gpp);
    w.__gpp("ping", gpp);
  }
  if (!Array.isArray(dl)) return;
  function gcm(e) {
    var s = e && e[0] == "consent" && e[2];
    if (s && typeof s == "object")
      wake(
        5,
        Object.keys(s)
          .filter(function (k) {
            return typeof s[k] == "string";
          })
          .map(function (k) {
            return k + "=" + s[k];
          })
          .join(";")
      );
  }
  dl.forEach(gcm);
  if (typeof push == "function")
    dl.push = function (e) {
      var r = push.apply(dl, arguments);
      gcm(e);
      return r;
    };
}

// Page facts for the automatic context: the parts that do not change during
// the page's life (library, user agent and its low-entropy client hints,
// locale, timezone, screen)…
export function stableContext(version) {
  var n = navigator,
    s = window.screen,
    u = n.userAgentData,
    c = { library: { name: "sluice.js", version: version }, userAgent: n.userAgent, locale: n.language },
    tz;
  try {
    tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {}
  if (tz) c.timezone = tz;
  if (s) c.screen = { width: s.width, height: s.height, density: window.devicePixelRatio };
  if (u) c.userAgentData = { brands: u.brands, mobile: u.mobile, platform: u.platform };
  return c;
}

// …and `context.page`, read again after an SPA navigation.
export function pageContext() {
  var l = location,
    d = document,
    link = d.querySelector("link[rel=canonical]"),
    href = link && link.getAttribute("href"),
    p = { path: l.pathname, referrer: d.referrer, search: l.search, title: d.title };
  if (href != null) {
    p.url = href;
    p.canonicalUrl = href;
  } else p.url = l.href.split("#")[0];
  return p;
}

// The page's life: 6 (visibility: true when it is hidden or left, by
// `visibilitychange` or `pagehide`: never `unload`, so the back/forward
// cache keeps working; false when it is visible again); 7 (online), when
// the browser is back online; 8 (tick), every `everyMs`.
export function listen(everyMs) {
  addEventListener("visibilitychange", function () {
    wake(6, document.visibilityState == "hidden");
  });
  addEventListener("pagehide", wake.bind(0, 6, 1));
  addEventListener("online", wake.bind(0, 7));
  setInterval(wake, everyMs, 8);
}

// 9 (navigated) after every `history.pushState` / `replaceState` and `popstate`.
export function watchHistory() {
  var h = history;
  ["pushState", "replaceState"].forEach(function (m) {
    var f = h[m];
    if (typeof f == "function")
      h[m] = function () {
        var r = f.apply(h, arguments);
        wake(9);
        return r;
      };
  });
  addEventListener("popstate", wake.bind(0, 9));
}

// Web Locks: hold `name` for the life of the page…
export function holdLock(name) {
  var l = navigator.locks;
  l && l.request(name, function () {
    return new Promise(function () {});
  });
}

// …or, if it is free, take it for the life of the page and report
// 10 (lock: name, true), or (name, false) if it is taken. Kept, because Web Locks do not order
// localStorage between tabs: a tab that took a closed tab's queue holds its
// lock, so no other tab takes that queue before it sees it gone. Without Web
// Locks, nothing is reported.
export function tryLock(name) {
  var l = navigator.locks;
  l &&
    l.request(name, { ifAvailable: true }, function (lock) {
      wake(10, name, !!lock);
      return lock && new Promise(function () {});
    });
}
