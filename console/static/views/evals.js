// OpenAI's Evals API: an eval's runs side by side (one column per run, by model), a run's
// graded output items page by page, and a form that runs an eval again on another model.
import { listAll, tune } from "../api.js";
import { fmtDuration, fmtTime, h, link, mount, pct, showError, table } from "../dom.js";
import { messagesView } from "./datasets.js";

const ACTIVE = new Set(["queued", "in_progress"]);
const POLL_MS = 2000;
const PAGE_SIZE = 10;
// Data sources that sample a model: the ones a run can repeat on another model.
const SAMPLING = new Set(["completions", "responses"]);

const enc = encodeURIComponent;
const evalPath = (evalId) => `evals/${enc(evalId)}`;
const runPath = (evalId, runId) => `${evalPath(evalId)}/runs/${enc(runId)}`;
const runHash = (evalId, runId) => `#/evals/${enc(evalId)}/runs/${enc(runId)}`;

function statusBadge(value, id) {
  return h("span", { id, class: `status status-${String(value).replace(/[^a-z_]/g, "")}` }, value);
}

// "80.0% (8/10)", or "-" when nothing was graded.
function rate(passed, graded) {
  if (!graded) return h("span", { class: "muted" }, "-");
  return [pct(passed / graded), " ", h("small", { class: "muted" }, `(${passed}/${graded})`)];
}

// Runs and items name a criterion by its id (`<name>-<uuid>`, as OpenAI's do); pages show
// the name the eval gave it.
function criterionLabel(evaluation, key) {
  const criterion = (evaluation.testing_criteria || []).find((c) => c.id === key);
  return criterion ? criterion.name : key;
}

function criterionNames(evaluation, runs) {
  const names = [];
  const add = (name) => { if (typeof name === "string" && !names.includes(name)) names.push(name); };
  for (const run of runs) for (const r of run.per_testing_criteria_results || []) add(r.testing_criteria);
  if (!names.length) for (const c of evaluation.testing_criteria || []) add(c.id || c.name);
  return names;
}

function criterionResult(run, name) {
  return (run.per_testing_criteria_results || []).find((r) => r.testing_criteria === name);
}

function usage(run) {
  const total = { invocation_count: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cached_tokens: 0 };
  for (const u of run.per_model_usage || []) for (const key of Object.keys(total)) total[key] += u[key] || 0;
  return total;
}

// How long a run took: from its creation to its last graded item; its status until then.
function elapsed(run, lastItemAt) {
  if (typeof lastItemAt === "number") {
    const time = fmtDuration(lastItemAt - run.created_at);
    return ACTIVE.has(run.status) ? `${time} so far` : time;
  }
  return run.status === "queued" ? "queued" : run.status === "in_progress" ? "started" : "-";
}

// Items are listed in the data source's order and graded a few at a time (the server's
// eval concurrency): the last one graded is among the last few listed.
const LAST_ITEMS = 20;

async function lastItemAt(evalId, run) {
  if (run.status === "queued") return null;
  const page = await tune("GET", `${runPath(evalId, run.id)}/output_items?order=desc&limit=${LAST_ITEMS}`);
  const times = page.data.map((item) => item.created_at).filter((at) => typeof at === "number");
  return times.length ? Math.max(...times) : null;
}

function cancelButton(evalId, run, after) {
  if (!ACTIVE.has(run.status)) return null;
  return h("button", { type: "button", class: "danger", "data-cancel": run.id, onclick: async (event) => {
    event.target.disabled = true;
    try { await tune("POST", runPath(evalId, run.id)); await after(); } catch (err) { showError(err); }
  } }, "Cancel");
}

export async function evals(main) {
  const all = await listAll("evals");
  mount(main, h("h1", {}, "Evals"),
    h("p", { class: "muted" }, "Evaluations made with OpenAI's Evals API (client.evals.create); ",
      "open one to compare its runs and run it again on another model."),
    table(["Eval", "Id", "Testing criteria", "Created"], all.map((e) => [
      link(`#/evals/${enc(e.id)}`, e.name || e.id), h("code", {}, e.id),
      (e.testing_criteria || []).map((c) => `${c.name} (${c.type})`).join(", ") || "-",
      fmtTime(e.created_at)]), { id: "evals", class: "stack" }));
}

// One column per run, by model: each criterion's pass rate, tokens, time and status.
function comparison(evaluation, runs, lastItems, refresh) {
  const names = criterionNames(evaluation, runs);
  const best = (values) => Math.max(...values.filter((v) => typeof v === "number"));
  const rows = names.map((name) => {
    const rates = runs.map((run) => {
      const r = criterionResult(run, name);
      return r && r.passed + r.failed ? r.passed / (r.passed + r.failed) : null;
    });
    const top = best(rates);
    return h("tr", { "data-criterion": criterionLabel(evaluation, name) },
      h("th", { scope: "row" }, criterionLabel(evaluation, name)), runs.map((run, i) => {
      const r = criterionResult(run, name);
      return h("td", { class: rates[i] === top && runs.length > 1 ? "best" : null, "data-run": run.id },
        r ? rate(r.passed, r.passed + r.failed) : rate(0, 0));
    }));
  });
  const line = (label, cell, attrs = {}) => h("tr", attrs, h("th", { scope: "row" }, label),
    runs.map((run, i) => h("td", { "data-run": run.id }, cell(run, i))));
  return table(["", ...runs.map((run) => h("span", { class: "run-head" },
    link(runHash(evaluation.id, run.id), run.model || run.name || run.id),
    run.name && run.name !== run.model ? [h("br"), h("small", { class: "muted" }, run.name)] : null))], [
    ...rows,
    line("All criteria", (run) => rate(run.result_counts?.passed || 0, run.result_counts?.total || 0), { class: "overall" }),
    line("Errored", (run) => String(run.result_counts?.errored ?? 0)),
    line("Tokens", (run) => {
      const u = usage(run);
      return [String(u.total_tokens), " ", h("small", { class: "muted" },
        `(${u.prompt_tokens} in, ${u.completion_tokens} out, ${u.invocation_count} calls)`)];
    }),
    line("Time", (run, i) => elapsed(run, lastItems[i]), { class: "time" }),
    line("Created", (run) => fmtTime(run.created_at)),
    line("Status", (run) => [statusBadge(run.status), " ", cancelButton(evaluation.id, run, refresh)]),
  ], { id: "eval-runs", class: "compare" });
}

// "Run this eval again on model X with the data source of run Y": Y's template, items and
// sampling parameters, X's answers.
function runForm(evaluation, models, onCreated) {
  const model = h("select", { id: "run-model" }, models.map((m) => h("option", { value: m.id }, m.id)));
  const source = h("select", { id: "run-source" });
  const name = h("input", { id: "run-name", placeholder: "the model's name", autocomplete: "off" });
  const note = h("p", { id: "run-form-status", class: "muted" });
  let sources = [];
  const form = h("form", { class: "card", id: "run-form", onsubmit: async (event) => {
    event.preventDefault();
    const from = sources.find((run) => run.id === source.value);
    if (!from) return;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const body = { data_source: { ...from.data_source, model: model.value } };
      if (name.value.trim()) body.name = name.value.trim();
      const run = await tune("POST", `${evalPath(evaluation.id)}/runs`, body);
      note.textContent = `Run ${run.id} queued on ${run.model}.`;
      name.value = "";
      await onCreated(run);
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  } },
  h("h2", {}, "Run again on another model"),
  h("div", { class: "grid" },
    h("div", { class: "field" }, h("label", { for: "run-model" }, "Model"), model),
    h("div", { class: "field" }, h("label", { for: "run-source" }, "Same data source as run"), source),
    h("div", { class: "field" }, h("label", { for: "run-name" }, "Run name"), name)),
  h("button", { type: "submit" }, "Start run"), note);

  // The runs whose data source samples a model, newest first; the choice is kept.
  function update(runs) {
    sources = runs.filter((run) => SAMPLING.has(run.data_source?.type)).reverse();
    const chosen = source.value;
    mount(source, sources.map((run) => h("option", { value: run.id },
      `${run.name || run.id} (${run.model || "-"}, ${run.data_source.type})`)));
    if (sources.some((run) => run.id === chosen)) source.value = chosen;
    form.querySelector("button").disabled = !sources.length;
    if (!sources.length) {
      note.textContent = "No run of this eval samples a model yet: start one with the API "
        + "(client.evals.runs.create with a completions data source) and it can be repeated here.";
    }
  }
  return { form, update };
}

export async function evalDetail(main, id) {
  const evalId = decodeURIComponent(id);
  const [evaluation, models] = await Promise.all([tune("GET", evalPath(evalId)), tune("GET", "models")]);
  const compareArea = h("div");
  const finished = new Map();  // run id -> its last item's time, once the run is over
  const { form, update } = runForm(evaluation, models.data, () => refresh());
  let timer = null;
  let stopped = false;

  async function refresh() {
    clearTimeout(timer);  // one polling loop, however often a button refreshes
    // Oldest first: the API lists them in creation order (finer than created_at's seconds).
    const runs = await listAll(`${evalPath(evalId)}/runs?order=asc`);
    const lastItems = await Promise.all(runs.map(async (run) => {
      if (finished.has(run.id)) return finished.get(run.id);
      const at = await lastItemAt(evalId, run);
      if (!ACTIVE.has(run.status)) finished.set(run.id, at);
      return at;
    }));
    if (stopped) return;
    mount(compareArea, runs.length ? comparison(evaluation, runs, lastItems, refresh)
      : h("p", { id: "eval-runs", class: "muted" }, "No runs yet."));
    update(runs);
    if (runs.some((run) => ACTIVE.has(run.status))) timer = setTimeout(() => refresh().catch(showError), POLL_MS);
  }

  mount(main,
    h("p", {}, link("#/evals", "← Evals")),
    h("h1", {}, evaluation.name || evaluation.id),
    h("dl", { class: "facts", id: "eval-facts" },
      h("dt", {}, "Id"), h("dd", {}, evaluation.id),
      h("dt", {}, "Items"), h("dd", {}, evaluation.data_source_config?.type || "-"),
      h("dt", {}, "Testing criteria"), h("dd", {}, h("ul", { class: "plain" },
        (evaluation.testing_criteria || []).map((c) => h("li", {}, h("strong", {}, c.name), ` ${c.type}`)))),
      h("dt", {}, "Created"), h("dd", {}, fmtTime(evaluation.created_at))),
    h("h2", {}, "Runs side by side"), compareArea, form);
  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}

function scoreText(score) {
  return typeof score === "number" ? String(Number.isInteger(score) ? score : score.toFixed(3)) : "-";
}

function itemCard(evaluation, item) {
  const sample = item.sample || {};
  return h("div", { class: "card output-item", "data-item": item.id },
    h("div", { class: "item-head" },
      h("strong", {}, `Item ${item.datasource_item_id}`), " ", statusBadge(item.status), " ",
      (item.results || []).map((r) => h("span", { class: `grade ${r.passed ? "pass" : "fail"}` },
        `${r.metadata?.name || criterionLabel(evaluation, r.name)}: ${scoreText(r.score)} ${r.passed ? "passed" : "failed"}`))),
    h("div", { class: "pair" },
      h("div", {}, h("h4", {}, "Item"), h("pre", { class: "answer item" }, JSON.stringify(item.datasource_item, null, 2))),
      h("div", {}, h("h4", {}, "Sample output"),
        sample.error?.message ? h("p", { class: "error-text" }, sample.error.message) : null,
        sample.output?.length ? messagesView(sample.output) : h("p", { class: "muted" }, "No output."))));
}

export async function runDetail(main, eid, rid) {
  const evalId = decodeURIComponent(eid), runId = decodeURIComponent(rid);
  const [evaluation, first] = await Promise.all([tune("GET", evalPath(evalId)), tune("GET", runPath(evalId, runId))]);
  const head = h("div"), items = h("div", { id: "output-items" });
  const filter = h("select", { id: "items-status" },
    h("option", { value: "" }, "all"), h("option", { value: "pass" }, "passed"), h("option", { value: "fail" }, "failed"));
  const cursors = [];  // the `after` of each earlier page, to go back
  let after = null;
  let timer = null;
  let stopped = false;

  function facts(run, lastAt) {
    const counts = run.result_counts || {};
    const u = usage(run);
    const source = run.data_source?.source || {};
    mount(head,
      h("p", {}, link(`#/evals/${enc(evalId)}`, `← ${evaluation.name || evaluation.id}`)),
      h("h1", {}, run.name || run.id),
      h("dl", { class: "facts", id: "run-facts" },
        h("dt", {}, "Run"), h("dd", {}, run.id),
        h("dt", {}, "Model"), h("dd", {}, run.model || "-"),
        h("dt", {}, "Status"), h("dd", {}, statusBadge(run.status, "run-status"), " ", cancelButton(evalId, run, refreshRun)),
        h("dt", {}, "Items"), h("dd", { id: "run-counts" },
          `${counts.passed ?? 0} passed, ${counts.failed ?? 0} failed, ${counts.errored ?? 0} errored of ${counts.total ?? 0}`),
        (run.per_testing_criteria_results || []).map((r) => [h("dt", {}, criterionLabel(evaluation, r.testing_criteria)),
          h("dd", {}, rate(r.passed, r.passed + r.failed))]),
        h("dt", {}, "Tokens"), h("dd", {}, `${u.total_tokens} (${u.prompt_tokens} in, ${u.completion_tokens} out, ${u.invocation_count} calls)`),
        h("dt", {}, "Time"), h("dd", {}, elapsed(run, lastAt)),
        h("dt", {}, "Data source"), h("dd", {}, [run.data_source?.type, source.type, source.id].filter(Boolean).join(" · ") || "-"),
        h("dt", {}, "Created"), h("dd", {}, fmtTime(run.created_at)),
        run.error?.message ? [h("dt", {}, "Error"), h("dd", { class: "error-text" }, run.error.message)] : null));
  }

  async function refreshRun(known) {
    clearTimeout(timer);
    const run = known || await tune("GET", runPath(evalId, runId));
    const lastAt = await lastItemAt(evalId, run);
    if (stopped) return;
    facts(run, lastAt);
    if (ACTIVE.has(run.status)) timer = setTimeout(() => refreshRun().catch(showError), POLL_MS);
  }

  async function loadItems() {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (after) query.set("after", after);
    if (filter.value) query.set("status", filter.value);
    const page = await tune("GET", `${runPath(evalId, runId)}/output_items?${query}`);
    if (stopped) return;
    const start = cursors.length * PAGE_SIZE;
    const go = (step) => async () => {
      if (step > 0) { cursors.push(after); after = page.data[page.data.length - 1].id; } else { after = cursors.pop() ?? null; }
      await loadItems().catch(showError);
    };
    mount(items,
      page.data.length ? page.data.map((item) => itemCard(evaluation, item)) : h("p", { class: "muted" }, "No output items."),
      h("div", { class: "actions pager" },
        h("button", { type: "button", class: "secondary", id: "items-prev", disabled: !cursors.length, onclick: go(-1) }, "Previous"),
        h("span", { id: "items-range", class: "muted" },
          page.data.length ? `Items ${start + 1} to ${start + page.data.length}` : ""),
        h("button", { type: "button", class: "secondary", id: "items-next", disabled: !page.has_more, onclick: go(1) }, "Next")));
  }

  filter.addEventListener("change", () => { cursors.length = 0; after = null; loadItems().catch(showError); });
  mount(main, head,
    h("h2", {}, "Output items"),
    h("form", { class: "inline", onsubmit: (event) => event.preventDefault() },
      h("label", { for: "items-status" }, "Show"), filter),
    items);
  await Promise.all([refreshRun(first), loadItems()]);
  return () => { stopped = true; clearTimeout(timer); };
}
