// The NOC wall screen. The server renders the whole wall (it works without JavaScript: the search is a form);
// here the wall is kept live: a state change on the event stream fetches the wall's fragment (/noc/wall, the
// same template) and swaps it in, the search box filters as one types, and the incident cards' buttons call
// the incidents package's own API. Plain JavaScript, shipped with the package.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const wall = $("wall");
  const form = $("noc-filter");
  const live = $("live");
  let query = wall.dataset.query || "";
  let inFlight = false, again = false;

  // One fetch at a time; changes that arrive meanwhile cost one more fetch, not one each.
  async function refresh() {
    if (inFlight) { again = true; return; }
    inFlight = true;
    try {
      const resp = await fetch("/noc/wall" + (query ? "?" + query : ""), { headers: { Accept: "text/html" } });
      if (resp.ok) { wall.innerHTML = await resp.text(); bind(); loadTickets(); }
    } finally {
      inFlight = false;
      if (again) { again = false; refresh(); }
    }
  }

  function formQuery() {
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v && !(k === "group" && v === "datacenter")) p.set(k, v);
    return p.toString();
  }

  let timer = null;
  function refilter() {
    clearTimeout(timer);
    timer = setTimeout(() => {
      query = formQuery();
      history.replaceState(null, "", "/noc" + (query ? "?" + query : ""));
      refresh();
    }, 150);
  }
  $("q").addEventListener("input", refilter);
  $("state").addEventListener("change", refilter);
  $("group").addEventListener("change", refilter);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); refilter(); });

  async function post(url, body) {
    const resp = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json",
                                    "X-CSRF-Token": csrf }, body: JSON.stringify(body || {}) });
    if (!resp.ok) live.textContent = "HTTP " + resp.status;
    refresh();
  }

  let me = null;
  async function whoAmI() {
    if (me === null) {
      const who = await fetch("/api/v1/me");
      me = who.ok ? await who.json() : {};
    }
    return me;
  }

  // The cards are rendered by the server; their buttons work here without leaving the wall.
  function bind() {
    for (const f of wall.querySelectorAll("form.ack-form")) {
      f.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const id = f.closest(".incident").dataset.id;
        post(`/api/v1/incidents/${id}/acknowledge`);
      });
    }
    for (const b of wall.querySelectorAll("button.assign")) {
      b.hidden = false;
      b.addEventListener("click", async () => {
        const who = await whoAmI();
        post(`/api/v1/incidents/${b.dataset.id}/assign`, { user_id: who.user_id });
      });
    }
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  async function loadTickets() {
    const box = $("tickets");
    if (!box) return;
    const tk = await fetch("/api/v1/noc/tickets");
    if (!tk.ok) return;
    const list = await tk.json();
    box.replaceChildren();
    if (!list.length) { box.textContent = "—"; return; }
    const table = el("table");
    for (const t of list) {
      const tr = el("tr", { class: t.overdue ? "overdue" : "" });
      tr.append(el("td", {}, "#" + t.id), el("td", {}, t.priority), el("td", {}, t.subject),
                el("td", { dir: "ltr" }, t.first_response_due_label));
      table.append(tr);
    }
    box.append(table);
  }

  function connect() {
    const es = new EventSource("/api/v1/noc/events");
    es.addEventListener("open", () => { live.dataset.live = "on"; live.textContent = live.dataset.on || "live"; });
    es.addEventListener("state", () => refresh());
    es.addEventListener("error", () => { live.dataset.live = "off"; live.textContent = live.dataset.off || "…"; });
  }

  bind();
  loadTickets();
  connect();
  // Durations ("down for 5 minutes") and the ticket queue age even when no state changes.
  setInterval(refresh, 30000);
})();
