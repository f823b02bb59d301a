// OpenAI's Batch API: the tenant's batches, their progress, and their output and error
// files to download (through the console's proxy, like every API call).
import { listAll, tune } from "../api.js";
import { fmtTime, h, mount, saveResponse, showError, table } from "../dom.js";

const ACTIVE = new Set(["validating", "in_progress", "finalizing", "cancelling"]);
const CANCELLABLE = new Set(["validating", "in_progress", "finalizing"]);
const POLL_MS = 2000;
const HEADERS = ["Batch", "Status", "Endpoint", "Requests", "Created", "Output", "Errors", ""];

async function download(fileId, filename) {
  const response = await tune("GET", `files/${encodeURIComponent(fileId)}/content`, undefined, { raw: true });
  await saveResponse(response, filename);
}

function fileButton(fileId, filename, label) {
  if (!fileId) return h("span", { class: "muted" }, "-");
  return h("button", { type: "button", class: "secondary", "data-file": fileId,
    onclick: () => download(fileId, filename).catch(showError) }, label);
}

function requests(counts) {
  const { total = 0, completed = 0, failed = 0 } = counts || {};
  return [total ? h("progress", { max: total, value: completed + failed }) : null,
    ` ${completed} completed, ${failed} failed of ${total}`];
}

export async function batches(main) {
  const list = h("div");
  let timer = null;
  let stopped = false;

  async function cancel(batch) {
    try { await tune("POST", `batches/${encodeURIComponent(batch.id)}/cancel`); await refresh(); } catch (err) { showError(err); }
  }

  async function refresh() {
    clearTimeout(timer);  // one polling loop, however often a button refreshes
    const all = await listAll("batches");
    if (stopped) return;
    mount(list, table(HEADERS, all.map((b) => h("tr", { "data-batch": b.id },
      [
        h("code", {}, b.id),
        [h("span", { class: `status status-${String(b.status).replace(/[^a-z_]/g, "")}` }, b.status),
          b.errors?.data?.length ? h("div", { class: "error-text" }, b.errors.data.map((e) =>
            h("div", {}, `${e.line ? `line ${e.line}: ` : ""}${e.message}`))) : null],
        b.endpoint,
        requests(b.request_counts),
        fmtTime(b.created_at),
        fileButton(b.output_file_id, `${b.id}-output.jsonl`, "Output"),
        fileButton(b.error_file_id, `${b.id}-errors.jsonl`, "Errors"),
        CANCELLABLE.has(b.status)
          ? h("button", { type: "button", class: "danger", onclick: () => cancel(b) }, "Cancel") : null,
      ].map((cell, i) => h("td", { "data-label": HEADERS[i] || null }, h("div", {}, cell))))),
    { id: "batches", class: "stack" }));
    if (all.some((b) => ACTIVE.has(b.status))) timer = setTimeout(() => refresh().catch(showError), POLL_MS);
  }

  mount(main, h("h1", {}, "Batches"),
    h("p", { class: "muted" }, "Requests answered in bulk through OpenAI's Batch API (client.batches.create); ",
      "each batch's answers and failures are files to download."),
    list);
  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
