// The tune and serve APIs, through the console's same-origin proxy (/api/<name>/v1/...).
// The API key lives in sessionStorage for this browser tab's session only; it is sent
// in the Authorization header, never in a URL.

const KEY = "quanta.apiKey";

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  signIn(key) { sessionStorage.setItem(KEY, key); },
  signOut() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, body) {
    const error = body && body.error ? body.error : null;
    super(error && error.message ? error.message : `The API answered HTTP ${status}`);
    this.status = status;
    this.param = error ? error.param : null;
    this.code = error ? error.code : null;
  }
}

async function call(api, method, path, body, { raw = false, signal } = {}) {
  const headers = { Authorization: `Bearer ${session.key}` };
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(`/api/${api}/v1/${path}`, { method, headers, body: payload, signal });
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    const err = new ApiError(response.status, data);
    if (response.status === 401) {
      session.signOut();
      window.dispatchEvent(new Event("quanta:signed-out"));
    }
    throw err;
  }
  return raw ? response : response.json();
}

export const tune = (method, path, body, options) => call("tune", method, path, body, options);
export const serve = (method, path, body, options) => call("serve", method, path, body, options);

export async function listAll(path, limit = 100) {
  const items = [];
  let after = null;
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await tune("GET", `${path}${sep}limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ""}`);
    items.push(...page.data);
    if (!page.has_more || !page.data.length) return items;
    after = page.data[page.data.length - 1].id;
  }
}

// Server-sent events of a streamed completion: yields each JSON chunk.
export async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    // sse-starlette (llama-cpp-python) ends lines with \r\n, vLLM with \n.
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done }).replace(/\r\n?/g, "\n");
    const parts = buffer.split("\n\n");
    buffer = done ? "" : parts.pop();
    for (const part of parts) {
      for (const line of part.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(500, chunk);
        yield chunk;
      }
    }
    if (done) return;
  }
}
