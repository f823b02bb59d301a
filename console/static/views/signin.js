import { session, tune } from "../api.js";
import { h, mount, showError } from "../dom.js";

export function signIn(main, done) {
  const input = h("input", { type: "password", id: "api-key", name: "api-key",
    autocomplete: "off", required: true, placeholder: "qk-…" });
  const form = h("form", { class: "card narrow", onsubmit: async (event) => {
    event.preventDefault();
    session.signIn(input.value.trim());
    try {
      await tune("GET", "fine_tuning/jobs?limit=1");  // the key is checked by the API
      done();
    } catch (err) {
      session.signOut();
      showError(err);
    }
  } },
  h("h1", {}, "Sign in"),
  h("p", { class: "muted" }, "Use a Quanta API key (quanta keys create TENANT). It is kept for this browser tab only."),
  h("label", { for: "api-key" }, "API key"), input,
  h("button", { type: "submit" }, "Sign in"));
  mount(main, form);
  input.focus();
}
