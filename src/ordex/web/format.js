"use strict";
// Display formatting of the API's decimal strings. Amounts stay strings: no float arithmetic.

const fmt = (() => {
  function group(digits) {
    return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function parts(value) {
    const text = String(value).trim();
    const negative = text.startsWith("-");
    const [whole, frac = ""] = text.replace(/^[-+]/, "").split(".");
    return { negative, whole: whole || "0", frac };
  }

  // "1234.5" -> "1,234.50"; at least `min` decimals, the value's own when it has more.
  function number(value, min = 0) {
    if (value === null || value === undefined || value === "") return "—";
    const p = parts(value);
    let frac = p.frac.replace(/0+$/, "");
    while (frac.length < min) frac += "0";
    return (p.negative ? "−" : "") + group(p.whole) + (frac ? "." + frac : "");
  }

  // Rounded to the cent for money columns (half away from zero, on the digits).
  function cents(value) {
    const p = parts(value);
    let digits = p.whole + (p.frac + "000").slice(0, 3);
    const up = Number(digits.slice(-1)) >= 5;
    digits = digits.slice(0, -1);
    if (up) digits = (BigInt(digits) + 1n).toString().padStart(3, "0");
    digits = digits.replace(/^0+(?=\d{3})/, "");
    const whole = digits.slice(0, -2) || "0";
    return { negative: p.negative && /[1-9]/.test(digits), text: group(whole) + "." + digits.slice(-2) };
  }

  function money(value) {
    if (value === null || value === undefined || value === "") return "—";
    const c = cents(value);
    return (c.negative ? "−$" : "$") + c.text;
  }

  // P&L: the sign is spelled out, so that gain and loss never depend on colour.
  function pnl(value) {
    if (value === null || value === undefined || value === "") return "—";
    const c = cents(value);
    const zero = !/[1-9]/.test(c.text);
    return (zero ? "" : c.negative ? "−" : "+") + "$" + c.text;
  }

  function sign(value) {
    if (value === null || value === undefined) return 0;
    const c = cents(value);
    if (!/[1-9]/.test(c.text)) return 0;
    return c.negative ? -1 : 1;
  }

  function time(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return d.toISOString().slice(11, 23);
  }

  function epochMs(iso) {
    // ordex sends microseconds; Date keeps milliseconds.
    return Date.parse(iso.replace(/(\.\d{3})\d+/, "$1"));
  }

  function words(status) {
    return status.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
  }

  return { number, money, pnl, sign, time, epochMs, words };
})();
