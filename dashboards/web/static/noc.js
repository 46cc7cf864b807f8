// The NOC screen: one page of monitors from the server (search, filters, grouping, pagination happen there),
// kept live by server-sent events. Plain JavaScript, shipped with the package.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const state = { page: 1, pages: 1, tiles: new Map(), counts: {} };

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function params() {
    const p = new URLSearchParams({ q: $("q").value, state: $("state").value, group: $("group").value,
                                    page: String(state.page), per_page: "200" });
    return p.toString();
  }

  function renderCounts() {
    const box = $("counts");
    box.replaceChildren();
    for (const [s, n] of Object.entries(state.counts)) {
      const span = el("span", { "data-state": s });
      span.append(el("b", { class: "st st-" + s }, s), document.createTextNode(" " + n));
      box.append(span);
    }
  }

  function tile(m) {
    const t = el("div", { class: "tile " + m.state, "data-id": String(m.id), "data-state": m.state,
                          title: m.target });
    const name = el("a", { class: "monitor-link", href: "/monitors/" + m.id });
    name.append(el("b", {}, m.name));
    t.append(name, el("br"), el("span", { class: "muted" },
             [m.kind, m.customer, m.switch].filter(Boolean).join(" · ")));
    state.tiles.set(m.id, t);
    return t;
  }

  async function load() {
    const resp = await fetch("/api/v1/noc/monitors?" + params(), { headers: { Accept: "application/json" } });
    if (!resp.ok) { $("monitors").textContent = "error " + resp.status; return; }
    const data = await resp.json();
    state.page = data.page; state.pages = data.pages; state.counts = data.counts;
    state.tiles.clear();
    const root = $("monitors");
    root.replaceChildren();
    for (const g of data.groups) {
      const sec = el("div", { class: "group" });
      if ($("group").value !== "none") sec.append(el("h3", {}, g.key || "—"));
      const grid = el("div", { class: "grid" });
      for (const m of g.items) grid.append(tile(m));
      sec.append(grid);
      root.append(sec);
    }
    $("pageinfo").textContent = ` page ${data.page} / ${data.pages} (${data.total}) `;
    renderCounts();
  }

  function applyChanges(changes) {
    for (const c of changes) {
      const t = state.tiles.get(c.id);
      if (!t) continue;
      const old = t.dataset.state;
      if (old === c.state) continue;
      t.classList.remove(old); t.classList.add(c.state); t.dataset.state = c.state;
      state.counts[old] = Math.max(0, (state.counts[old] || 0) - 1);
      state.counts[c.state] = (state.counts[c.state] || 0) + 1;
    }
    renderCounts();
  }

  function connect() {
    const es = new EventSource("/api/v1/noc/events");
    es.addEventListener("open", () => { $("live").textContent = "live"; });
    es.addEventListener("state", (ev) => applyChanges(JSON.parse(ev.data)));
    es.addEventListener("error", () => { $("live").textContent = "reconnecting…"; });
  }

  async function post(url, body) {
    const resp = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json",
                                    "X-CSRF-Token": csrf }, body: JSON.stringify(body || {}) });
    if (!resp.ok) alert("failed: " + resp.status);
    loadSide();
  }

  let me = null;
  async function loadSide() {
    if (me === null) {
      const who = await fetch("/api/v1/me");
      me = who.ok ? await who.json() : {};
    }
    const inc = await fetch("/api/v1/incidents");
    if (inc.ok) renderIncidents(await inc.json());
    const tk = await fetch("/api/v1/noc/tickets");
    if (tk.ok) renderTickets(await tk.json());
  }

  function renderIncidents(list) {
    const box = $("incidents");
    box.replaceChildren();
    if (!list.length) { box.textContent = "none"; return; }
    for (const i of list) {
      const row = el("div", { class: "card incident", "data-id": String(i.id) });
      row.append(el("b", { class: "st st-" + (i.severity === "urgent" ? "DOWN" : "DEGRADED") }, i.severity),
                 document.createTextNode(" "), el("a", { class: "open-incident", href: "/incidents/" + i.id }, i.title),
                 document.createTextNode(" "),
                 el("span", { class: "muted status" }, i.status + (i.assigned_to ? " → user " + i.assigned_to : "")));
      // The incidents package's own API does the work; this screen only calls it.
      const ack = el("button", { class: "ack" }, "ack");
      ack.onclick = () => post(`/api/v1/incidents/${i.id}/acknowledge`);
      const mine = el("button", { class: "assign" }, "assign to me");
      mine.onclick = () => post(`/api/v1/incidents/${i.id}/assign`, { user_id: me.user_id });
      const res = el("button", { class: "resolve" }, "resolve");
      res.onclick = () => post(`/api/v1/incidents/${i.id}/resolve`, { text: "resolved from the NOC screen" });
      row.append(el("br"), ack, mine, res);
      box.append(row);
    }
  }

  function renderTickets(list) {
    const box = $("tickets");
    box.replaceChildren();
    if (!list.length) { box.textContent = "empty"; return; }
    const table = el("table");
    for (const t of list) {
      const tr = el("tr", { class: t.overdue ? "overdue" : "" });
      tr.append(el("td", {}, "#" + t.id), el("td", {}, t.priority), el("td", {}, t.subject),
                el("td", {}, t.first_response_due_label));
      table.append(tr);
    }
    box.append(table);
  }

  let timer = null;
  function reload() { clearTimeout(timer); timer = setTimeout(() => { state.page = 1; load(); }, 200); }
  $("q").addEventListener("input", reload);
  $("state").addEventListener("change", reload);
  $("group").addEventListener("change", reload);
  $("prev").addEventListener("click", () => { if (state.page > 1) { state.page--; load(); } });
  $("next").addEventListener("click", () => { if (state.page < state.pages) { state.page++; load(); } });
  load().then(connect);
  loadSide();
  setInterval(loadSide, 15000);
})();
