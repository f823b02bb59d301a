import { listAll, tune } from "../api.js";
import { fmtBytes, fmtTime, h, mount, showError, table } from "../dom.js";

const PREVIEW_RECORDS = 20;

// "Invalid file format ...: name:2: field 'x': problem; name:3: problem" -> rows.
export function validationProblems(message) {
  const body = message.replace(/^[^:]*fine-tuning: /, "");
  return body.split(/; (?=[^;]*?:\d+: )/).map((part) => {
    const match = /^.*?:(\d+): (?:field '([^']*)': )?(.*)$/s.exec(part);
    return match ? { line: match[1], field: match[2] || "-", problem: match[3] } : null;
  }).filter(Boolean);
}

function problemsView(err) {
  const problems = validationProblems(err.message);
  if (!problems.length) return h("p", { class: "error-text" }, err.message);
  return h("div", { class: "card problems" },
    h("h3", {}, "The file was not accepted"),
    table(["Line", "Field", "Problem"], problems.map((p) => [p.line, p.field, p.problem]),
      { id: "upload-problems" }));
}

export function messagesView(messages) {
  return h("div", { class: "messages" }, (messages || []).map((m) =>
    h("div", { class: `message role-${String(m && m.role).replace(/[^a-z]/g, "")}` },
      h("span", { class: "role" }, String(m && m.role)),
      h("span", { class: "content" }, typeof m?.content === "string" ? m.content : JSON.stringify(m?.content)))));
}

// One record in its format: chat (messages), preference (input + two outputs), or
// reinforcement (messages plus the fields graders read).
export function recordView(record) {
  if (record && record.input && record.preferred_output) {
    return h("div", { class: "record" }, h("span", { class: "badge" }, "preference"),
      messagesView(record.input.messages),
      h("div", { class: "pair" },
        h("div", {}, h("h4", {}, "Preferred"), messagesView(record.preferred_output)),
        h("div", {}, h("h4", {}, "Not preferred"), messagesView(record.non_preferred_output))));
  }
  const extra = Object.entries(record || {}).filter(([k]) => k !== "messages");
  return h("div", { class: "record" },
    h("span", { class: "badge" }, extra.length ? "reinforcement" : "chat"),
    messagesView(record && record.messages),
    extra.length ? h("dl", {}, extra.map(([k, v]) => [h("dt", {}, k),
      h("dd", {}, typeof v === "string" ? v : JSON.stringify(v))])) : null);
}

async function preview(file, target) {
  const response = await tune("GET", `files/${encodeURIComponent(file.id)}/content`, undefined, { raw: true });
  const lines = (await response.text()).split("\n").filter((l) => l.trim()).slice(0, PREVIEW_RECORDS);
  mount(target, h("div", { class: "card", id: "preview" },
    h("h3", {}, `${file.filename}: first ${lines.length} records`),
    lines.map((line) => {
      try { return recordView(JSON.parse(line)); } catch { return h("pre", {}, line); }
    })));
}

export async function datasets(main) {
  const result = h("div", { id: "upload-result" });
  const previewArea = h("div");
  const listArea = h("div");
  const input = h("input", { type: "file", id: "file-input", accept: ".jsonl,.json" });

  async function upload(file) {
    const form = new FormData();
    form.append("purpose", "fine-tune");
    form.append("file", file, file.name);
    mount(result, h("p", { class: "muted" }, `Uploading ${file.name}…`));
    try {
      const created = await tune("POST", "files", form);
      mount(result, h("p", { class: "ok-text" }, `${created.filename} uploaded and validated: ${created.id}`));
      await refresh();
    } catch (err) {
      mount(result, problemsView(err));
    }
  }

  async function refresh() {
    const files = (await listAll("files?purpose=fine-tune")).filter((f) => f.purpose === "fine-tune");
    mount(listArea, table(["File", "Id", "Size", "Uploaded", ""], files.map((f) => [
      f.filename, h("code", {}, f.id), fmtBytes(f.bytes), fmtTime(f.created_at),
      h("span", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => preview(f, previewArea).catch(showError) }, "Preview"),
        h("button", { type: "button", class: "danger", onclick: async () => {
          if (!window.confirm(`Delete ${f.filename}?`)) return;
          try { await tune("DELETE", `files/${encodeURIComponent(f.id)}`); await refresh(); } catch (err) { showError(err); }
        } }, "Delete")),
    ]), { id: "files" }));
  }

  const drop = h("div", { class: "dropzone", id: "dropzone",
    ondragover: (e) => { e.preventDefault(); drop.classList.add("over"); },
    ondragleave: () => drop.classList.remove("over"),
    ondrop: (e) => { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]); } },
  h("p", {}, "Drop a JSONL training file here, or "),
  h("label", { class: "button", for: "file-input" }, "choose one"), input);
  input.addEventListener("change", () => { if (input.files[0]) upload(input.files[0]); input.value = ""; });

  mount(main, h("h1", {}, "Datasets"),
    h("p", { class: "muted" }, "Chat (messages), preference (DPO) and reinforcement (messages plus grader fields) JSONL files; each is validated on upload."),
    drop, result, listArea, previewArea);
  await refresh();
}
