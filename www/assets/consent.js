// A small, accessible consent banner driving the Sluice consent API.
// Sites with their own CMP (TCF, GPP, Google Consent Mode) leave it out:
// the SDK reads those directly.
(function () {
  var PURPOSES = [
    ["analytics", "Analytics", "Measure how the shop is used."],
    ["personalization", "Personalization", "Remember what you like."],
    ["marketing", "Marketing", "Ads and offers, including partners'."],
  ];
  var banner, returnFocus;

  function build() {
    banner = document.createElement("section");
    banner.id = "consent-banner";
    banner.setAttribute("role", "dialog");
    banner.setAttribute("aria-labelledby", "consent-title");
    banner.setAttribute("aria-describedby", "consent-desc");
    banner.hidden = true;
    var h = document.createElement("h2");
    h.id = "consent-title";
    h.textContent = "Your privacy";
    var p = document.createElement("p");
    p.id = "consent-desc";
    p.textContent = "We collect first-party data only with your consent. Choose what you allow; you can change it any time under Privacy settings.";
    var gpc = document.createElement("p");
    gpc.id = "gpc-note";
    gpc.textContent = "Your browser sends Global Privacy Control: we will not sell or share your data, whatever you choose here.";
    gpc.hidden = navigator.globalPrivacyControl !== true;
    var choices = document.createElement("fieldset");
    choices.id = "consent-choices";
    choices.hidden = true;
    var legend = document.createElement("legend");
    legend.textContent = "Purposes";
    choices.appendChild(legend);
    PURPOSES.forEach(function (x) {
      var label = document.createElement("label");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.name = x[0];
      box.id = "consent-" + x[0];
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + x[1] + " — " + x[2]));
      choices.appendChild(label);
    });
    var actions = document.createElement("div");
    actions.className = "actions";
    var button = function (id, text) {
      var b = document.createElement("button");
      b.type = "button";
      b.id = id;
      b.textContent = text;
      actions.appendChild(b);
      return b;
    };
    var accept = button("consent-accept", "Accept all");
    var reject = button("consent-reject", "Reject all");
    var customize = button("consent-customize", "Customize");
    customize.setAttribute("aria-expanded", "false");
    customize.setAttribute("aria-controls", "consent-choices");
    var save = button("consent-save", "Save choices");
    save.hidden = true;
    accept.addEventListener("click", function () { choose({ analytics: true, personalization: true, marketing: true }); });
    reject.addEventListener("click", function () { choose({ analytics: false, personalization: false, marketing: false }); });
    customize.addEventListener("click", function () {
      choices.hidden = false;
      save.hidden = false;
      customize.setAttribute("aria-expanded", "true");
      document.getElementById("consent-analytics").focus();
    });
    save.addEventListener("click", function () {
      var c = {};
      PURPOSES.forEach(function (x) { c[x[0]] = document.getElementById("consent-" + x[0]).checked; });
      choose(c);
    });
    banner.addEventListener("keydown", function (e) { if (e.key === "Escape") hide(); });
    [h, p, gpc, choices, actions].forEach(function (n) { banner.appendChild(n); });
    document.body.insertBefore(banner, document.body.firstChild);
  }

  function show() {
    returnFocus = document.activeElement;
    var current = window.sluice.consent && window.sluice.consent.get ? window.sluice.consent.get() : null;
    PURPOSES.forEach(function (x) {
      var box = document.getElementById("consent-" + x[0]);
      box.checked = !!(current && current.categories && current.categories[x[0]] === "granted");
    });
    banner.hidden = false;
    document.getElementById("consent-accept").focus();
  }

  function hide() {
    banner.hidden = true;
    if (returnFocus && returnFocus.focus) returnFocus.focus();
  }

  function choose(c) {
    window.sluice.consent.set(c);
    hide();
  }

  build();
  document.getElementById("privacy-settings").addEventListener("click", show);
  window.sluice.ready(function (api) {
    if (!api.consent.get().known) show();
    // Consent given some other way (a CMP, the API): the banner is not needed.
    api.consent.on(function () { if (!banner.hidden) hide(); });
  });
})();
