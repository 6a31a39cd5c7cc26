/* Hulei coordinator dashboard: coverage map with drill-down and work panels. No CDN, no framework. */
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
    lastCollection: null
  };
  var map = null, unitLayer = null, pointLayer = null, labels = null;

  function t(key) { return (window.HuleiI18n[state.locale] || {})[key] || window.HuleiI18n["zh-CN"][key] || key; }
  function $(sel) { return document.querySelector(sel); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function gcj() { return !!(state.config.base_layer && state.config.base_layer.gcj02); }

  function applyLocale() {
    document.documentElement.lang = state.locale;
    document.querySelectorAll("[data-i18n]").forEach(function (n) { n.textContent = t(n.getAttribute("data-i18n")); });
    $("#lang").textContent = t("lang_switch");
    document.title = t("title");
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

  // ------------------------------------------------------------------ login
  function showApp() {
    $("#login-view").hidden = true;
    $("#app-view").hidden = false;
    $("#logout").hidden = false;
    $("#who").textContent = state.user ? state.user.display_name : "";
    initMap();
    state.stack = [state.user.org_unit_id];
    loadUnit();
    loadPanels();
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
    if (state.token && map) { renderCollection(state.lastCollection); showDetails(state.selected); loadPanels(); }
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
    map = L.map("map", { zoomControl: true, attributionControl: true, doubleClickZoom: false });
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
    var unitId = state.stack[state.stack.length - 1];
    var params = periodParams();
    params.set("unit_id", unitId);
    params.set("zoom", String(Math.max(zoomForRequest(), 12)));
    api(API + "/coverage?" + params.toString()).then(function (resp) { return resp.json(); }).then(function (body) {
      if (!body.features) return;
      state.lastCollection = body;
      $("#period-label").textContent = periodLabel(body);
      $("#breadcrumb").textContent = body.unit.name;
      $("#up").disabled = state.stack.length <= 1;
      renderCollection(body, true);
      map.getContainer().setAttribute("data-loaded-unit", String(body.unit.id));
      loadNotVisited();
    });
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
        return { color: "#333", weight: 1, fillColor: colour(f.properties.percent), fillOpacity: 0.65 };
      },
      onEachFeature: function (f, layer) {
        var p = f.properties;
        layer.on("click", function () { selectUnit(p, layer); });
        layer.on("dblclick", function () { if (p.drill_down) drill(p.id); });
        var pct = p.percent === null ? "—" : p.percent.toFixed(1) + "%";
        L.marker(layer.getBounds().getCenter(), {
          interactive: false,
          icon: L.divIcon({ className: "unit-label", html: "", iconSize: null })
        }).addTo(labels).getElement().textContent = p.name + " " + pct;
      }
    }).addTo(map);
    unitLayer.eachLayer(function (layer) {
      var path = layer.getElement && layer.getElement();
      if (path) {
        path.setAttribute("data-unit-id", String(layer.feature.properties.id));
        path.setAttribute("data-unit-name", layer.feature.properties.name);
      }
    });
    if (fit && unitLayer.getLayers().length) map.fitBounds(unitLayer.getBounds(), { padding: [10, 10] });
  }

  function selectUnit(p, layer) {
    state.selected = p;
    if (unitLayer) unitLayer.setStyle(function (f) {
      return { weight: f.properties.id === p.id ? 3 : 1, color: f.properties.id === p.id ? "#000" : "#333" };
    });
    if (layer && layer.bringToFront) layer.bringToFront();
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
      households: p.households, visited: p.visited, percent: p.percent === null ? "—" : p.percent.toFixed(1) + "%",
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
  $("#month").addEventListener("change", function () { loadUnit(); loadPanels(); });

  // ------------------------------------------------------------------ panels
  function panel(id) { return document.querySelector("#" + id + " .panel-body"); }
  function fill(id, nodes) {
    var body = panel(id);
    body.innerHTML = "";
    if (!nodes.length) { body.appendChild(el("p", { "class": "hint" }, t("none"))); return; }
    var ul = el("ul");
    nodes.forEach(function (n) { ul.appendChild(n); });
    body.appendChild(ul);
  }
  function unavailable(id, status) {
    var body = panel(id);
    body.innerHTML = "";
    var msg = status === 403 ? t("forbidden") : t("unavailable");
    body.appendChild(el("p", { "class": "unavailable", "data-unavailable": "true" }, msg + " (HTTP " + status + ")"));
  }
  var panelRequests = {};
  function getJSON(id, url, render) {
    // Only the latest request of a panel may fill it (a slower, older answer is dropped).
    var ticket = (panelRequests[id] || 0) + 1;
    panelRequests[id] = ticket;
    panel(id).textContent = t("loading");
    api(url).then(function (resp) {
      if (panelRequests[id] !== ticket) return null;
      if (!resp.ok) { unavailable(id, resp.status); return null; }
      return resp.json().then(function (body) { if (panelRequests[id] === ticket) render(body); });
    }).catch(function () { if (panelRequests[id] === ticket) unavailable(id, 0); });
  }

  function loadNotVisited() {
    var unitId = state.selected ? state.selected.id : state.stack[state.stack.length - 1];
    var params = periodParams();
    params.set("unit_id", unitId);
    params.set("limit", "20");
    getJSON("panel-not-visited", API + "/coverage/not-visited?" + params.toString(), function (page) {
      var items = page.items.map(function (h) {
        return el("li", {}, h.grid_name + " · " + h.address + (h.head_name_masked ? " · " + h.head_name_masked : ""));
      });
      if (page.next_cursor) items.push(el("li", { "class": "hint" }, t("more")));
      fill("panel-not-visited", items);
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
    var prev = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 1, 1));
    return { today: isoDay(today), nextMonday: isoDay(monday), reportMonth: isoDay(prev).slice(0, 7) };
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

  // Re-read the server's China dates before the panels (the page may stay open past midnight).
  function refreshConfig() {
    return fetch(API + "/dashboard/config").then(function (r) { return r.ok ? r.json() : null; })
      .then(function (cfg) { if (cfg) state.config = cfg; }).catch(function () { /* keep the last answer */ });
  }

  function loadPanels() { refreshConfig().then(fillPanels); }

  function fillPanels() {
    var dates = chinaDates();
    getJSON("panel-helpers", HELPERS_API + "?limit=20", function (page) {
      var items = page.items.map(function (c) {
        var level = c.risk_level || t("on_ledger");
        return el("li", { "data-child-id": c.child_id, "class": c.risk_level === "重大风险" ? "state-late" : "" },
          c.unit_name + " · " + (c.name_masked || ("#" + c.child_id)) + " · " + level +
          (c.pending ? " · " + t("helper_pending") : ""));
      });
      if (page.next_cursor) items.push(el("li", { "class": "hint" }, t("more")));
      fill("panel-helpers", items);
    });
    getJSON("panel-problems", API + "/problems/overdue?limit=20", function (rows) {
      fill("panel-problems", rows.map(function (p) {
        return el("li", {}, (p.venue_name || ("#" + p.venue_id)) + " · " + p.description + " · " + t("deadline") + " " +
          p.deadline_date);
      }));
    });
    getJSON("panel-referrals", API + "/referrals?include_direct_reports=true", function (rows) {
      var open = rows.filter(function (r) { return r.status !== "handled"; });
      fill("panel-referrals", open.slice(0, 20).map(function (r) {
        return el("li", { "class": r.overdue ? "state-late" : "" }, "#" + r.id + " · " + t("status_" + r.status) +
          (r.overdue ? " · " + t("overdue") : ""));
      }));
    });
    getJSON("panel-schedule", API + "/schedules?org_unit_id=" + state.user.org_unit_id, function (plans) {
      var monday = dates.nextMonday;
      var plan = plans.filter(function (p) { return p.week_start_date === monday; })[0];
      if (!plan) { fill("panel-schedule", [el("li", { "class": "hint" }, t("no_plan") + " (" + monday + ")")]); return; }
      api(API + "/schedules/" + plan.id).then(function (r) { return r.json(); }).then(function (full) {
        fill("panel-schedule", (full.teams || []).map(function (team) {
          return el("li", { "data-team": team.label }, team.day_date + " · " + teamLabel(team.label) + " · " +
            t("venues_count").replace("{n}", String((team.visits || []).length)));
        }));
      });
    });
    var month = $("#period-kind").value === "month" && $("#month").value ? $("#month").value : dates.reportMonth;
    getJSON("panel-reports", API + "/reports/monthly/status?month=" + month + "&unit_id=" + state.user.org_unit_id,
      function (rows) {
        fill("panel-reports", rows.map(function (r) {
          return el("li", { "class": "state-" + r.state, "data-state": r.state },
            r.unit_name + " · " + t("state_" + r.state) + " (" + month + ", " + t("due") + " " + r.due_date + ")");
        }));
      });
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
