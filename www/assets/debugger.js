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
    head.appendChild(el("span", e.anonymousId || "", "anon"));
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
      try { events.push(JSON.parse(m.data)); } catch (err) { return; }
      render();
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
  function profile(userId) {
    fetch("/admin/v1/profiles/" + encodeURIComponent(userId), { headers: { authorization: "Bearer " + token } })
      .then(function (r) { return r.json(); })
      .then(function (p) { $("profile-body").textContent = json(p); $("profile").hidden = false; });
  }
  $("connect").addEventListener("submit", function (e) {
    e.preventDefault();
    token = $("token").value;
    sessionStorage.setItem("sluice_debugger_token", token);
    connect();
    watchDeliveries();
  });
  ["f-type", "f-event", "f-user"].forEach(function (id) { $(id).addEventListener("input", render); });
  $("close-profile").addEventListener("click", function () { $("profile").hidden = true; });
  if (token) { connect(); watchDeliveries(); }
})();
