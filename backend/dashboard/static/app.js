/* Hulei coordinator dashboard: coverage map with drill-down and work panels. No CDN, no framework.

Every panel follows the unit shown (the last one drilled into): its own total above the map, its child
units on the map and in the list beside it, and the review queue, cases, overdue items, reports and next
week's plan of that unit. Text a person or the registry entered (unit, venue and person names, addresses,
comments) is wrapped in .user-text; everything else comes from i18n.js in the page's language. */
(function () {
  "use strict";
  var API = "/api/v1";
  var HELPERS_API = API + "/helpers/children-without-helper";  // masked; 404/403 for roles that may not see it
  var state = {
    token: sessionStorage.getItem("hulei.token"),
    user: JSON.parse(sessionStorage.getItem("hulei.user") || "null"),
    locale: localStorage.getItem("hulei.locale") || "zh-CN",
    config: { default_locale: "zh-CN", base_layer: null },
    stack: [],          // unit ids from the user's own unit down to the one shown
    selected: null,     // properties of the clicked unit
    lastCollection: null,
    openList: null      // the list view's kind while it is open
  };
  var map = null, unitLayer = null, labels = null;

  function t(key) {
    var own = (window.HuleiI18n[state.locale] || {})[key];
    return own !== undefined ? own : (window.HuleiI18n["zh-CN"][key] !== undefined ? window.HuleiI18n["zh-CN"][key] : key);
  }
  function fmt(key, values) {
    return t(key).replace(/\{(\w+)\}/g, function (_m, k) { return values[k] === undefined ? "" : String(values[k]); });
  }
  function $(sel) { return document.querySelector(sel); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  // A line made of parts: strings are the page's own text, {user: "..."} parts are entered names.
  function line(tag, attrs, parts) {
    var e = el(tag, attrs);
    parts.forEach(function (part) {
      if (part === null || part === undefined || part === "") return;
      if (typeof part === "object" && part.user !== undefined) {
        e.appendChild(el("span", { "class": "user-text" }, part.user));
      } else {
        e.appendChild(document.createTextNode(String(part)));
      }
    });
    return e;
  }
  function gcj() { return !!(state.config.base_layer && state.config.base_layer.gcj02); }
  function currentUnit() { return state.stack[state.stack.length - 1]; }
  function pct(p) { return p === null || p === undefined ? "—" : p.toFixed(1) + "%"; }
  function items(body) { return Array.isArray(body) ? body : (body && body.items) || []; }

  function applyLocale() {
    document.documentElement.lang = state.locale;
    document.querySelectorAll("[data-i18n]").forEach(function (n) { n.textContent = t(n.getAttribute("data-i18n")); });
    document.querySelectorAll("[data-i18n-aria]").forEach(function (n) {
      n.setAttribute("aria-label", t(n.getAttribute("data-i18n-aria")));
    });
    $("#lang").textContent = t("lang_switch");
    document.title = t("title");
    if (map) setZoomControl();
  }

  // Leaflet's zoom buttons carry English titles: replaced by the page's words in its language.
  var zoomControl = null;
  function setZoomControl() {
    if (zoomControl) map.removeControl(zoomControl);
    zoomControl = L.control.zoom({ zoomInTitle: t("zoom_in"), zoomOutTitle: t("zoom_out") }).addTo(map);
  }

  function api(path, options) {
    options = options || {};
    var headers = Object.assign({ "Accept-Language": state.locale === "en" ? "en" : "zh-CN" }, options.headers || {});
    if (state.token) headers.Authorization = "Bearer " + state.token;
    return fetch(path, Object.assign({}, options, { headers: headers })).then(function (resp) {
      if (resp.status === 401 && path.indexOf("/auth/login") < 0) { logout(); }
      return resp;
    });
  }

  function periodParams() {
    var p = new URLSearchParams();
    if ($("#period-kind").value === "month" && $("#month").value) p.set("month", $("#month").value);
    return p;
  }

  // ------------------------------------------------------------------ units above and below
  // Parent of each unit id, learnt from the coverage answers and, for units the page has not drawn yet
  // (a case's grid), from GET /org-units/{id}; used to keep the panels' lists to the unit shown.
  var parents = {}, parentRequests = {};
  function learn(ref) { if (ref && ref.id !== undefined && ref.id !== null) parents[ref.id] = ref.parent_id; }
  function parentOf(id) {
    if (Object.prototype.hasOwnProperty.call(parents, id)) return Promise.resolve(parents[id]);
    if (!parentRequests[id]) {
      parentRequests[id] = api(API + "/org-units/" + id).then(function (r) { return r.ok ? r.json() : null; })
        .then(function (u) { parents[id] = u ? u.parent_id : null; return parents[id]; })
        .catch(function () { return null; });
    }
    return parentRequests[id];
  }
  function isUnder(id, root) {
    if (id === root) return Promise.resolve(true);
    if (id === null || id === undefined || id === state.stack[0]) return Promise.resolve(false);
    return parentOf(id).then(function (p) { return p === null || p === undefined ? false : isUnder(p, root); });
  }
  // The rows whose unit (row[key]) is the unit shown or under it; everything at the user's own unit.
  function within(rows, key, root) {
    if (root === state.stack[0]) return Promise.resolve(rows);
    return Promise.all(rows.map(function (r) { return isUnder(r[key], root); })).then(function (flags) {
      return rows.filter(function (_r, i) { return flags[i]; });
    });
  }

  // ------------------------------------------------------------------ login
  function showApp() {
    $("#login-view").hidden = true;
    $("#app-view").hidden = false;
    $("#logout").hidden = false;
    $("#who").textContent = state.user ? state.user.display_name : "";
    initMap();
    state.stack = [state.user.org_unit_id];
    loadUnit();
  }

  function logout() {
    sessionStorage.removeItem("hulei.token");
    sessionStorage.removeItem("hulei.user");
    state.token = null;
    $("#app-view").hidden = true;
    $("#login-view").hidden = false;
    $("#logout").hidden = true;
  }

  $("#login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    $("#login-error").textContent = "";
    api(API + "/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ phone: $("#phone").value.trim(), password: $("#password").value })
    }).then(function (resp) {
      return resp.json().then(function (body) {
        if (!resp.ok) { $("#login-error").textContent = t("login_failed") + (body.detail || body.title || resp.status); return; }
        state.token = body.access_token;
        state.user = body.user;
        sessionStorage.setItem("hulei.token", state.token);
        sessionStorage.setItem("hulei.user", JSON.stringify(state.user));
        showApp();
      });
    });
  });
  $("#logout").addEventListener("click", function () {
    api(API + "/auth/logout", { method: "POST" }).finally(logout);
  });
  $("#lang").addEventListener("click", function () {
    state.locale = state.locale === "en" ? "zh-CN" : "en";
    localStorage.setItem("hulei.locale", state.locale);
    applyLocale();
    $("#period-label").textContent = periodLabel(state.lastCollection);
    if (state.token && map) {
      renderCollection(state.lastCollection, false);
      showTotal(state.lastCollection);
      showDetails(state.selected);
      loadPanels();
      if (state.openList) openList(state.openList);
    }
  });

  // ------------------------------------------------------------------ map
  function colour(percent) {
    if (percent === null || percent === undefined) return "#9aa5b1";
    if (percent >= 90) return "#1a9850";
    if (percent >= 70) return "#91cf60";
    if (percent >= 50) return "#fee08b";
    if (percent >= 30) return "#fc8d59";
    return "#d73027";
  }

  function initMap() {
    if (map) return;
    // A fine zoom step lets a drilled unit fill the map, so more of its parts have room for their names.
    map = L.map("map", { zoomControl: false, attributionControl: true, doubleClickZoom: false, zoomSnap: 0.25 });
    setZoomControl();
    var layer = state.config.base_layer;
    if (layer && layer.url_template) {
      var opts = { attribution: layer.attribution || "", maxZoom: 18 };
      if (layer.subdomains) opts.subdomains = layer.subdomains;
      L.tileLayer(layer.url_template, opts).addTo(map);
    }
    map.setView([30.02, 108.34], 12);
    map.on("click", function (ev) {
      // Clicks arrive in the base layer's system: back to WGS-84 for anything sent to the server.
      var ll = gcj() ? window.HuleiGeo.gcj02ToWgs84(ev.latlng.lng, ev.latlng.lat) : [ev.latlng.lng, ev.latlng.lat];
      map.getContainer().setAttribute("data-last-click-wgs84", ll[0].toFixed(6) + "," + ll[1].toFixed(6));
    });
    map.on("zoomend moveend resize", layoutLabels);
    var legend = L.control({ position: "topright" });
    legend.onAdd = function () {
      var div = L.DomUtil.create("div", "legend");
      [[90, "≥90%"], [70, "70–90%"], [50, "50–70%"], [30, "30–50%"], [0, "<30%"]].forEach(function (r) {
        div.innerHTML += '<i style="background:' + colour(r[0]) + '"></i>' + r[1] + "<br>";
      });
      return div;
    };
    legend.addTo(map);
  }

  function zoomForRequest() { return map ? Math.max(0, Math.min(22, Math.round(map.getZoom()))) : 12; }

  function loadUnit() {
    var unitId = currentUnit();
    var params = periodParams();
    params.set("unit_id", unitId);
    params.set("zoom", String(Math.max(zoomForRequest(), 12)));
    closeList();
    api(API + "/coverage?" + params.toString()).then(function (resp) { return resp.json(); }).then(function (body) {
      if (!body.features || unitId !== currentUnit()) return;
      state.lastCollection = body;
      learn(body.unit);
      body.features.forEach(function (f) { if (f.properties.kind === "unit") learn(f.properties); });
      $("#period-label").textContent = periodLabel(body);
      $("#breadcrumb").textContent = body.unit.name;
      $("#up").disabled = state.stack.length <= 1;
      showTotal(body);
      renderCollection(body, true);
      map.getContainer().setAttribute("data-loaded-unit", String(body.unit.id));
      loadNotVisited();
      loadPanels();
    });
  }

  // The counting rule of a figure: "all", "approved_only" or "mixed"; null from an older server.
  function countingOf(body) {
    if (!body) return null;
    if (body.counting) return body.counting;
    if (body.totals && body.totals.counting) return body.totals.counting;
    var seen = {};
    (body.features || []).forEach(function (f) {
      if (f.properties.kind === "unit" && f.properties.counting) seen[f.properties.counting] = true;
    });
    var keys = Object.keys(seen);
    if (!keys.length) return null;
    return keys.length === 1 ? keys[0] : "mixed";
  }
  function showCounting(node, counting) {
    node.className = "counting" + (counting ? " counting-" + counting : "");
    node.hidden = !counting;
    node.textContent = counting ? t("counting_" + counting) : "";
    if (counting) node.setAttribute("data-counting", counting); else node.removeAttribute("data-counting");
  }

  // The unit's own total, as the API sends it in `totals` (the sum over its child units).
  function showTotal(body) {
    if (!body) return;
    var n = body.totals || {};
    var box = $("#unit-total");
    box.hidden = false;
    box.setAttribute("data-unit-id", String(body.unit.id));
    box.setAttribute("data-households", String(n.households));
    box.setAttribute("data-visited", String(n.visited));
    box.setAttribute("data-percent", n.percent === null || n.percent === undefined ? "" : String(n.percent));
    $("#total-name").textContent = body.unit.name;
    $("#total-text").textContent = fmt("total_line", { level: t("level_" + body.unit.level), pct: pct(n.percent),
                                                         visited: n.visited, households: n.households });
    showCounting($("#total-counting"), countingOf(body));
  }

  function renderCollection(body, fit) {
    if (!body) return;
    if (unitLayer) map.removeLayer(unitLayer);
    if (labels) map.removeLayer(labels);
    var data = gcj() ? window.HuleiGeo.shiftGeoJSON(body, window.HuleiGeo.wgs84ToGcj02) : body;
    labels = L.layerGroup().addTo(map);
    unitLayer = L.geoJSON(data, {
      filter: function (f) { return f.properties.kind === "unit" && f.geometry; },
      style: function (f) {
        var chosen = state.selected && state.selected.id === f.properties.id;
        return { color: chosen ? "#000" : "#333", weight: chosen ? 3 : 1, fillColor: colour(f.properties.percent),
                 fillOpacity: 0.65 };
      },
      onEachFeature: function (f, layer) {
        var p = f.properties;
        layer.on("click", function () { selectUnit(p); });
        layer.on("dblclick", function () { if (p.drill_down) drill(p.id); });
        var marker = L.marker(layer.getBounds().getCenter(), {
          interactive: false, keyboard: false,
          icon: L.divIcon({ className: "unit-anchor", html: "", iconSize: [0, 0] })
        }).addTo(labels);
        // Two lines (the name, then its coverage) so that a narrow unit such as a grid's strip still fits.
        var e = el("span", { "class": "unit-label label-hidden" });
        e.appendChild(el("span", { "class": "label-name user-text" }, p.name));
        e.appendChild(el("span", { "class": "label-pct" }, pct(p.percent)));
        marker.getElement().appendChild(e);
        e.setAttribute("data-unit-name", p.name);
        e.setAttribute("data-unit-id", String(p.id));
        layer._huleiLabel = e;
      }
    }).addTo(map);
    unitLayer.eachLayer(function (layer) {
      var path = layer.getElement && layer.getElement();
      if (path) {
        path.setAttribute("data-unit-id", String(layer.feature.properties.id));
        path.setAttribute("data-unit-name", layer.feature.properties.name);
      }
    });
    renderUnitList(body);
    if (fit && unitLayer.getLayers().length) map.fitBounds(unitLayer.getBounds(), { padding: [10, 10], animate: false });
    layoutLabels();
  }

  // A unit's name is drawn on the map only where it fits inside the unit's outline as seen on screen
  // and does not cover another name (largest units first); every name is always in the list beside.
  function layoutLabels() {
    if (!unitLayer || !map) return;
    var box = map.getContainer().getBoundingClientRect();
    var entries = [];
    unitLayer.eachLayer(function (layer) {
      if (!layer._huleiLabel) return;
      var b = layer.getBounds();
      var nw = map.latLngToContainerPoint(b.getNorthWest()), se = map.latLngToContainerPoint(b.getSouthEast());
      entries.push({ layer: layer, w: Math.abs(se.x - nw.x), h: Math.abs(se.y - nw.y) });
    });
    entries.sort(function (a, b) { return b.w * b.h - a.w * a.h; });
    // The map's own controls (zoom buttons, legend) are obstacles too: no name is drawn under them.
    var placed = Array.prototype.map.call(map.getContainer().querySelectorAll(".leaflet-control"), function (c) {
      return c.getBoundingClientRect();
    }).filter(function (r) { return r.width > 0; });
    entries.forEach(function (it) {
      var e = it.layer._huleiLabel;
      var r = e.getBoundingClientRect();
      var fits = r.width > 0 && r.width <= it.w && r.height <= it.h;
      var inside = r.left >= box.left && r.right <= box.right && r.top >= box.top && r.bottom <= box.bottom;
      var clash = placed.some(function (q) {
        return !(r.right <= q.left || r.left >= q.right || r.bottom <= q.top || r.top >= q.bottom);
      });
      if (fits && inside && !clash) { e.classList.remove("label-hidden"); placed.push(r); }
      else e.classList.add("label-hidden");
    });
    map.getContainer().setAttribute("data-labels-at-zoom", String(map.getZoom()));
  }

  function renderUnitList(body) {
    var list = $("#unit-list");
    list.innerHTML = "";
    body.features.filter(function (f) { return f.properties.kind === "unit"; }).forEach(function (f) {
      var p = f.properties;
      var li = el("li", { "data-unit-id": String(p.id), "data-unit-name": p.name });
      var chosen = state.selected && state.selected.id === p.id;
      var pick = el("button", { type: "button", "class": "unit-pick" + (chosen ? " selected" : "") });
      var name = el("span");
      var swatch = el("i", { "class": "swatch" });
      swatch.style.background = colour(p.percent);
      name.appendChild(swatch);
      name.appendChild(el("span", { "class": "user-text" }, p.name));
      pick.appendChild(name);
      pick.appendChild(el("span", { "class": "unit-pct" }, pct(p.percent)));
      pick.addEventListener("click", function () { selectUnit(p); });
      li.appendChild(pick);
      if (p.drill_down) {
        var down = el("button", { type: "button", "class": "unit-drill", "data-drill": String(p.id),
                                  "aria-label": t("drill") }, "›");
        down.title = t("drill");
        down.addEventListener("click", function () { drill(p.id); });
        li.appendChild(down);
      }
      list.appendChild(li);
    });
  }

  function selectUnit(p) {
    state.selected = p;
    var layer = null;
    if (unitLayer) {
      unitLayer.setStyle(function (f) {
        return { weight: f.properties.id === p.id ? 3 : 1, color: f.properties.id === p.id ? "#000" : "#333" };
      });
      unitLayer.eachLayer(function (l) { if (l.feature.properties.id === p.id) layer = l; });
    }
    if (layer && layer.bringToFront) layer.bringToFront();
    document.querySelectorAll("#unit-list .unit-pick").forEach(function (b) {
      b.classList.toggle("selected", b.parentNode.getAttribute("data-unit-id") === String(p.id));
    });
    showDetails(p);
    loadNotVisited();
  }

  // "12 (学校 3, 入户走访 9)": the period's mandatory reports, then each source's count, in the page's language.
  function reportSources(bySource) {
    if (!bySource) return "—";
    var keys = Object.keys(bySource), total = 0;
    keys.forEach(function (k) { total += bySource[k]; });
    if (!total) return "0";
    return total + " (" + keys.map(function (k) { var label = t("source_" + k); return (label === "source_" + k ? k : label) + " " + bySource[k]; }).join(", ") + ")";
  }

  function showDetails(p) {
    if (!p) return;
    $("#details-body").hidden = false;
    $("#d-name").textContent = p.name;
    var values = {
      households: p.households, visited: p.visited, percent: pct(p.percent),
      never_visited: p.never_visited, mismatch_visits: p.mismatch_visits, high_risk_children: p.high_risk_children,
      overdue_followups: p.overdue_followups === null ? "—" : p.overdue_followups,
      problems_open: p.problems_open, problems_overdue: p.problems_overdue, referrals_overdue: p.referrals.overdue,
      cases_open: p.cases ? p.cases.open + p.cases.active : "—", cases_closed: p.cases ? p.cases.closed : "—",
      services_overdue: p.services ? p.services.overdue : "—", reports_in_period: reportSources(p.reports_by_source)
    };
    Object.keys(values).forEach(function (k) {
      var cell = document.querySelector('#details-body [data-field="' + k + '"]');
      if (cell) cell.textContent = String(values[k]);
    });
    $("#counting-row").hidden = !p.counting;
    $('#details-body [data-field="counting"]').textContent = p.counting ? t("counting_" + p.counting) : "";
    $("#details-body").setAttribute("data-unit-id", String(p.id));
    $("#drill").hidden = !p.drill_down;
  }

  function drill(unitId) {
    state.stack.push(unitId);
    state.selected = null;
    $("#details-body").hidden = true;
    loadUnit();
  }
  $("#drill").addEventListener("click", function () { if (state.selected) drill(state.selected.id); });
  $("#up").addEventListener("click", function () {
    if (state.stack.length > 1) { state.stack.pop(); state.selected = null; $("#details-body").hidden = true; loadUnit(); }
  });
  $("#period-kind").addEventListener("change", function () {
    $("#month").hidden = $("#period-kind").value !== "month";
    if ($("#period-kind").value === "phase") loadUnit();
  });
  $("#month").addEventListener("change", function () { loadUnit(); });

  // ------------------------------------------------------------------ panels
  function panel(id) { return document.querySelector("#" + id + " .panel-body"); }
  function fill(id, nodes, note) {
    var body = panel(id);
    body.innerHTML = "";
    if (note) body.appendChild(note);
    if (!nodes.length) { body.appendChild(el("p", { "class": "hint" }, t("none"))); return; }
    var ul = el("ul");
    nodes.forEach(function (n) { ul.appendChild(n); });
    body.appendChild(ul);
  }
  function unavailable(id, status) {
    var body = panel(id);
    body.innerHTML = "";
    var msg = status === 403 ? t("forbidden") : t("unavailable");
    body.appendChild(el("p", { "class": "unavailable", "data-unavailable": "true", "data-status": String(status) },
                        msg + (status ? " (" + status + ")" : "")));
  }
  var panelRequests = {};
  function getJSON(id, url, render) {
    // Only the latest request of a panel may fill it (a slower, older answer is dropped).
    var ticket = (panelRequests[id] || 0) + 1;
    panelRequests[id] = ticket;
    var body = panel(id);
    body.textContent = t("loading");
    body.parentNode.removeAttribute("data-unit-id");
    var unit = currentUnit();
    var current = function () { return panelRequests[id] === ticket; };
    api(url).then(function (resp) {
      if (!current()) return null;
      if (!resp.ok) { unavailable(id, resp.status); return null; }
      return resp.json().then(function (data) {
        if (!current()) return null;
        return Promise.resolve(render(data, current)).then(function () {
          if (current()) body.parentNode.setAttribute("data-unit-id", String(unit));
        });
      });
    }).catch(function () { if (current()) unavailable(id, 0); });
  }

  function loadNotVisited() {
    var unitId = state.selected ? state.selected.id : currentUnit();
    var params = periodParams();
    params.set("unit_id", unitId);
    params.set("limit", "20");
    getJSON("panel-not-visited", API + "/coverage/not-visited?" + params.toString(), function (page) {
      var rows = page.items.map(function (h) {
        return line("li", {}, [{ user: h.grid_name }, " · ", { user: h.address },
                               h.head_name_masked ? " · " : "", h.head_name_masked ? { user: h.head_name_masked } : ""]);
      });
      if (page.next_cursor) rows.push(el("li", { "class": "hint", "data-i18n": "more" }, t("more")));
      fill("panel-not-visited", rows);
    });
  }

  // China dates (Asia/Shanghai, UTC+8, no DST) whatever the browser's zone: the server's answer in
  // /dashboard/config (its clock also decides which reports are late), else the UTC instant + 8 h read
  // with UTC getters. Never the browser's local Date getters nor toISOString of a local date.
  var CHINA_OFFSET_MS = 8 * 3600 * 1000;
  function isoDay(d) { return d.toISOString().slice(0, 10); }
  function chinaDates() {
    var c = state.config;
    if (c && c.china_today && c.next_monday && c.report_month) {
      return { today: c.china_today, nextMonday: c.next_monday, reportMonth: c.report_month };
    }
    var china = new Date(Date.now() + CHINA_OFFSET_MS);  // read only with getUTC*
    var today = new Date(Date.UTC(china.getUTCFullYear(), china.getUTCMonth(), china.getUTCDate()));
    var monday = new Date(today.getTime() + (7 - (today.getUTCDay() + 6) % 7) * 86400000);
    // Without the server's answer, the month under the default due rule (seed 002: a month's report is
    // due by the 17th of that month), i.e. the current China month.
    return { today: isoDay(today), nextMonday: isoDay(monday), reportMonth: isoDay(today).slice(0, 7) };
  }
  // An instant from the API as China date and time ("2026-06-01 07:30").
  function chinaTime(iso) {
    if (!iso) return "";
    var d = new Date(new Date(iso).getTime() + CHINA_OFFSET_MS);
    return isNaN(d.getTime()) ? String(iso) : d.toISOString().slice(0, 16).replace("T", " ");
  }

  // Planner labels are "Mon-1" (the weekday in English, then the team's number that day).
  var WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  function teamLabel(label) {
    var m = /^([A-Z][a-z]{2})-(\d+)$/.exec(label || "");
    if (!m || WEEKDAYS.indexOf(m[1]) < 0) return label;
    return t("team_label").replace("{day}", t("weekday_" + m[1])).replace("{n}", m[2]);
  }
  function periodLabel(body) {
    if (!body || !body.period) return "";
    return state.locale === "en" ? body.period.label_en : body.period.label_zh;
  }
  var RISK_CODES = { "低风险": "low", "一般风险": "general", "较大风险": "major", "重大风险": "severe" };
  function riskLabel(level) { return level ? t("risk_" + (RISK_CODES[level] || level)) : t("on_ledger"); }

  // Re-read the server's China dates before the panels (the page may stay open past midnight).
  function refreshConfig() {
    // The report month follows the due rule of the shown unit's campaign (a county may have its own).
    var unit = state.stack && state.stack.length ? "?unit_id=" + encodeURIComponent(currentUnit()) : "";
    return fetch(API + "/dashboard/config" + unit).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (cfg) { if (cfg) state.config = cfg; }).catch(function () { /* keep the last answer */ });
  }

  function loadPanels() { refreshConfig().then(fillPanels); }

  // A table of counts; each row may carry a button that opens its list.
  function countTable(id, rows) {
    var body = panel(id);
    body.innerHTML = "";
    var table = el("table");
    rows.forEach(function (r) {
      var tr = el("tr", { "data-count": r.key });
      tr.appendChild(el("th", {}, t(r.label)));
      tr.appendChild(el("td", {}, r.value === null || r.value === undefined ? "—" : r.value));
      table.appendChild(tr);
    });
    body.appendChild(table);
    return body;
  }
  function listButton(body, kind, label) {
    var b = el("button", { type: "button", "class": "open-list", "data-list": kind }, t(label));
    b.addEventListener("click", function () { openList(kind); });
    body.appendChild(b);
  }

  function fillPanels() {
    var dates = chinaDates();
    var unit = currentUnit();
    var totals = (state.lastCollection && state.lastCollection.unit.id === unit && state.lastCollection.totals) || null;
    var uq = "unit_id=" + encodeURIComponent(unit);

    // Review of field work: the counts of each state, the queue one click away.
    getJSON("panel-review", API + "/reviews/summary?" + uq, function (s) {
      var body = countTable("panel-review", REVIEW_STATES.map(function (k) {
        return { key: k, label: "review_" + k, value: s[k] };
      }));
      listButton(body, "review", "open_review_queue");
    });

    // Cases (个案) of the unit: the coverage answer's counts; the list from the cases API.
    if (totals) {
      var cbody = countTable("panel-cases", [
        { key: "open", label: "cases_new", value: totals.cases.open },
        { key: "active", label: "cases_active", value: totals.cases.active },
        { key: "opened", label: "cases_opened", value: totals.cases.opened },
        { key: "closed", label: "cases_closed", value: totals.cases.closed }
      ]);
      document.getElementById("panel-cases").setAttribute("data-unit-id", String(unit));
      listButton(cbody, "cases", "open_cases_list");
      var obody = countTable("panel-overdue", [
        { key: "problems_overdue", label: "problems_overdue", value: totals.problems_overdue },
        { key: "referrals_overdue", label: "referrals_overdue", value: totals.referrals.overdue },
        { key: "services_overdue", label: "services_overdue", value: totals.services.overdue },
        { key: "overdue_followups", label: "overdue_followups", value: totals.overdue_followups }
      ]);
      document.getElementById("panel-overdue").setAttribute("data-unit-id", String(unit));
      listButton(obody, "overdue", "open_overdue_list");
    }

    getJSON("panel-helpers", HELPERS_API + "?limit=20&" + uq, function (page) {
      var rows = page.items.map(function (c) {
        return line("li", { "data-child-id": c.child_id, "class": c.risk_level === "重大风险" ? "state-late" : "" },
          [{ user: c.unit_name }, " · ", c.name_masked ? { user: c.name_masked } : "#" + c.child_id, " · ",
           riskLabel(c.risk_level), c.pending ? " · " + t("helper_pending") : ""]);
      });
      if (page.next_cursor) rows.push(el("li", { "class": "hint", "data-i18n": "more" }, t("more")));
      fill("panel-helpers", rows);
    });
    getJSON("panel-referrals", API + "/referrals?include_direct_reports=true", function (rows) {
      return within(items(rows).filter(function (r) { return r.status !== "handled"; }), "org_unit_id", unit)
        .then(function (open) {
          fill("panel-referrals", open.slice(0, 20).map(function (r) {
            return el("li", { "class": r.overdue ? "state-late" : "", "data-record-id": String(r.id) },
              "#" + r.id + " · " + t("status_" + r.status) + (r.overdue ? " · " + t("overdue") : ""));
          }));
        });
    });
    fillSchedule(dates.nextMonday, unit);
    fillActivities(unit, uq, dates);
    fillAwareness(unit, uq, dates);
    var month = $("#period-kind").value === "month" && $("#month").value ? $("#month").value : dates.reportMonth;
    getJSON("panel-reports", API + "/reports/monthly/status?month=" + month + "&" + uq, function (rows) {
      fill("panel-reports", items(rows).map(function (r) {
        return line("li", { "class": "state-" + r.state, "data-state": r.state, "data-unit-id": String(r.unit_id) },
          [{ user: r.unit_name }, " · " + reportState(r.state) + " (" + month + ", " + t("due") + " " + r.due_date + ")"]);
      }));
    });
  }
  // ------------------------------------------------------------------ prevention and awareness (issue 18)
  // The dates the page counts over: the month chosen, else the period of the coverage answer (the
  // campaign's phase), else the China year so far.
  function periodRange(dates) {
    var month = $("#period-kind").value === "month" ? $("#month").value : "";
    if (month) {
      var parts = month.split("-"), y = Number(parts[0]), m = Number(parts[1]);
      var last = new Date(Date.UTC(y, m, 0)).getUTCDate();
      return { from: month + "-01", to: month + "-" + (last < 10 ? "0" : "") + last, survey: month };
    }
    var p = state.lastCollection && state.lastCollection.period;
    if (p && p.start_date && p.end_date) return { from: p.start_date, to: p.end_date, survey: p.start_date.slice(0, 4) };
    var year = dates.today.slice(0, 4);
    return { from: year + "-01-01", to: dates.today, survey: year };
  }
  function share(value) { return value === null || value === undefined ? "—" : pct(value * 100); }
  function rowsList(rows) {
    var ul = el("ul", { "class": "panel-rows" });
    rows.forEach(function (r) { ul.appendChild(r); });
    return ul;
  }

  // 宣传教育: the unit's activities and audience in the period, the schools and villages reached, and each
  // child unit's (a child unit without any activity is marked).
  function fillActivities(unit, uq, dates) {
    var range = periodRange(dates);
    var url = API + "/prevention/coverage?" + uq + "&date_from=" + range.from + "&date_to=" + range.to;
    getJSON("panel-activities", url, function (c) {
      var n = c.totals || {}, audience = n.audience || {};
      var body = countTable("panel-activities", [
        { key: "activities", label: "activities_held", value: n.activities },
        { key: "audience", label: "activities_audience", value: audience.total },
        { key: "schools_reached", label: "schools_reached", value: n.schools_reached + " / " + n.schools },
        { key: "villages_reached", label: "villages_reached", value: n.villages_reached + " / " + n.villages }
      ]);
      body.parentNode.setAttribute("data-date-from", range.from);
      body.parentNode.setAttribute("data-date-to", range.to);
      var rows = (c.children || []).map(function (k) {
        return line("li", { "data-unit-id": String(k.unit_id), "data-activities": String(k.activities),
                            "class": k.activities ? "" : "state-late" },
          [{ user: k.name }, " · " + fmt("activities_child", { n: k.activities, reached: k.schools_reached,
                                                                schools: k.schools })]);
      });
      if (rows.length) body.appendChild(rowsList(rows));
    });
  }

  // 知晓率: the rate of the unit against the target (seed 003: 100 %), each child unit's, and the schools
  // with no survey in the period.
  function fillAwareness(unit, uq, dates) {
    var range = periodRange(dates);
    getJSON("panel-awareness", API + "/awareness/rates?" + uq + "&period=" + range.survey, function (r) {
      var n = r.totals || {};
      var body = countTable("panel-awareness", [
        { key: "rate", label: "awareness_rate", value: share(n.rate) },
        { key: "target", label: "awareness_target", value: share(r.target) },
        { key: "participation", label: "awareness_participation", value: share(n.participation) },
        { key: "knowing", label: "awareness_knowing", value: n.knowing + " / " + n.responses },
        { key: "schools_surveyed", label: "schools_surveyed", value: n.schools_surveyed + " / " + n.schools },
        { key: "schools_without_survey", label: "schools_without_survey", value: n.schools_without_survey }
      ]);
      var section = body.parentNode;
      section.setAttribute("data-period", r.period);
      var rateRow = body.querySelector('tr[data-count="rate"]');
      // Met means the API's verdict: the rate, every school surveyed and enough of each school answering.
      if (rateRow && n.rate !== null && n.rate !== undefined && !n.meets_target) rateRow.className = "state-late";
      body.insertBefore(el("p", { "class": "hint" }, fmt("awareness_period", { p: r.period })), body.firstChild);
      var rows = (r.units || []).filter(function (u) { return u.schools > 0; }).map(function (u) {
        var below = u.rate === null || !u.meets_target;
        return line("li", { "data-unit-id": String(u.unit_id), "data-rate": u.rate === null ? "" : String(u.rate),
                            "class": below ? "state-late" : "state-approved" },
          [u.own_level ? t("own_level") : { user: u.name }, " · " + (u.rate === null ? t("no_survey") :
            fmt("awareness_child", { rate: share(u.rate), knowing: u.knowing, responses: u.responses }))]);
      });
      if (rows.length) body.appendChild(rowsList(rows));
      var missing = r.schools_without_survey || [];
      if (missing.length) {
        body.appendChild(el("p", { "class": "hint" }, t("schools_without_survey")));
        var shown = missing.slice(0, 10).map(function (s) {
          return line("li", { "data-institution-id": String(s.institution_id), "class": "no-survey" }, [{ user: s.name }]);
        });
        if (missing.length > 10) shown.push(el("li", { "class": "hint" }, t("more")));
        body.appendChild(rowsList(shown));
      }
    });
  }

  function reportState(s) { var label = t("state_" + s); return label === "state_" + s ? t("state_unknown") : label; }

  // Next week's plan of the unit shown: its own plan, else the plan of the nearest unit above it that
  // has one, keeping the teams working in the unit shown (a team's area is the unit or under it).
  function fillSchedule(monday, unit) {
    var id = "panel-schedule";
    var ticket = (panelRequests[id] || 0) + 1;
    panelRequests[id] = ticket;
    var current = function () { return panelRequests[id] === ticket; };
    var section = document.getElementById(id);
    section.removeAttribute("data-unit-id");
    panel(id).textContent = t("loading");
    var ancestors = state.stack.slice().reverse();  // the unit shown first, then up to the user's own unit
    function tryLevel(i) {
      if (i >= ancestors.length) { return Promise.resolve(null); }
      return api(API + "/schedules?org_unit_id=" + ancestors[i]).then(function (r) {
        if (!r.ok) return { status: r.status };
        return r.json().then(function (plans) {
          var plan = items(plans).filter(function (p) { return p.week_start_date === monday; })[0];
          return plan ? { plan: plan, owner: ancestors[i] } : tryLevel(i + 1);
        });
      });
    }
    tryLevel(0).then(function (found) {
      if (!current()) return null;
      if (found && found.status) { unavailable(id, found.status); return null; }
      if (!found) {
        fill(id, [el("li", { "class": "hint" }, t("no_plan") + " (" + monday + ")")]);
        section.setAttribute("data-unit-id", String(unit));
        return null;
      }
      return api(API + "/schedules/" + found.plan.id).then(function (r) { return r.json(); }).then(function (full) {
        var teams = full.teams || [];
        var keep = found.owner === unit ? Promise.resolve(teams) : within(teams, "area_unit_id", unit);
        return keep.then(function (shown) {
          if (!current()) return;
          var note = null;
          if (found.owner !== unit) {
            note = el("p", { "class": "hint", "data-plan-owner": String(found.owner) }, t("plan_of_unit_above"));
          }
          if (!shown.length && found.owner !== unit) {
            fill(id, [el("li", { "class": "hint" }, t("no_team_here") + " (" + monday + ")")], note);
          } else {
            fill(id, shown.map(function (team) {
              return el("li", { "data-team": team.label, "data-team-id": String(team.id) },
                team.day_date + " · " + teamLabel(team.label) + " · " +
                t("venues_count").replace("{n}", String((team.visits || []).length)));
            }), note);
          }
          section.setAttribute("data-unit-id", String(unit));
        });
      });
    }).catch(function () { if (current()) unavailable(id, 0); });
  }

  // ------------------------------------------------------------------ list view
  var REVIEW_STATES = ["pending_flagged", "has_issues", "amended_waiting", "rejected", "approved"];
  function closeList() {
    state.openList = null;
    $("#list-view").hidden = true;
    $("#list-view").removeAttribute("data-list");
    $("#list-view").removeAttribute("data-unit-id");
  }
  $("#list-close").addEventListener("click", closeList);

  function recordLine(kind, id, parts, attrs) {
    var a = Object.assign({ "data-record-kind": kind, "data-record-id": String(id) }, attrs || {});
    return line("li", a, [t("record_" + kind) + " #" + id].concat(parts));
  }
  function showList(kind, unit, rows, ticket) {
    if (listTicket !== ticket) return;
    var ul = $("#list-items");
    ul.innerHTML = "";
    if (!rows.length) ul.appendChild(el("li", { "class": "hint" }, t("none")));
    rows.forEach(function (r) { ul.appendChild(r); });
    $("#list-view").setAttribute("data-unit-id", String(unit));
  }
  function listFailed(status, ticket) {
    if (listTicket !== ticket) return;
    var ul = $("#list-items");
    ul.innerHTML = "";
    ul.appendChild(el("li", { "class": "unavailable", "data-unavailable": "true" },
                      (status === 403 ? t("forbidden") : t("unavailable")) + (status ? " (" + status + ")" : "")));
  }
  var listTicket = 0;
  function fetchRows(url) {
    return api(url).then(function (r) {
      if (!r.ok) { var e = new Error("http"); e.status = r.status; throw e; }
      return r.json();
    }).then(items);
  }
  function openList(kind) {
    var unit = currentUnit();
    var ticket = ++listTicket;
    state.openList = kind;
    var view = $("#list-view");
    view.hidden = false;
    view.setAttribute("data-list", kind);
    view.removeAttribute("data-unit-id");
    $("#list-title").textContent = t("list_" + kind);
    $("#list-unit").textContent = "";
    $("#list-unit").appendChild(el("span", { "class": "user-text" }, state.lastCollection ? state.lastCollection.unit.name : ""));
    $("#list-items").textContent = t("loading");
    var work;
    if (kind === "review") {
      work = fetchRows(API + "/reviews/queue?unit_id=" + unit).then(function (rows) {
        return rows.map(function (q) {
          var flags = (q.flags || []).map(function (f) { var l = t("flag_" + f); return l === "flag_" + f ? f : l; });
          return recordLine(q.record_kind, q.record_id, [
            // An answer waiting for a re-check (an inspector's note on has_issues, or an amendment) reads
            // as such, the way the review panel counts it.
            " · " + t(q.answer_note || q.answers_review_id ? "review_amended_waiting" : "review_" + q.review_state),
            flags.length ? " · " + flags.join(", ") : "",
            q.recorded_at ? " · " + chinaTime(q.recorded_at) : "",
            q.comment ? " · " : "", q.comment ? { user: q.comment } : ""
          ], { "data-review-state": q.review_state });
        });
      });
    } else if (kind === "cases") {
      work = fetchRows(API + "/cases?limit=200").then(function (rows) {
        return within(rows.filter(function (c) { return c.status !== "closed"; }), "org_unit_id", unit);
      }).then(function (rows) {
        return rows.map(function (c) {
          return recordLine("case", c.id, [" · " + t("case_" + c.status) + " · " + t("opened_at") + " " +
                                            chinaTime(c.opened_at).slice(0, 10)], { "data-status": c.status });
        });
      });
    } else {
      var problems = fetchRows(API + "/problems/overdue?org_unit_id=" + unit).then(function (rows) {
        return rows.map(function (p) {
          return recordLine("problem", p.id, [" · ", p.venue_name ? { user: p.venue_name } : "", " · " + t("deadline") +
                                               " " + p.deadline_date]);
        });
      });
      var referrals = fetchRows(API + "/referrals?include_direct_reports=true").then(function (rows) {
        return within(rows.filter(function (r) { return r.overdue; }), "org_unit_id", unit);
      }).then(function (rows) {
        return rows.map(function (r) {
          return recordLine("referral", r.id, [" · " + t("status_" + r.status) + " · " + t("overdue")]);
        });
      });
      work = Promise.all([problems, referrals]).then(function (parts) { return parts[0].concat(parts[1]); });
    }
    work.then(function (rows) { showList(kind, unit, rows, ticket); })
      .catch(function (e) { listFailed(e && e.status ? e.status : 0, ticket); });
  }

  // ------------------------------------------------------------------ start
  applyLocale();
  fetch(API + "/dashboard/config").then(function (r) { return r.json(); }).then(function (cfg) {
    state.config = cfg;
    if (!localStorage.getItem("hulei.locale")) { state.locale = cfg.default_locale || "zh-CN"; applyLocale(); }
  }).catch(function () { /* no base layer */ }).finally(function () {
    document.body.setAttribute("data-ready", "true");
    if (state.token && state.user) showApp();
  });
})();
