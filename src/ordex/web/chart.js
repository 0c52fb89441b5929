"use strict";
// A price line with the trader's fills marked, drawn as SVG. Prices become screen coordinates
// only here; the figures shown as text come from the API's decimal strings.

const chart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 640, H = 220, PAD = { left: 56, right: 12, top: 10, bottom: 22 };

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // points: [{t: ms, price: "189.5"}], fills: [{t, price, side, quantity, venue}]
  function draw(container, symbol, points, fills) {
    container.replaceChildren();
    if (!symbol) {
      container.setAttribute("aria-label", "No symbol chosen");
      return;
    }
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none",
                            class: "chart-svg", "aria-hidden": "true" });
    container.append(svg);
    if (points.length === 0) {
      svg.append(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis" },
                    "Waiting for prices…"));
      container.setAttribute("aria-label", `${symbol}: no prices yet`);
      return;
    }
    // a point stands for its whole second (the latest quote in it): the fills of that second
    // belong on the chart, also those before the quote that replaced the second's first one
    const since = Math.floor(points[0].t / 1000) * 1000;
    const shown = fills.filter((f) => f.t >= since);
    const t0 = Math.min(points[0].t, ...shown.map((f) => f.t));
    const t1 = Math.max(points[points.length - 1].t, t0 + 1000);
    const values = points.map((p) => Number(p.price)).concat(shown.map((f) => Number(f.price)));
    let lo = Math.min(...values), hi = Math.max(...values);
    if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
    const margin = (hi - lo) * 0.08;
    lo -= margin; hi += margin;
    const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
    const y = (v) => PAD.top + (1 - (v - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);

    for (const v of [lo + margin, (lo + hi) / 2, hi - margin]) {
      svg.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }));
      svg.append(el("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" },
                    v.toFixed(2)));
    }
    svg.append(el("text", { x: PAD.left, y: H - 6, class: "axis" },
                  new Date(t0).toISOString().slice(11, 19)));
    svg.append(el("text", { x: W - PAD.right, y: H - 6, "text-anchor": "end", class: "axis" },
                  new Date(t1).toISOString().slice(11, 19)));
    const line = points.map((p) => `${x(p.t).toFixed(1)},${y(Number(p.price)).toFixed(1)}`);
    svg.append(el("polyline", { points: line.join(" "), class: "price-line" }));

    for (const f of shown) {
      const cx = x(f.t), cy = y(Number(f.price)), s = 7;
      const d = f.side === "buy"
        ? `M${cx},${cy - s} L${cx + s},${cy + s} L${cx - s},${cy + s} Z`
        : `M${cx},${cy + s} L${cx + s},${cy - s} L${cx - s},${cy - s} Z`;
      const mark = el("path", { d, class: `fill-mark ${f.side}`, "data-side": f.side });
      mark.append(el("title", {}, `${f.side === "buy" ? "Bought" : "Sold"} ${f.quantity} @ ` +
                     `$${f.price} on ${f.venue} at ${new Date(f.t).toISOString().slice(11, 23)}`));
      svg.append(mark);
    }
    const last = points[points.length - 1].price;
    container.setAttribute("aria-label", `${symbol} price over the last ` +
      `${Math.max(1, Math.round((t1 - t0) / 60000))} minutes, last $${last}; ` +
      `${shown.length} of your fills marked`);
  }

  return { draw };
})();
