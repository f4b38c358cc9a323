// The live event debugger. Everything shown comes from event payloads, which
// anyone can send: it is only ever inserted as text (textContent), never as HTML.
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var events = [];
  var socket;
  var token = sessionStorage.getItem("sluice_debugger_token") || new URLSearchParams(location.hash.slice(1)).get("token") || "";
  $("token").value = token;

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text != null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function json(v) { return JSON.stringify(v, null, 2); }
  function section(title, value) {
    var d = el("details");
    d.appendChild(el("summary", title));
    d.appendChild(el("pre", typeof value === "string" ? value : json(value)));
    return d;
  }
  function matches(e) {
    var t = $("f-type").value, n = $("f-event").value.toLowerCase(), u = $("f-user").value.toLowerCase();
    var label = String(e.event || e.name || "").toLowerCase();
    return (!t || e.type === t) && (!n || label.indexOf(n) >= 0) &&
      (!u || String(e.userId || "").toLowerCase().indexOf(u) >= 0 || String(e.anonymousId || "").toLowerCase().indexOf(u) >= 0);
  }
  function card(e) {
    var li = el("li", null, "event " + String(e.status || "").split(":")[0]);
    li.dataset.messageId = e.messageId || "";
    var head = el("div", null, "head");
    head.appendChild(el("time", e.at ? new Date(e.at).toLocaleTimeString() : ""));
    head.appendChild(el("span", e.type || "?", "type"));
    head.appendChild(el("strong", e.event || e.name || "(no name)", "name"));
    head.appendChild(el("span", e.status, "badge"));
    if (e.userId) {
      var who = el("button", e.userId, "link who");
      who.type = "button";
      who.addEventListener("click", function () { profile(e.userId); });
      head.appendChild(who);
    }
    if (e.anonymousId) {
      var anon = el("button", e.anonymousId, "link anon");
      anon.type = "button";
      anon.addEventListener("click", function () { profile(e.anonymousId); });
      head.appendChild(anon);
    }
    li.appendChild(head);
    if (e.properties) li.appendChild(section("Properties", e.properties));
    if (e.traits) li.appendChild(section("Traits", e.traits));
    if (e.enrichment) li.appendChild(section("Enrichment added", e.enrichment));
    if (e.consent) li.appendChild(section("Consent: " + (e.consent.decision || "—"), e.consent));
    if (e.validation) li.appendChild(section("Validation", e.validation));
    if (e.problems) li.appendChild(section("Why it was refused", e.problems));
    li.appendChild(el("p", "Dedup: " + (e.dedup || "—"), "dedup"));
    if (e.deliveries) li.appendChild(section("Delivered to", e.deliveries));
    return li;
  }
  function render() {
    var list = $("events");
    list.textContent = "";
    var shown = events.filter(matches);
    shown.slice(-300).reverse().forEach(function (e) { list.appendChild(card(e)); });
    $("count").textContent = shown.length + " of " + events.length;
  }
  function status(text, on) {
    $("status").textContent = text;
    $("status").className = "status " + (on ? "on" : "off");
  }
  function connect() {
    if (socket) socket.close();
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(proto + "//" + location.host + "/admin/v1/live?token=" + encodeURIComponent(token));
    status("connecting…", false);
    socket.onopen = function () { status("live", true); d1Status(); };
    socket.onclose = function () { status("disconnected", false); };
    socket.onmessage = function (m) {
      if (m.data === "pong") return;
      var e;
      try { e = JSON.parse(m.data); } catch (err) { return; }
      events.push(e);
      render();
      if (concerns(e)) audiences();
    };
  }
  // Per destination, the last hour and day (GET /admin/v1/deliveries).
  var overviewTimer;
  function cell(row, text, cls) { var td = el("td", text == null ? "—" : text, cls); row.appendChild(td); return td; }
  function deliveries() {
    fetch("/admin/v1/deliveries", { headers: { authorization: "Bearer " + token } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (o) {
        if (!o) return;
        var body = $("deliveries-body");
        body.textContent = "";
        o.destinations.forEach(function (d) {
          [["hour", "last hour"], ["day", "last day"]].forEach(function (w, i) {
            var v = d[w[0]], tr = el("tr");
            tr.dataset.destination = d.name;
            tr.dataset.window = w[0];
            cell(tr, i ? "" : d.name + " (" + d.kind + ")", "name");
            cell(tr, w[1], "window");
            ["delivered", "retrying", "withheld", "deadLettered", "skipped"].forEach(function (k) { cell(tr, v[k], "n " + k); });
            cell(tr, v.latencyMsAvg == null ? null : v.latencyMsAvg + " ms / " + v.latencyMsMax + " ms", "latency");
            cell(tr, i || !d.lastError ? "" : d.lastError.at + ": " + d.lastError.message, "error");
            body.appendChild(tr);
          });
        });
        $("deliveries-since").textContent = "(" + o.bucketMinutes + "-minute steps, as of " + new Date(o.now).toLocaleTimeString() + ")";
        $("deliveries").hidden = false;
      }, function () {});
  }
  function watchDeliveries() {
    clearInterval(overviewTimer);
    deliveries();
    overviewTimer = setInterval(deliveries, 10000);
  }
  $("deliveries-refresh").addEventListener("click", deliveries);
  // D1's hot window: its capacity guard's warning (from 80 %), as text.
  function d1Status() {
    fetch("/admin/v1/status", { headers: { authorization: "Bearer " + token } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        var w = s && s.d1 && s.d1.warning;
        $("d1-warning").textContent = w ? w + " (" + s.d1.percent + " % of " + s.d1.capacityBytes + " bytes)" : "";
        $("d1-warning").hidden = !w;
      })
      .catch(function () {});
  }
  // The profile panel follows one person: their identity profile, and their
  // audiences and computed traits (GET /v1/profiles/{id}), read again each
  // time the live feed shows an event of theirs (an event that fed their
  // state, or their Audience Entered / Exited).
  var watched = null, personId = null, reading = false, again = false;
  function concerns(e) {
    if (!watched) return false;
    return [e.userId, e.anonymousId].some(function (id) { return id && (id === watched || id === personId); });
  }
  function profile(id) {
    watched = id;
    personId = null;
    $("profile-id").textContent = id;
    $("profile").hidden = false;
    $("profile-body").textContent = "";
    fetch("/admin/v1/profiles/" + encodeURIComponent(id), { headers: { authorization: "Bearer " + token } })
      .then(function (r) { return r.json(); })
      .then(function (p) { if (id === watched) $("profile-body").textContent = json(p); }, function () {});
    audiences();
  }
  function audiences() {
    if (reading) { again = true; return; }
    reading = true;
    var id = watched;
    fetch("/v1/profiles/" + encodeURIComponent(id), { headers: { authorization: "Bearer " + token } })
      .then(function (r) { return r.json().then(function (b) { return { status: r.status, body: b }; }); })
      .then(function (res) { if (id === watched) showAudiences(res); }, function () {})
      .then(function () {
        reading = false;
        if (again) { again = false; audiences(); }
      });
  }
  function showAudiences(res) {
    var list = $("profile-audiences"), rows = document.querySelector("#profile-traits tbody");
    list.textContent = "";
    rows.textContent = "";
    var b = res.body || {};
    if (res.status !== 200) {
      $("audience-status").textContent = (b.error && b.error.code) || "HTTP " + res.status;
      return;
    }
    personId = String(b.person || "").replace(/^[ua]:/, "");
    $("audience-status").textContent = "(" + b.person + ", as of " + new Date().toLocaleTimeString() + ")";
    (b.audiences || []).forEach(function (a) {
      var li = el("li", a.name + (a.member ? " — in since " : " — left at ") + a.changedAt, a.member ? "member" : "left");
      li.dataset.audience = a.name;
      li.dataset.member = String(a.member);
      list.appendChild(li);
    });
    Object.keys(b.traits || {}).forEach(function (k) {
      var t = b.traits[k], tr = el("tr");
      tr.dataset.trait = k;
      cell(tr, k, "name");
      cell(tr, JSON.stringify(t.value), "value");
      cell(tr, t.changedAt, "changed");
      rows.appendChild(tr);
    });
  }
  $("lookup").addEventListener("submit", function (e) {
    e.preventDefault();
    var id = $("profile-lookup").value.trim();
    if (id) profile(id);
  });
  $("connect").addEventListener("submit", function (e) {
    e.preventDefault();
    token = $("token").value;
    sessionStorage.setItem("sluice_debugger_token", token);
    connect();
    watchDeliveries();
  });
  ["f-type", "f-event", "f-user"].forEach(function (id) { $(id).addEventListener("input", render); });
  $("close-profile").addEventListener("click", function () { $("profile").hidden = true; watched = null; });
  if (token) { connect(); watchDeliveries(); }
})();
