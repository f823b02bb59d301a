import { tune } from "../api.js";
import { fmtBytes, fmtTime, h, mount } from "../dom.js";

function verifyView(report) {
  if (!report) {
    return h("p", { id: "registry-ok", class: "muted" },
      "No verification has run on this server yet (quanta registry verify, from cron say).");
  }
  return [
    h("p", { id: "registry-ok", class: report.ok ? "ok-text" : "error-text" },
      report.ok ? "quanta registry verify: every stored object matched its hash."
        : `quanta registry verify found problems: ${report.corrupt} corrupt, ${report.missing} missing.`),
    h("dl", { class: "facts" },
      h("dt", {}, "Verified"), h("dd", {}, fmtTime(report.finished_at)),
      h("dt", {}, "Objects checked"), h("dd", {}, report.checked),
      h("dt", {}, "Corrupt"), h("dd", {}, report.corrupt),
      h("dt", {}, "Missing"), h("dd", {}, report.missing),
      h("dt", {}, "Unreferenced (collectable by gc)"), h("dd", {}, report.orphans)),
  ];
}

function sandboxView(sandbox) {
  if (!sandbox) return [];
  const ok = sandbox.status === "ok";
  return [h("h2", {}, "Python graders"),
    h("p", { id: "grader-sandbox", class: ok ? "ok-text" : "error-text" },
      ok ? "The grader sandbox runs on this server."
        : `sandbox_unavailable: python graders cannot run on this server (${sandbox.reason}). `
          + "The operator's fix is in docs/sandbox.md.")];
}

export async function health(main) {
  const report = await tune("GET", "quanta/registry/health");
  const storage = report.storage_bytes;
  mount(main, h("h1", {}, "Registry"),
    h("h2", {}, "Latest verification"), verifyView(report.verify),
    sandboxView(report.grader_sandbox),
    h("h2", {}, "Your storage"),
    h("dl", { class: "facts", id: "storage" },
      h("dt", {}, "Files"), h("dd", {}, fmtBytes(storage.files)),
      h("dt", {}, "Models"), h("dd", {}, fmtBytes(storage.models)),
      h("dt", {}, "Exports"), h("dd", {}, fmtBytes(storage.exports)),
      h("dt", {}, "Total"), h("dd", {}, fmtBytes(storage.total))));
}
