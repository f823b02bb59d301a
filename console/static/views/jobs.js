import { listAll, tune } from "../api.js";
import { lossChart, lossSeries } from "../charts.js";
import { fmtTime, h, link, mount, showError, table } from "../dom.js";

const ACTIVE = new Set(["validating_files", "queued", "running"]);
const POLL_MS = 2000;

function field(label, input, hint) {
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input,
    hint ? h("small", { class: "muted" }, hint) : null);
}

function hyper(value) {
  const text = value.trim();
  if (!text || text === "auto") return undefined;
  const number = Number(text);
  return Number.isFinite(number) ? number : text;  // the API names a bad value
}

function jobForm(models, files, onCreated) {
  const select = (id, options, blank) => h("select", { id, name: id },
    blank ? h("option", { value: "" }, blank) : null,
    options.map(([value, text]) => h("option", { value }, text)));
  const model = select("job-model", models.map((m) => [m.id, m.id]));
  const training = select("job-training-file", files.map((f) => [f.id, `${f.filename} (${f.id})`]));
  const validation = select("job-validation-file", files.map((f) => [f.id, `${f.filename} (${f.id})`]), "none");
  const method = select("job-method", [["supervised", "supervised"], ["dpo", "dpo"], ["reinforcement", "reinforcement"]]);
  const text = (id, placeholder = "auto") => h("input", { id, name: id, placeholder, autocomplete: "off" });
  const epochs = text("job-n-epochs"), batch = text("job-batch-size"), lr = text("job-lr-multiplier");
  const suffix = text("job-suffix", "physics"), seed = text("job-seed", "random");
  const rank = text("job-lora-r", "16"), alpha = text("job-lora-alpha", "32");
  const grader = h("textarea", { id: "job-grader", rows: 4,
    placeholder: '{"type": "physics_answer", "name": "answer", "reference": "{{item.answer}}"}' });
  const graderField = field("Grader (reinforcement)", grader, "OpenAI's grader object, as JSON");
  graderField.hidden = true;
  method.addEventListener("change", () => { graderField.hidden = method.value !== "reinforcement"; });
  const extra = h("textarea", { id: "job-quanta", rows: 3, placeholder: '{"max_steps": 50}' });

  return h("form", { class: "card", id: "job-form", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const hyperparameters = Object.fromEntries(Object.entries({
        n_epochs: hyper(epochs.value), batch_size: hyper(batch.value),
        learning_rate_multiplier: hyper(lr.value) }).filter(([, v]) => v !== undefined));
      const block = { hyperparameters };
      if (method.value === "reinforcement") block.grader = JSON.parse(grader.value || "null");
      let quanta = {};
      if (extra.value.trim()) quanta = JSON.parse(extra.value);
      const lora = {};
      if (rank.value.trim()) lora.r = hyper(rank.value);
      if (alpha.value.trim()) lora.alpha = hyper(alpha.value);
      if (Object.keys(lora).length) quanta = { ...quanta, lora: { ...(quanta.lora || {}), ...lora } };
      const body = { model: model.value, training_file: training.value,
        method: { type: method.value, [method.value]: block } };
      if (validation.value) body.validation_file = validation.value;
      if (suffix.value.trim()) body.suffix = suffix.value.trim();
      if (seed.value.trim()) body.seed = hyper(seed.value);
      if (Object.keys(quanta).length) body.quanta = quanta;
      const job = await tune("POST", "fine_tuning/jobs", body);
      onCreated(job);
    } catch (err) {
      showError(err instanceof SyntaxError ? new Error(`Not valid JSON: ${err.message}`) : err);
    }
  } },
  h("h2", {}, "New fine-tuning job"),
  h("div", { class: "grid" },
    field("Base model or fine-tuned model", model), field("Training file", training),
    field("Validation file", validation), field("Method", method),
    field("Epochs", epochs), field("Batch size", batch), field("Learning-rate multiplier", lr),
    field("Suffix", suffix), field("Seed", seed), field("LoRA rank", rank), field("LoRA alpha", alpha)),
  graderField,
  field("Quanta options (JSON)", extra, "max_steps, eval sizes, qlora, … (tune/README.md)"),
  h("button", { type: "submit" }, "Create job"));
}

export async function jobs(main) {
  const [models, files, all] = await Promise.all([
    tune("GET", "models"), listAll("files?purpose=fine-tune"), listAll("fine_tuning/jobs")]);
  const usable = files.filter((f) => f.purpose === "fine-tune");
  mount(main, h("h1", {}, "Fine-tuning jobs"),
    table(["Job", "Model", "Status", "Created", "Fine-tuned model"], all.map((j) => [
      link(`#/jobs/${encodeURIComponent(j.id)}`, j.id), j.model,
      h("span", { class: `status status-${j.status}` }, j.status), fmtTime(j.created_at),
      j.fine_tuned_model ? link(`#/models/${encodeURIComponent(j.fine_tuned_model)}`, j.fine_tuned_model) : "-",
    ]), { id: "jobs" }),
    jobForm(models.data, usable, (job) => { window.location.hash = `#/jobs/${encodeURIComponent(job.id)}`; }));
}

export async function jobDetail(main, id) {
  const jobId = decodeURIComponent(id);
  const head = h("div"), chart = h("div", { id: "loss-chart", class: "chart" });
  const eventsArea = h("div");
  let timer = null;
  let stopped = false;

  async function act(action) {
    try { await tune("POST", `fine_tuning/jobs/${encodeURIComponent(jobId)}/${action}`); await refresh(); } catch (err) { showError(err); }
  }

  async function refresh() {
    clearTimeout(timer);  // one polling loop, however often a button refreshes
    const [job, events] = await Promise.all([
      tune("GET", `fine_tuning/jobs/${encodeURIComponent(jobId)}`),
      listAll(`fine_tuning/jobs/${encodeURIComponent(jobId)}/events`)]);
    const metrics = events.filter((e) => e.type === "metrics" && typeof e.data?.total_steps === "number")
      .sort((a, b) => b.data.step - a.data.step)[0];
    const step = metrics ? metrics.data.step : 0, total = metrics ? metrics.data.total_steps : null;
    const canCancel = ACTIVE.has(job.status) || job.status === "paused";
    mount(head,
      h("h1", {}, `Job ${job.id}`),
      h("dl", { class: "facts" },
        h("dt", {}, "Status"), h("dd", {}, h("span", { id: "job-status", class: `status status-${job.status}` }, job.status)),
        h("dt", {}, "Model"), h("dd", {}, job.model),
        h("dt", {}, "Method"), h("dd", {}, job.method?.type || "supervised"),
        h("dt", {}, "Progress"), h("dd", {}, total ? [h("progress", { max: total, value: step }), ` step ${step} of ${total}`] : "-"),
        h("dt", {}, "Estimated finish"), h("dd", {}, job.estimated_finish ? fmtTime(job.estimated_finish) : "-"),
        h("dt", {}, "Fine-tuned model"), h("dd", { id: "job-model" }, job.fine_tuned_model
          ? link(`#/models/${encodeURIComponent(job.fine_tuned_model)}`, job.fine_tuned_model) : "-"),
        job.error?.message ? [h("dt", {}, "Error"), h("dd", { class: "error-text" }, job.error.message)] : null),
      h("div", { class: "actions" },
        ACTIVE.has(job.status) && job.status !== "validating_files" ? h("button", { type: "button", class: "secondary", onclick: () => act("pause") }, "Pause") : null,
        job.status === "paused" ? h("button", { type: "button", onclick: () => act("resume") }, "Resume") : null,
        canCancel ? h("button", { type: "button", class: "danger", onclick: () => act("cancel") }, "Cancel") : null));
    lossChart(chart, lossSeries(events));
    mount(eventsArea, h("h2", {}, "Events"), table(["Time", "Level", "Message"],
      events.map((e) => [fmtTime(e.created_at), e.level, e.message]), { id: "events" }));
    if (!stopped && (ACTIVE.has(job.status))) timer = setTimeout(() => refresh().catch(showError), POLL_MS);
  }

  mount(main, head, h("h2", {}, "Loss"), chart, eventsArea);
  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
