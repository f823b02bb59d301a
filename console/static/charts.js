// Loss curves drawn by plotly.js (served from the installed plotly package).

export function lossChart(el, series, yTitle = "loss") {
  const traces = Object.entries(series).filter(([, points]) => points.length).map(([name, points]) => ({
    x: points.map((p) => p[0]), y: points.map((p) => p[1]), name,
    type: "scatter", mode: points.length > 40 ? "lines" : "lines+markers",
  }));
  el.dataset.points = String(traces.reduce((n, t) => n + t.x.length, 0));
  if (!window.Plotly) return;
  window.Plotly.react(el, traces, {
    margin: { t: 16, r: 12, b: 44, l: 52 }, height: 300,
    xaxis: { title: { text: "step" } }, yaxis: { title: { text: yTitle } },
    legend: { orientation: "h", y: -0.25 },
  }, { displayModeBar: false, responsive: true });
}

// Metrics events of a job -> {train_loss: [[step, value]], valid_loss: ..., ...}.
export function lossSeries(events) {
  const series = { train_loss: [], valid_loss: [], full_valid_loss: [] };
  const sorted = events.filter((e) => e.type === "metrics" && e.data)
    .sort((a, b) => (a.data.step - b.data.step) || (a.created_at - b.created_at));
  for (const event of sorted) {
    for (const name of Object.keys(series)) {
      if (typeof event.data[name] === "number") series[name].push([event.data.step, event.data[name]]);
    }
  }
  return series;
}
