import { events, serve } from "../api.js";
import { h, mount, showError } from "../dom.js";

// One side of the playground: a model picker, the streamed answer and its timings.
function pane(index, models, preselect) {
  const select = h("select", { id: `pg-model-${index}` }, models.map((m) => h("option", { value: m.id }, m.id)));
  if (preselect) select.value = preselect;
  const output = h("pre", { class: "answer", id: `pg-output-${index}`, "aria-live": "polite" });
  const stats = h("p", { class: "muted stats", id: `pg-stats-${index}` });
  const el = h("div", { class: "card pane" }, h("label", { for: select.id }, `Model ${index + 1}`), select, output, stats);

  let controller = null;

  async function run(messages, settings) {
    controller = new AbortController();
    output.textContent = "";
    stats.textContent = "…";
    output.dataset.done = "false";
    const started = performance.now();
    let first = null, usage = null, pieces = 0;
    try {
      const response = await serve("POST", "chat/completions", {
        model: select.value, messages, stream: true, stream_options: { include_usage: true }, ...settings,
      }, { raw: true, signal: controller.signal });
      for await (const chunk of events(response)) {
        const text = chunk.choices?.[0]?.delta?.content;
        if (text) {
          if (first === null) first = performance.now();
          pieces += 1;
          output.append(document.createTextNode(text));
        }
        if (chunk.usage) usage = chunk.usage;
      }
      const end = performance.now();
      // Engines that stream no usage (llama-cpp-python) send one token per chunk.
      const tokens = usage ? usage.completion_tokens : pieces;
      const ttft = first === null ? null : (first - started) / 1000;
      const rate = tokens && first !== null && end > first ? tokens / ((end - first) / 1000) : null;
      stats.textContent = `time to first token ${ttft === null ? "-" : `${ttft.toFixed(2)} s`} · ` +
        `${rate === null ? "-" : rate.toFixed(1)} tokens/s · ${tokens ?? "-"} tokens`;
    } catch (err) {
      stats.textContent = "";
      if (err.name !== "AbortError") showError(err);
    } finally {
      output.dataset.done = "true";
    }
  }
  // Leaving the page stops the generation (the server stops when the stream closes).
  const stop = () => { if (controller) controller.abort(); };
  return { el, run, stop };
}

export async function playground(main) {
  const config = await (await fetch("/console/config.json")).json();
  if (!config.serve) {
    mount(main, h("h1", {}, "Playground"), h("p", { class: "muted" }, "This console is not connected to a serving API (quanta console --serve-url)."));
    return;
  }
  const listed = (await serve("GET", "models")).data;
  const tuned = listed.find((m) => m.id.startsWith("ft:"));
  const left = pane(0, listed, listed[0]?.id), right = pane(1, listed, tuned ? tuned.id : listed[0]?.id);
  let gone = false;  // the user left the page
  const prompt = h("textarea", { id: "pg-prompt", rows: 3, placeholder: "Ask a physics question…" });
  const system = h("input", { id: "pg-system", placeholder: "optional system message", autocomplete: "off" });
  const temperature = h("input", { id: "pg-temperature", type: "number", min: 0, max: 2, step: 0.1, value: 0 });
  const maxTokens = h("input", { id: "pg-max-tokens", type: "number", min: 1, max: 4096, value: 128 });

  const form = h("form", { class: "card", id: "pg-form", onsubmit: async (event) => {
    event.preventDefault();
    if (!prompt.value.trim()) return;
    const messages = [];
    if (system.value.trim()) messages.push({ role: "system", content: system.value });
    messages.push({ role: "user", content: prompt.value });
    const settings = { temperature: Number(temperature.value), max_tokens: Number(maxTokens.value) };
    const button = form.querySelector("button");
    button.disabled = true;
    // One after the other: on a CPU server two generations would share the cores (and
    // llama-cpp-python swaps models between requests), so the timings would mean nothing.
    try {
      await left.run(messages, settings);
      if (!gone) await right.run(messages, settings);
    } finally { button.disabled = false; }
  } },
  h("label", { for: "pg-prompt" }, "Prompt"), prompt,
  h("div", { class: "grid" },
    h("div", { class: "field" }, h("label", { for: "pg-system" }, "System"), system),
    h("div", { class: "field" }, h("label", { for: "pg-temperature" }, "Temperature"), temperature),
    h("div", { class: "field" }, h("label", { for: "pg-max-tokens" }, "Max tokens"), maxTokens)),
  h("button", { type: "submit" }, "Send to both"));

  mount(main, h("h1", {}, "Playground"),
    h("p", { class: "muted" }, "The same prompt and sampling settings, streamed from two models side by side (one after the other, so each one's timings are its own)."),
    form, h("div", { class: "panes" }, left.el, right.el));
  return () => { gone = true; left.stop(); right.stop(); };
}
