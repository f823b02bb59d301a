// Building pages from data. Every string goes in as a text node or an attribute value,
// never as markup: dataset records and model answers are untrusted text.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function mount(target, ...children) {
  target.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  return target;
}

// Cells carry their column's name (data-label): a table of class "stack" shows each row as
// a card on a phone's screen, every cell under its name (style.css).
export function table(headers, rows, attrs = {}) {
  return h("div", { class: "table-wrap" },
    h("table", attrs,
      h("thead", {}, h("tr", {}, headers.map((name) => h("th", {}, name)))),
      h("tbody", {}, rows.length
        ? rows.map((cells) => (cells instanceof Node ? cells : h("tr", {}, cells.map((c, i) =>
          h("td", { "data-label": typeof headers[i] === "string" && headers[i] ? headers[i] : null }, c)))))
        : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "Nothing yet")))));
}

const banner = () => document.getElementById("error");

export function showError(err) {
  const el = banner();
  const message = err && err.message ? err.message : String(err);
  mount(el, h("span", {}, message),
    h("button", { type: "button", class: "link", onclick: clearError }, "Dismiss"));
  el.hidden = false;
}

export function clearError() {
  const el = banner();
  el.hidden = true;
  el.replaceChildren();
}

export function fmtBytes(n) {
  if (typeof n !== "number") return "-";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function fmtTime(unix) {
  return typeof unix === "number" ? new Date(unix * 1000).toLocaleString() : "-";
}

export function fmtNum(value, digits = 4) {
  return typeof value === "number" ? value.toFixed(digits) : "-";
}

export function pct(value) {
  return typeof value === "number" ? `${(100 * value).toFixed(1)}%` : "-";
}

export function link(hash, text) {
  return h("a", { href: hash }, text);
}

export function fmtDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) return "-";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

// An API answer (a raw fetch Response) saved as a file the browser downloads.
export async function saveResponse(response, filename) {
  const url = URL.createObjectURL(await response.blob());
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
