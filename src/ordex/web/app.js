"use strict";
// The trader's screen: ticket, live blotter, positions, chart. Everything it shows comes from
// the HTTP API and the /v1/stream WebSocket; events are applied once each, in seq order.

const WORKING = new Set(["pending_new", "accepted", "partially_filled"]);
const MARK = {
  pending_new: "…", accepted: "○", partially_filled: "◐", filled: "●", pending_cancel: "⊘",
  cancelled: "✕", rejected: "!", expired: "⌛", failed: "!",
};
const RECONNECT_MS = [250, 500, 1000, 2000, 4000];
const SILENCE_MS = 35000;
const FIELDS = ["symbol", "side", "quantity", "type", "limit_price", "stop_loss", "take_profit",
                "time_in_force", "max_slippage_pct", "timeout_seconds"];

const state = {
  key: null, account: null, everyone: false,
  instruments: new Map(), quotes: new Map(),
  orders: new Map(), lastSeq: 0, applied: 0,
  details: new Map(),            // order id -> {fills: [], events: [], seq}
  ws: null, attempt: 0, silence: null, reconnect: null, timers: [],
  chartSymbol: null, history: [], fills: [], lastTraded: null,
  // ms from the venue's fill time to the message and to the painted row, and from ordex's commit
  // of the event (its timestamp) to the message
  metrics: { fillToMessage: [], fillToRow: [], commitToMessage: [] },
};
window.ordex = state;

const $ = (sel) => document.querySelector(sel);

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// ---------------------------------------------------------------- HTTP

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.key}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method: options.method || "GET", headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch {
    return { ok: false, status: 0, data: { errors: [{ code: "network", field: null,
      message: "ordex could not be reached.", hint: "Check your connection; the page keeps trying." }] } };
  }
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  return { ok: response.ok, status: response.status, data };
}

function firstError(result) {
  const e = result.data && result.data.errors && result.data.errors[0];
  return e ? `${e.message} ${e.hint || ""}`.trim() : `ordex answered ${result.status}.`;
}

// ---------------------------------------------------------------- sign in / out

async function signIn(key) {
  state.key = key;
  const result = await api("/v1/account");
  if (!result.ok) {
    state.key = null;
    return firstError(result);
  }
  state.account = result.data;
  state.everyone = result.data.role !== "trader";
  sessionStorage.setItem("ordex.key", key);
  await start();
  return null;
}

function signOut() {
  sessionStorage.removeItem("ordex.key");
  location.reload();
}

async function start() {
  $("#signin").hidden = true;
  $("#app").hidden = false;
  const a = state.account;
  $("#who").textContent = `${a.name} · ${a.role}`;
  document.body.dataset.role = a.role;
  $("#ticket").hidden = a.role !== "trader";
  $("#blotter-title").textContent = state.everyone ? "All traders' orders" : "Your orders";
  await Promise.all([loadInstruments(), loadOrders(), refreshAccount(), loadLastTraded()]);
  if (!ticketSymbol() && state.lastTraded) chooseSymbol(state.lastTraded);
  connect();
  state.timers.push(setInterval(refreshQuotes, 1000), setInterval(refreshAccount, 2000));
  refreshQuotes();
  if (a.role === "trader") $("#t-symbol").focus();
}

// ---------------------------------------------------------------- stream

function setConnection(kind, text) {
  const box = $("#conn");
  box.dataset.state = kind;
  $("#conn-text").textContent = text;
}

function connect() {
  clearTimeout(state.reconnect);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/stream`);
  state.ws = ws;
  setConnection("connecting", state.attempt ? "Reconnecting…" : "Connecting…");
  ws.onopen = () => {
    ws.send(JSON.stringify({ api_key: state.key, after: state.lastSeq, all: state.everyone }));
  };
  ws.onmessage = (message) => {
    if (ws !== state.ws) return;
    watchSilence(ws);
    const data = JSON.parse(message.data);
    if (data.type === "subscribed") {
      const resumed = state.attempt > 0;
      state.attempt = 0;
      setConnection("live", "Live");
      if (resumed) { refreshAccount(); refreshDetails(); }
    } else if (data.type === "error") {
      setConnection("offline", `Not connected: ${data.message}`);
    } else if (data.seq !== undefined) {
      onEvent(data);
    }
  };
  ws.onclose = (event) => {
    if (ws !== state.ws) return;
    clearTimeout(state.silence);
    if (event.code === 4401) {
      setConnection("offline", "Signed out: the key is no longer valid");
      return;
    }
    const wait = RECONNECT_MS[Math.min(state.attempt, RECONNECT_MS.length - 1)];
    state.attempt += 1;
    setConnection("offline", `Connection lost; reconnecting in ${(wait / 1000).toFixed(1)} s`);
    state.reconnect = setTimeout(connect, wait);
  };
}

function watchSilence(ws) {
  clearTimeout(state.silence);
  state.silence = setTimeout(() => ws.close(), SILENCE_MS);
}

function onEvent(ev) {
  if (ev.seq <= state.lastSeq) return;
  const fillMs = ev.last_fill_time ? fmt.epochMs(ev.last_fill_time) : null;
  if (fillMs !== null) {
    const now = Date.now();
    state.metrics.fillToMessage.push(now - fillMs);
    state.metrics.commitToMessage.push(now - fmt.epochMs(ev.timestamp));
  }
  state.lastSeq = ev.seq;
  state.applied += 1;
  document.body.dataset.lastSeq = String(ev.seq);
  const known = state.orders.get(ev.order_id);
  const order = Object.assign(known || { id: ev.order_id, created_at: ev.timestamp }, {
    trader_id: ev.trader_id, trader_name: ev.trader_name,
    client_order_id: ev.client_order_id, symbol: ev.symbol,
    side: ev.side, type: ev.order_type, quantity: ev.quantity,
    limit_price: ev.limit_price, time_in_force: ev.time_in_force, status: ev.status,
    filled_quantity: ev.filled_quantity, remaining_quantity: ev.remaining_quantity,
    average_price: ev.average_price, reason: ev.reason, updated_at: ev.timestamp,
    routing: ev.routing,
  });
  if (ev.type === "acknowledged") order.acknowledged_at = ev.timestamp;
  state.orders.set(order.id, order);
  renderRow(order, !known);
  const detail = state.details.get(order.id);
  if (detail) {
    detail.events.push(ev);
    renderDetail(order.id);
  }
  if (fillMs !== null) {
    state.lastTraded = ev.symbol;
    if (!ticketSymbol() && state.details.size === 0) chooseSymbol(ev.symbol);
    // The row is updated above; the figure is taken when that update is painted.
    requestAnimationFrame(() => state.metrics.fillToRow.push(Date.now() - fillMs));
    if (ev.symbol === state.chartSymbol) {
      state.fills.push({ t: fillMs, price: ev.last_fill_price, side: ev.side,
                         quantity: ev.last_fill_quantity, venue: ev.last_fill_venue });
      drawChart();
    }
    if (detail) loadDetail(order.id);
    scheduleAccountRefresh();
  }
}

// ---------------------------------------------------------------- blotter

async function loadOrders() {
  const result = await api("/v1/orders?limit=200");
  if (!result.ok) return;
  state.lastSeq = result.data.last_seq;
  for (const order of result.data.orders.slice().reverse()) {
    state.orders.set(order.id, order);
    renderRow(order, true);
  }
}

function renderRow(order, isNew) {
  const body = $("#blotter tbody");
  let row = body.querySelector(`tr.order[data-order-id="${order.id}"]`);
  const open = state.details.has(order.id);
  const cells = [
    h("td", {}, h("button", {
      type: "button", class: "toggle", "aria-expanded": open ? "true" : "false",
      "aria-controls": `detail-${order.id}`,
      "aria-label": `Details of ${order.side} ${order.quantity} ${order.symbol}`,
      onclick: () => toggleDetail(order.id),
    }, open ? "▾" : "▸")),
    h("td", { text: fmt.time(order.created_at) }),
    h("td", { class: "trader-col", text: order.trader_name || (order.trader_id || "").slice(0, 8),
              title: order.trader_id || "" }),
    h("td", { class: "symbol", text: order.symbol }),
    h("td", { class: `side ${order.side}`, text: order.side === "buy" ? "Buy" : "Sell" }),
    h("td", { text: order.type ? fmt.words(order.type) : "—" }),
    h("td", { class: "num", text: fmt.number(order.quantity) }),
    h("td", { class: "num col-filled", text: fmt.number(order.filled_quantity) }),
    h("td", { class: "num col-remaining", text: fmt.number(order.remaining_quantity) }),
    h("td", { class: "num", text: order.limit_price ? fmt.number(order.limit_price, 2) : "—" }),
    h("td", { class: "num col-avg", text: order.average_price ? fmt.number(order.average_price, 2) : "—" }),
    h("td", { class: "status-cell" }, h("span", {
      class: `status ${order.status}`, "data-status": order.status,
      title: order.reason || "",
    }, h("span", { "aria-hidden": "true", text: MARK[order.status] || "" }), " " + fmt.words(order.status)),
    order.reason && !WORKING.has(order.status) && order.status !== "filled"
      ? h("span", { class: "reason", text: order.reason }) : null,
    order.routing === "unconfirmed"
      ? h("span", { class: "reason routing", text: "Sent; waiting for the venue to confirm" })
      : null),
    h("td", {}, actionsFor(order)),
  ];
  if (!row) {
    row = h("tr", { class: "order", "data-order-id": order.id, onclick: onRowClick });
    body.prepend(row);
  }
  row.dataset.status = order.status;
  row.replaceChildren(...cells);
  if (isNew) $("#blotter-empty").hidden = true;
}

function actionsFor(order) {
  if (state.account.role !== "trader") return null;
  if (WORKING.has(order.status)) {
    return h("button", { type: "button", class: "cancel",
      "aria-label": `Cancel ${order.side} ${order.quantity} ${order.symbol}`,
      onclick: (e) => cancelOrder(order, e.currentTarget) }, "Cancel");
  }
  if (order.status === "pending_cancel") return h("span", { class: "help", text: "Cancelling…" });
  if (order.status === "failed" && !order.acknowledged_at) {
    const what = `${order.side} ${order.quantity} ${order.symbol}`;
    return h("span", { class: "actions" },
      h("button", { type: "button", class: "retry", "aria-label": `Retry ${what}`,
                    onclick: (e) => failedAction(order, "retry", e.currentTarget) }, "Retry"),
      " ",
      h("button", { type: "button", class: "acknowledge", "aria-label": `Acknowledge ${what}`,
                    onclick: (e) => failedAction(order, "acknowledge", e.currentTarget) },
        "Acknowledge"));
  }
  return null;
}

async function failedAction(order, action, button) {
  button.disabled = true;
  const result = await api(`/v1/orders/${order.id}/${action}`, { method: "POST" });
  if (!result.ok) {
    button.disabled = false;
    notice(`Could not ${action} ${order.symbol}: ${firstError(result)}`);
    return;
  }
  if (action === "retry") {
    const again = result.data;
    notice(`Sent again as a new order: ${again.side} ${fmt.number(again.quantity)} ${again.symbol}.`);
    if (!state.orders.has(again.id)) { state.orders.set(again.id, again); renderRow(again, true); }
  } else {
    notice(`Failed order ${order.symbol} acknowledged and closed.`);
  }
  order.acknowledged_at = order.acknowledged_at || new Date().toISOString();
  renderRow(order, false);
}

async function cancelOrder(order, button) {
  button.disabled = true;
  const result = await api(`/v1/orders/${order.id}`, { method: "DELETE" });
  if (!result.ok) {
    button.disabled = false;
    notice(`Could not cancel ${order.symbol}: ${firstError(result)}`);
  } else {
    notice(`Cancel sent for ${order.side} ${order.quantity} ${order.symbol}.`);
  }
}

function notice(text) {
  $("#notice").textContent = text;
}

// ---------------------------------------------------------------- order details

// A click anywhere on a row opens it, like its ▸ button; buttons and selected text keep theirs.
function onRowClick(event) {
  if (event.target.closest("button, a, input, select")) return;
  if (String(window.getSelection() || "")) return;
  toggleDetail(event.currentTarget.dataset.orderId);
}

function toggleDetail(orderId) {
  if (state.details.has(orderId)) {
    state.details.delete(orderId);
    const row = document.getElementById(`detail-${orderId}`);
    if (row) row.remove();
    renderRow(state.orders.get(orderId), false);
    return;
  }
  state.details.set(orderId, { fills: [], events: [], loaded: false });
  const order = state.orders.get(orderId);
  renderRow(order, false);
  chooseSymbol(order.symbol);
  renderDetail(orderId);
  loadDetail(orderId);
}

async function loadDetail(orderId) {
  const [fills, events, full] = await Promise.all([
    api(`/v1/orders/${orderId}/fills`), api(`/v1/orders/${orderId}/events?after=0`),
    api(`/v1/orders/${orderId}`),
  ]);
  const detail = state.details.get(orderId);
  if (!detail || !fills.ok || !events.ok) return;
  if (full.ok) detail.order = full.data;
  detail.fills = fills.data.fills.slice().reverse();
  // Events are merged by seq: those already pushed live are neither lost nor repeated.
  const bySeq = new Map(detail.events.map((e) => [e.seq, e]));
  for (const e of events.data.events) bySeq.set(e.seq, e);
  detail.events = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  detail.loaded = true;
  renderDetail(orderId);
}

function refreshDetails() {
  for (const orderId of state.details.keys()) loadDetail(orderId);
}

function renderDetail(orderId) {
  const detail = state.details.get(orderId);
  const row = $(`#blotter tr.order[data-order-id="${orderId}"]`);
  if (!detail || !row) return;
  let panel = document.getElementById(`detail-${orderId}`);
  if (!panel) {
    panel = h("tr", { id: `detail-${orderId}`, class: "detail" });
    row.after(panel);
  }
  const fills = detail.fills.length ? h("table", { class: "fills" },
    h("caption", { text: "Fills" }),
    h("thead", {}, h("tr", {}, ...["Time", "Quantity", "Price", "Venue", "Fee"].map(
      (t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, ...detail.fills.map((f) => h("tr", { class: "fill" },
      h("td", { text: fmt.time(f.timestamp) }), h("td", { class: "num", text: fmt.number(f.quantity) }),
      h("td", { class: "num", text: fmt.number(f.price, 2) }), h("td", { text: f.venue }),
      h("td", { class: "num", text: fmt.money(f.commission) })))))
    : h("p", { class: "help", text: detail.loaded ? "No fills." : "Loading…" });
  const events = h("ol", { class: "events", "aria-label": "Event history" },
    ...detail.events.map((e) => h("li", { "data-seq": String(e.seq), class: "event" },
      h("span", { class: "seq", text: `#${e.seq}` }), " ",
      h("time", { datetime: e.timestamp, text: fmt.time(e.timestamp) }), " ",
      h("strong", { text: fmt.words(e.type) }),
      e.last_fill_quantity ? ` ${fmt.number(e.last_fill_quantity)} @ $${fmt.number(e.last_fill_price, 2)}` : "",
      e.reason ? h("span", { class: "reason", text: ` — ${e.reason}` }) : null)));
  const cols = $("#blotter thead tr").children.length;
  panel.replaceChildren(h("td", { colspan: String(cols) },
    limitsLine(detail.order),
    h("div", { class: "detail-body" }, fills,
      h("div", {}, h("h3", { text: "Event history" }), events))));
}

function limitsLine(order) {
  if (!order) return null;
  const parts = [];
  if (order.stop_loss) parts.push(`stop loss $${fmt.number(order.stop_loss, 2)}`);
  if (order.take_profit) parts.push(`take profit $${fmt.number(order.take_profit, 2)}`);
  if (order.max_slippage_pct) {
    parts.push(`max slippage ${fmt.number(order.max_slippage_pct)}% (worst price ` +
               `$${fmt.number(order.slippage_price, 2)})`);
  }
  if (order.timeout_seconds) {
    parts.push(`cancel if not filled in ${order.timeout_seconds} s (at ${fmt.time(order.expires_at)})`);
  }
  return parts.length ? h("p", { class: "limits", text: `Limits: ${parts.join("; ")}.` }) : null;
}

// ---------------------------------------------------------------- account and positions

let accountTimer = null;
function scheduleAccountRefresh() {
  if (accountTimer) return;
  accountTimer = setTimeout(() => { accountTimer = null; refreshAccount(); }, 150);
}

async function refreshAccount() {
  const [account, positions] = await Promise.all([api("/v1/account"), api("/v1/positions")]);
  if (account.ok) {
    const a = account.data;
    const pnlClass = (v) => ["neg", "flat", "pos"][fmt.sign(v) + 1];
    $("#account-figures").replaceChildren(
      ...[["Cash", fmt.money(a.cash), "cash"], ["Buying power", fmt.money(a.buying_power), "buying-power"],
          ["Equity", fmt.money(a.equity), "equity"],
          ["Day P&L", fmt.pnl(a.day_pnl), `day-pnl ${pnlClass(a.day_pnl)}`]]
        .flatMap(([label, value, cls]) => [h("dt", { text: label }), h("dd", { class: cls, text: value })]));
  }
  if (positions.ok) {
    const cls = (v) => `num ${["neg", "flat", "pos"][fmt.sign(v) + 1]}`;
    $("#positions tbody").replaceChildren(...positions.data.positions.map((p) => h("tr", {
      "data-symbol": p.symbol },
      h("th", { scope: "row", text: p.symbol }), h("td", { class: "num qty", text: fmt.number(p.quantity) }),
      h("td", { class: "num", text: fmt.money(p.average_cost) }),
      h("td", { class: "num", text: fmt.money(p.market_price) }),
      h("td", { class: "num", text: fmt.money(p.market_value) }),
      h("td", { class: cls(p.unrealized_pnl), text: fmt.pnl(p.unrealized_pnl) }),
      h("td", { class: cls(p.realized_pnl), text: fmt.pnl(p.realized_pnl) }))));
  }
}

// ---------------------------------------------------------------- instruments, quotes, chart

async function loadInstruments() {
  const result = await api("/v1/instruments");
  if (!result.ok) return;
  for (const i of result.data.instruments) state.instruments.set(i.symbol, i);
  renderSymbolList();
}

function renderSymbolList() {
  $("#symbols").replaceChildren(...[...state.instruments.values()].map((i) => {
    const q = state.quotes.get(i.symbol);
    const price = q && q.bid && q.ask ? ` — bid ${fmt.number(q.bid, 2)} / ask ${fmt.number(q.ask, 2)}` : "";
    const status = i.status === "active" ? "" : ` (${i.status})`;
    return h("option", { value: i.symbol, label: `${i.name}${status}${price}` });
  }));
}

let quotesBusy = false;
async function refreshQuotes() {
  if (quotesBusy) return;
  quotesBusy = true;
  try {
    const result = await api("/v1/quotes");
    if (!result.ok) return;
    for (const q of result.data.quotes) {
      state.quotes.set(q.symbol, q);
      const inst = state.instruments.get(q.symbol);
      if (inst) inst.status = q.status;
    }
    if (document.activeElement !== $("#t-symbol")) renderSymbolList();
    showQuote();
    const q = state.quotes.get(state.chartSymbol);
    if (q && q.timestamp) {
      const t = fmt.epochMs(q.timestamp);
      const price = q.last || q.bid;
      const last = state.history[state.history.length - 1];
      if (price && (!last || t > last.t)) {
        state.history.push({ t, price });
        if (state.history.length > 1200) state.history.shift();
        drawChart();
      }
    }
  } finally {
    quotesBusy = false;
  }
}

function showQuote() {
  const symbol = $("#t-symbol").value.trim().toUpperCase();
  const q = state.quotes.get(symbol);
  const inst = state.instruments.get(symbol);
  const out = $("#t-quote");
  if (!inst) { out.textContent = symbol ? "Not a listed symbol." : ""; return; }
  const status = inst.status === "active" ? "" : ` · ${fmt.words(inst.status)}`;
  out.textContent = q && q.bid
    ? `${inst.name}: bid $${fmt.number(q.bid, 2)} · ask $${fmt.number(q.ask, 2)} · last $${fmt.number(q.last, 2)}${status}`
    : `${inst.name}: reference $${fmt.number(inst.reference_price, 2)}${status}`;
}

function ticketSymbol() {
  return $("#t-symbol").value.trim().toUpperCase();
}

// The chart follows the ticket's symbol; with the ticket empty, the last symbol traded.
async function loadLastTraded() {
  const result = await api("/v1/fills?limit=1");
  if (result.ok && result.data.fills.length) state.lastTraded = result.data.fills[0].symbol;
}

async function chooseSymbol(symbol) {
  if (!state.instruments.has(symbol) || symbol === state.chartSymbol) return;
  state.chartSymbol = symbol;
  state.history = [];
  state.fills = [];
  $("#chart-title").textContent = `Price — ${symbol}`;
  drawChart();
  const [history, fills] = await Promise.all([
    api(`/v1/quotes/${encodeURIComponent(symbol)}/history`),
    api(`/v1/fills?symbol=${encodeURIComponent(symbol)}&limit=500`),
  ]);
  if (symbol !== state.chartSymbol) return;
  if (history.ok) {
    const live = state.history;
    state.history = history.data.points.map((p) => ({ t: fmt.epochMs(p.timestamp), price: p.price }));
    const newest = state.history.length ? state.history[state.history.length - 1].t : 0;
    state.history.push(...live.filter((p) => p.t > newest));
  }
  if (fills.ok) {
    const seen = new Set(state.fills.map((f) => `${f.t}|${f.price}|${f.quantity}`));
    for (const f of fills.data.fills) {
      const item = { t: fmt.epochMs(f.timestamp), price: f.price, side: f.side,
                     quantity: f.quantity, venue: f.venue };
      if (!seen.has(`${item.t}|${item.price}|${item.quantity}`)) state.fills.push(item);
    }
  }
  drawChart();
}

function drawChart() {
  chart.draw($("#chart"), state.chartSymbol, state.history, state.fills);
}

// ---------------------------------------------------------------- ticket

function ticketBody() {
  const form = $("#ticket-form");
  const body = {};
  for (const name of FIELDS) {
    if (name === "side") { body.side = form.querySelector("input[name=side]:checked").value; continue; }
    const input = form.elements[name];
    if (!input || input.disabled) continue;
    const value = input.value.trim();
    if (value !== "") body[name] = name === "symbol" ? value.toUpperCase() : value;
  }
  return body;
}

function clearErrors() {
  for (const name of FIELDS) {
    const box = document.getElementById(`e-${name}`);
    if (box) box.textContent = "";
    const input = document.getElementById(`t-${name}`);
    if (input) input.removeAttribute("aria-invalid");
  }
  $("#t-errors").replaceChildren();
}

function showErrors(errors, touchedOnly) {
  clearErrors();
  let focused = false;
  for (const e of errors) {
    const box = e.field && document.getElementById(`e-${e.field}`);
    const input = e.field && document.getElementById(`t-${e.field}`);
    if (touchedOnly && (!input || !input.dataset.touched)) continue;
    const text = [h("span", { class: "message", text: e.message }), " ",
                  h("span", { class: "hint", text: e.hint || "" })];
    if (box) {
      box.replaceChildren(...text);
      if (input) input.setAttribute("aria-invalid", "true");
      if (!touchedOnly && !focused && input) { input.focus(); focused = true; }
    } else if (!touchedOnly) {
      $("#t-errors").append(h("p", { "data-code": e.code }, ...text));
    }
  }
}

let previewTimer = null, previewRun = 0;
function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 200);
}

async function preview() {
  const body = ticketBody();
  const out = $("#t-estimate");
  if (!body.symbol || !body.quantity) { out.textContent = ""; return; }
  const run = ++previewRun;
  const result = await api("/v1/orders/preview", { method: "POST", body });
  if (run !== previewRun || !result.ok) return;
  const est = result.data.estimate;
  out.textContent = est && est.notional && fmt.sign(est.notional) > 0
    ? `Estimated value ${fmt.money(est.notional)} (at $${fmt.number(est.unit_price, 2)} a share, before fees); ` +
      `buying power left ${fmt.money(est.buying_power_after)} of ${fmt.money(est.buying_power)}.`
    : "";
  showErrors(result.data.errors, true);
}

async function submitTicket(event) {
  event.preventDefault();
  const button = $("#t-submit");
  const body = ticketBody();
  body.client_order_id = `web-${crypto.randomUUID()}`;
  button.disabled = true;
  $("#t-result").textContent = "Sending…";
  try {
    const result = await api("/v1/orders", { method: "POST", body });
    if (result.ok) {
      const o = result.data;
      clearErrors();
      $("#t-result").textContent =
        `Order accepted: ${o.side} ${fmt.number(o.quantity)} ${o.symbol} (${fmt.words(o.type)}).`;
      if (!state.orders.has(o.id)) { state.orders.set(o.id, o); renderRow(o, true); }
    } else {
      $("#t-result").textContent = "Order not sent. See the messages above.";
      showErrors(result.data && result.data.errors ? result.data.errors
        : [{ field: null, code: "http", message: firstError(result), hint: "" }], false);
    }
  } finally {
    button.disabled = false;
  }
}

function wireTicket() {
  const form = $("#ticket-form");
  form.addEventListener("submit", submitTicket);
  form.addEventListener("input", (e) => {
    if (e.target.id) e.target.dataset.touched = "1";
    schedulePreview();
  });
  form.addEventListener("change", schedulePreview);
  $("#t-type").addEventListener("change", () => {
    const limit = $("#t-limit_price");
    limit.disabled = $("#t-type").value !== "limit";
    if (limit.disabled) { limit.value = ""; $("#e-limit_price").textContent = ""; }
  });
  $("#t-symbol").addEventListener("input", () => {
    showQuote();
    chooseSymbol(ticketSymbol() || state.lastTraded);
  });
}

// ---------------------------------------------------------------- boot

function boot() {
  $("#signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = await signIn($("#api-key").value.trim());
    $("#signin-error").textContent = error || "";
    if (error) $("#api-key").focus();
  });
  $("#signout").addEventListener("click", signOut);
  wireTicket();
  const saved = sessionStorage.getItem("ordex.key");
  if (saved) signIn(saved); else $("#api-key").focus();
}

document.addEventListener("DOMContentLoaded", boot);
