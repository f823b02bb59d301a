// The console's router: one view per page, chosen by the URL's hash.
import { session } from "./api.js";
import { clearError, h, mount, showError } from "./dom.js";
import { batches } from "./views/batches.js";
import { datasets } from "./views/datasets.js";
import { evalDetail, evals, runDetail } from "./views/evals.js";
import { health } from "./views/health.js";
import { jobDetail, jobs } from "./views/jobs.js";
import { modelDetail, models } from "./views/models.js";
import { playground } from "./views/playground.js";
import { signIn } from "./views/signin.js";

const ROUTES = [
  [/^#\/datasets$/, datasets], [/^#\/jobs$/, jobs], [/^#\/jobs\/([^/]+)$/, jobDetail],
  [/^#\/models$/, models], [/^#\/models\/([^/]+)$/, modelDetail],
  [/^#\/evals$/, evals], [/^#\/evals\/([^/]+)$/, evalDetail],
  [/^#\/evals\/([^/]+)\/runs\/([^/]+)$/, runDetail], [/^#\/batches$/, batches],
  [/^#\/playground$/, playground], [/^#\/health$/, health],
];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let leave = null;  // what the current view stops when another replaces it (polling)
let generation = 0;  // which render is current: an older one's late results are dropped

async function render() {
  const current = ++generation;
  clearError();
  if (leave) { leave(); leave = null; }
  if (!session.key) {
    nav.hidden = true;
    // A link into a page (an eval run's report_url) opens that page once signed in.
    signIn(main, () => {
      if (!ROUTES.some(([pattern]) => pattern.test(window.location.hash))) window.location.hash = "#/datasets";
      render();
    });
    return;
  }
  nav.hidden = false;
  const hash = window.location.hash || "#/datasets";
  for (const link of nav.querySelectorAll("a")) {
    link.classList.toggle("active", hash.startsWith(link.getAttribute("href")));
  }
  const route = ROUTES.find(([pattern]) => pattern.test(hash));
  if (!route) {
    mount(main, h("h1", {}, "Not found"), h("p", {}, "No such page."));
    return;
  }
  const [pattern, view] = route;
  // Each view draws into its own element: one that finishes after the user moved on
  // draws into an element no longer on the page.
  const root = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  mount(main, root);
  try {
    const cleanup = await view(root, ...pattern.exec(hash).slice(1));
    if (current !== generation) {
      if (typeof cleanup === "function") cleanup();
    } else if (typeof cleanup === "function") {
      leave = cleanup;
    }
  } catch (err) {
    if (current !== generation || err.status === 401) return;  // signed out: sign-in shows
    mount(root, h("h1", {}, "Something went wrong"), h("p", { class: "error-text" }, err.message));
    showError(err);
  }
}

document.getElementById("signout").addEventListener("click", () => { session.signOut(); render(); });
window.addEventListener("quanta:signed-out", () => render());
window.addEventListener("hashchange", render);
render();
