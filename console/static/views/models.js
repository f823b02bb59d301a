import { listAll, tune } from "../api.js";
import { lossChart, lossSeries } from "../charts.js";
import { fmtBytes, fmtNum, fmtTime, h, link, mount, pct, saveResponse, showError, table } from "../dom.js";

const EXPORT_FORMATS = ["gguf-lora", "gguf-q8_0", "gguf-q4_k_m", "gguf-f16", "merged", "gptq"];
// The evaluation numbers shown before/after, by the name the worker records them under.
const EVAL_ROWS = [["heldout_loss", "Held-out loss", fmtNum], ["heldout_token_accuracy", "Held-out token accuracy", pct],
  ["physics_accuracy", "Physics accuracy", pct], ["grader_score", "Grader score", fmtNum]];

// Where a model is served: the live `quanta serve` processes of its base (one server serves
// one base), as the registry records them. URLs are shown as text, never as links.
function servedBy(entries) {
  if (!entries || !entries.length) return h("span", { class: "muted" }, "not served right now");
  return entries.map((e, i) => h("span", { class: "endpoint" }, i ? ", " : "", e.url,
    h("span", { class: "muted" }, ` (${e.engine}${e.grpc ? `, gRPC ${e.grpc}` : ""})`)));
}

export async function models(main) {
  const list = await tune("GET", "models");
  const tuned = list.data.filter((m) => m.id.startsWith("ft:"));
  const bases = list.data.filter((m) => !m.id.startsWith("ft:"));
  mount(main, h("h1", {}, "Models"),
    h("h2", {}, "Fine-tuned"),
    table(["Model", "Created", "Served by"], tuned.map((m) => [link(`#/models/${encodeURIComponent(m.id)}`, m.id), fmtTime(m.created), servedBy(m.served_by)]), { id: "models" }),
    h("h2", {}, "Base models"),
    table(["Model", "Served by"], bases.map((m) => [m.id, servedBy(m.served_by)]), { id: "base-models" }));
}

function evalView(evaluation) {
  const before = evaluation.before || {}, after = evaluation.after || {};
  const rows = EVAL_ROWS.filter(([key]) => key in before || key in after)
    .map(([key, label, fmt]) => [label, fmt(before[key]), fmt(after[key])]);
  const beforeSamples = before.samples || before.grader_samples || [];
  const afterSamples = after.samples || after.grader_samples || [];
  return h("section", { id: "evaluation" },
    h("h2", {}, "Before and after training"),
    table(["", "Before", "After"], rows),
    h("h3", {}, "Sample answers"),
    afterSamples.length ? afterSamples.map((sample, i) => h("div", { class: "card sample" },
      h("p", { class: "question" }, sample.question),
      sample.expected ? h("p", { class: "muted" }, "Expected: ", sample.expected) : null,
      h("div", { class: "pair" },
        h("div", {}, h("h4", {}, "Before"), h("pre", { class: "answer before" }, beforeSamples[i]?.answer ?? "-")),
        h("div", {}, h("h4", {}, "After"), h("pre", { class: "answer after" }, sample.answer))))) :
      h("p", { class: "muted" }, "No sample answers were recorded for this model."));
}

function exportsTable(exports) {
  return table(["Export", "Size", "Perplexity", "Unquantized", "Ratio", "Accuracy", "Adapter accuracy", ""],
    exports.map((e) => [
      [e.name, e.metrics.degraded ? h("span", { class: "badge warn" }, "degraded") : null],
      fmtBytes(e.bytes), fmtNum(e.metrics.perplexity), fmtNum(e.metrics.reference_perplexity),
      fmtNum(e.metrics.perplexity_ratio, 3), pct(e.metrics.physics_accuracy), pct(e.metrics.reference_accuracy),
      e.format.startsWith("gguf") ? h("button", { type: "button", class: "secondary", onclick: () => download(e).catch(showError) }, "Download") : "-",
    ]), { id: "exports" });
}

async function download(exp) {
  const response = await tune("GET", `quanta/exports/${encodeURIComponent(exp.id)}/content`, undefined, { raw: true });
  await saveResponse(response, `${exp.id}-${exp.format}.gguf`);
}

// Pinned: every server of the base keeps the model loaded (never evicted), across restarts.
function pinToggle(model, pinned) {
  const state = h("span", { id: "pin-state" }, pinned ? "yes: kept in memory by every server" : "no");
  const button = h("button", { type: "button", class: "secondary", id: "pin-toggle", onclick: async () => {
    button.disabled = true;
    try {
      const result = await tune(pinned ? "DELETE" : "POST", `quanta/models/${encodeURIComponent(model)}/pin`);
      pinned = result.pinned;
      state.textContent = pinned ? "yes: kept in memory by every server" : "no";
      button.textContent = pinned ? "Unpin" : "Pin";
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  } }, pinned ? "Unpin" : "Pin");
  return [state, " ", button];
}

export async function modelDetail(main, name) {
  const model = decodeURIComponent(name);
  const detail = await tune("GET", `quanta/models/${encodeURIComponent(model)}`);
  const chart = h("div", { id: "loss-chart", class: "chart" });
  const exportsArea = h("div", {}, exportsTable(detail.exports));
  const status = h("p", { id: "export-status", class: "muted" });
  const format = h("select", { id: "export-format" }, EXPORT_FORMATS.map((f) => h("option", { value: f }, f)));
  const accuracy = h("input", { id: "export-accuracy-n", placeholder: "all", size: 5, autocomplete: "off" });
  const config = detail.config || {};

  const exportForm = h("form", { class: "inline", id: "export-form", onsubmit: async (event) => {
    event.preventDefault();
    const button = exportForm.querySelector("button");
    button.disabled = true;
    status.textContent = `Export as ${format.value} queued for a quantize worker…`;
    try {
      const body = { format: format.value };
      if (accuracy.value.trim()) body.accuracy_n = Number(accuracy.value);
      let job = await tune("POST", `quanta/models/${encodeURIComponent(model)}/exports`, body);
      while (!["succeeded", "failed", "cancelled"].includes(job.status)) {
        await new Promise((resolve) => setTimeout(resolve, 2000));
        job = await tune("GET", `quanta/export_jobs/${encodeURIComponent(job.id)}`);
        if (job.status === "running") {
          status.textContent = `Exporting as ${job.format} and measuring its quality…`;
        }
      }
      if (job.status !== "succeeded") {
        throw new Error(`The export ${job.status}: ${job.error ? job.error.message : "no reason given"}`);
      }
      const fresh = await tune("GET", `quanta/models/${encodeURIComponent(model)}`);
      mount(exportsArea, exportsTable(fresh.exports));
      status.textContent = "Export registered.";
    } catch (err) {
      status.textContent = "";
      showError(err);
    } finally {
      button.disabled = false;
    }
  } }, h("label", { for: "export-format" }, "Format"), format,
  h("label", { for: "export-accuracy-n" }, "Accuracy problems"), accuracy,
  h("button", { type: "submit" }, "Export"));

  mount(main,
    h("h1", {}, detail.id),
    h("dl", { class: "facts", id: "lineage" },
      h("dt", {}, "Base model"), h("dd", {}, detail.base_model),
      h("dt", {}, "Served by"), h("dd", { id: "served-by" }, servedBy(detail.served_by)),
      h("dt", {}, "Training file"), h("dd", {}, detail.training_file || "-"),
      h("dt", {}, "Job"), h("dd", {}, detail.job ? link(`#/jobs/${encodeURIComponent(detail.job)}`, detail.job) : "-"),
      h("dt", {}, "Method"), h("dd", {}, config.method || "-"),
      h("dt", {}, "LoRA"), h("dd", {}, config.lora ? `r=${config.lora.r}, alpha=${config.lora.alpha}` : "-"),
      h("dt", {}, "Steps"), h("dd", {}, config.steps ?? "-"),
      h("dt", {}, "Calculator"), h("dd", {}, config.calculator ? "writes calculations (served with calculator decoding)" : "no"),
      h("dt", {}, "Pinned"), h("dd", {}, pinToggle(model, detail.pinned)),
      h("dt", {}, "Size"), h("dd", {}, fmtBytes(detail.bytes)),
      h("dt", {}, "Created"), h("dd", {}, fmtTime(detail.created))),
    evalView(detail.eval || {}),
    h("h2", {}, "Loss"), chart,
    h("h2", {}, "Exports"), exportsArea, exportForm, status,
    h("h2", {}, "Danger zone"),
    h("button", { type: "button", class: "danger", onclick: async () => {
      if (!window.confirm(`Delete ${detail.id} and its exports?`)) return;
      try { await tune("DELETE", `models/${encodeURIComponent(model)}`); window.location.hash = "#/models"; } catch (err) { showError(err); }
    } }, "Delete this model"));
  if (detail.job) {
    try {
      lossChart(chart, lossSeries(await listAll(`fine_tuning/jobs/${encodeURIComponent(detail.job)}/events`)));
    } catch (err) {
      chart.textContent = `No loss curve: ${err.message}`;
    }
  }
}
