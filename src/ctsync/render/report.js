(function () {
  "use strict";
  var all = function (s) { return Array.prototype.slice.call(document.querySelectorAll(s)); };
  var arrows = all("#topology [data-link]"), nodes = all("#topology [data-tenant]");
  var tags = all("#topology .tag"), rows = all("tr[data-row]"), cards = all("[data-card]");
  var checks = all("input[data-health]");
  var q = document.getElementById("q"), pick = document.getElementById("tenant");
  var shown = document.getElementById("shown");
  var byKey = {};
  arrows.forEach(function (a) {
    byKey[a.getAttribute("data-link")] = {
      s: a.getAttribute("data-source"), t: a.getAttribute("data-target"),
      h: a.getAttribute("class").split(" ")[1]
    };
  });
  function update() {
    var text = q.value.trim().toLowerCase(), tenant = pick.value, on = {};
    checks.forEach(function (c) { on[c.getAttribute("data-health")] = c.checked; });
    var hit = function (name) { return !text || name.toLowerCase().indexOf(text) >= 0; };
    var visible = function (key) {
      var l = byKey[key];
      if (!l || !on[l.h]) { return false; }
      if (tenant && l.s !== tenant && l.t !== tenant) { return false; }
      return hit(l.s) || hit(l.t) || hit(key);
    };
    var count = 0, touched = {};
    arrows.forEach(function (a) {
      var key = a.getAttribute("data-link"), v = visible(key), l = byKey[key];
      a.classList.toggle("gone", !v);
      a.classList.toggle("on", v && (!!tenant || !!text));
      if (v) { count += 1; touched[l.s] = true; touched[l.t] = true; }
    });
    tags.forEach(function (g) { g.classList.toggle("gone", !visible(g.getAttribute("data-for"))); });
    nodes.forEach(function (n) {
      var name = n.getAttribute("data-tenant");
      n.classList.toggle("sel", name === tenant);
      n.classList.toggle("dim", !(touched[name] || (hit(name) && (!tenant || name === tenant))));
    });
    rows.forEach(function (r) { r.classList.toggle("gone", !visible(r.getAttribute("data-row"))); });
    cards.forEach(function (c) { c.classList.toggle("gone", !visible(c.getAttribute("data-card"))); });
    shown.textContent = count + " of " + arrows.length + " links shown";
  }
  q.addEventListener("input", update);
  pick.addEventListener("change", update);
  checks.forEach(function (c) { c.addEventListener("change", update); });
  document.getElementById("reset").addEventListener("click", function () {
    q.value = ""; pick.value = ""; checks.forEach(function (c) { c.checked = true; }); update();
  });
  function choose(n) {
    var name = n.getAttribute("data-tenant");
    pick.value = pick.value === name ? "" : name;
    update();
  }
  nodes.forEach(function (n) {
    n.addEventListener("click", function () { choose(n); });
    n.addEventListener("keydown", function (e) { if (e.key === "Enter") { choose(n); } });
  });
  document.getElementById("topology").addEventListener("click", function (e) {
    var a = e.target.closest ? e.target.closest("[data-link]") : null;
    if (!a) { return; }
    var card = document.getElementById("l" + a.getAttribute("data-i"));
    var row = rows.filter(function (r) { return r.getAttribute("data-row") === a.getAttribute("data-link"); })[0];
    var go = card || row;
    if (card) { card.open = true; }
    if (go) { go.scrollIntoView({behavior: "smooth", block: "start"}); }
  });
  // A link to the page can pick a tenant: report.html#tenant=contoso
  var asked = /^#tenant=(.+)$/.exec(window.location.hash);
  if (asked) { pick.value = decodeURIComponent(asked[1]); }
  update();
}());
