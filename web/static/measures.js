// Before the waiting room: where the member is today (for their clinician only) and the
// session measures their group chose, on their own device. One question per screen on a
// phone; a questionnaire can be skipped with a reason. Nothing here is ever sent back: the
// server answers "saved", never a score.

import { say } from "./wording.js";

const $ = (id) => document.getElementById(id);
const MEMBER_HEADER = "X-Confide-Member";
const NARROW = "(max-width: 40em)";

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === true) node.setAttribute(k, "");
    else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, v);
  }
  // textContent: questionnaire text is shown as text, never as markup
  if (text) node.textContent = text;
  return node;
}

// the member's own calls: their link's secret in a header, never a cookie
export class MemberApi {
  constructor(sessionId, secret) {
    this.base = `/api/v1/sessions/${encodeURIComponent(sessionId)}/member`;
    this.secret = secret;
  }

  async call(method, path, body) {
    const headers = { Accept: "application/json", [MEMBER_HEADER]: this.secret };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let resp;
    try {
      resp = await fetch(this.base + path, {
        method, headers, credentials: "omit",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      return { ok: false, status: 0, error: { code: "offline", message: "no connection" } };
    }
    const data = await resp.json().catch(() => ({}));
    return { ok: resp.ok, status: resp.status, data, error: data.error || null };
  }
}

function optionLabel(option, count) {
  if (option.label === String(option.value) || count <= 4) return option.label;
  return option.label.startsWith(String(option.value)) ? option.label
    : `${option.value} — ${option.label}`;
}

// Runs questionnaires in `box` (a stage's body) and resolves with the responses, each
// {instrument, answers} or {instrument, skipped}.
export class Questionnaires {
  constructor(box, { title, skipReasons }) {
    this.box = box;
    this.title = title;
    this.skipReasons = skipReasons || [];
  }

  run(instruments) {
    this.instruments = instruments;
    this.answers = instruments.map((f) => f.items.map(() => undefined));
    this.responses = instruments.map(() => null);
    this.at = 0;       // instrument
    this.item = 0;     // question within it (one-per-screen mode)
    return new Promise((resolve) => { this.done = resolve; this.screen(); });
  }

  narrow() { return window.matchMedia(NARROW).matches; }

  // every screen: new content, then focus on its heading so screen readers start there
  render(heading, ...children) {
    const h = el("h2", { id: "measures-screen-title", tabindex: "-1" }, heading);
    this.box.replaceChildren(h, ...children);
    h.focus();
  }

  screen() {
    if (this.at >= this.instruments.length) {
      this.done(this.instruments.map((f, i) => this.responses[i]));
      return;
    }
    const form = this.instruments[this.at];
    if (this.narrow()) this.oneQuestion(form);
    else this.wholeForm(form);
  }

  fieldset(form, index) {
    const item = form.items[index];
    const fs = el("fieldset", { class: "question" });
    fs.append(el("legend", {}, item.text));
    const name = `q-${item.id}`;
    const current = this.answers[this.at][index];
    const choices = form.options.map((o) => ({ value: String(o.value), label: optionLabel(o, form.options.length) }));
    if (item.not_applicable) choices.push({ value: "na", label: item.not_applicable });
    const list = el("div", { class: "options" });
    for (const c of choices) {
      const id = `${name}-${c.value}`;
      const row = el("div", { class: "option" });
      const input = el("input", { type: "radio", id, name, value: c.value });
      input.checked = current !== undefined && String(current === null ? "na" : current) === c.value;
      input.addEventListener("change", () => {
        this.answers[this.at][index] = c.value === "na" ? null : Number(c.value);
        fs.classList.remove("missing");
      });
      row.append(input, el("label", { for: id }, c.label));
      list.append(row);
    }
    fs.append(list);
    return fs;
  }

  intro(form, extra = "") {
    const out = [el("p", { class: "stem" }, form.stem)];
    if (extra) out.unshift(el("p", { class: "progress" }, extra));
    return out;
  }

  buttons(...specs) {
    const nav = el("div", { class: "form-nav" });
    for (const [text, fn, cls] of specs) {
      const b = el("button", { type: "button", class: cls || "" }, text);
      b.addEventListener("click", fn);
      nav.append(b);
    }
    return nav;
  }

  error() { return el("p", { id: "measures-error", class: "error", role: "alert" }); }

  oneQuestion(form) {
    const n = form.items.length;
    const fs = this.fieldset(form, this.item);
    const err = this.error();
    const next = () => {
      if (this.answers[this.at][this.item] === undefined) {
        err.textContent = "Please choose an answer, or skip this questionnaire.";
        fs.classList.add("missing");
        const first = fs.querySelector("input");
        if (first) first.focus();
        return;
      }
      if (this.item + 1 < n) { this.item += 1; this.screen(); return; }
      this.finishForm();
    };
    const back = () => {
      if (this.item > 0) { this.item -= 1; this.screen(); }
    };
    const specs = [];
    if (this.item > 0) specs.push(["Back", back]);
    specs.push([this.item + 1 < n ? "Next" : "Done", next, "primary"]);
    specs.push(["Skip this questionnaire", () => this.skipScreen(form), "link"]);
    this.render(`${form.name}: question ${this.item + 1} of ${n}`,
      ...this.intro(form), fs, err, this.buttons(...specs),
      el("p", { class: "attribution" }, form.attribution));
  }

  wholeForm(form) {
    const sets = form.items.map((_, i) => this.fieldset(form, i));
    const err = this.error();
    const next = () => {
      const missing = this.answers[this.at].findIndex((a) => a === undefined);
      if (missing >= 0) {
        err.textContent = `Please answer question ${missing + 1}, or skip this questionnaire.`;
        sets[missing].classList.add("missing");
        const first = sets[missing].querySelector("input");
        if (first) first.focus();
        return;
      }
      this.finishForm();
    };
    const list = el("ol", { class: "questions" });
    for (const fs of sets) { const li = el("li"); li.append(fs); list.append(li); }
    this.render(form.title, ...this.intro(form, this.progressText()), list, err,
      this.buttons(["Continue", next, "primary"],
        ["Skip this questionnaire", () => this.skipScreen(form), "link"]),
      el("p", { class: "attribution" }, form.attribution));
  }

  progressText() {
    return this.instruments.length > 1
      ? `Questionnaire ${this.at + 1} of ${this.instruments.length}` : "";
  }

  finishForm() {
    const form = this.instruments[this.at];
    this.responses[this.at] = { instrument: form.id, answers: this.answers[this.at].slice() };
    this.at += 1;
    this.item = 0;
    this.screen();
  }

  skipScreen(form) {
    const fs = el("fieldset", { class: "question" });
    fs.append(el("legend", {}, `Why would you like to skip the ${form.name}?`));
    const list = el("div", { class: "options" });
    for (const r of this.skipReasons) {
      const id = `skip-${form.id}-${r.id}`;
      const row = el("div", { class: "option" });
      row.append(el("input", { type: "radio", id, name: `skip-${form.id}`, value: r.id }),
        el("label", { for: id }, r.label));
      list.append(row);
    }
    fs.append(list);
    const err = this.error();
    const skip = () => {
      const chosen = fs.querySelector("input:checked");
      if (!chosen) { err.textContent = "Please choose a reason."; return; }
      this.responses[this.at] = { instrument: form.id, skipped: chosen.value };
      this.at += 1;
      this.item = 0;
      this.screen();
    };
    this.render(`Skip the ${form.name}?`,
      el("p", {}, "That is fine. Your clinician will see that you skipped it and why, and may ask you about it."),
      fs, err, this.buttons(["Skip it", skip, "primary"], ["Back to the questions", () => this.screen()]));
  }
}

// The steps between the group agreement and the waiting room, for a member of a scheduled
// session (a development room has no forms).
export class Arrival {
  constructor(show) {
    this.show = show;
    this.api = null;
    this.forms = null;
    this.submissionId = null;
    // until the group's forms are known, the agreement's button waits: a member who clicked
    // at once would otherwise pass a location the group asks for
    this.loading = false;
  }

  async load(sessionId, secret) {
    if (!sessionId || !secret) return;
    this.loading = true;
    try {
      this.api = new MemberApi(sessionId, secret);
      let got = await this.api.call("GET", "/forms");
      if (!got.ok && got.status !== 401 && got.status !== 403) got = await this.api.call("GET", "/forms");
      if (!got.ok) { this.api = null; return; }
      this.forms = got.data;
    } finally {
      this.loading = false;
    }
    const field = $("location-field");
    field.hidden = !this.forms.ask_location;
    $("prejoin-location").required = Boolean(this.forms.ask_location) && !this.forms.location_given;
    $("location-given").hidden = !this.forms.location_given;
  }

  // the agreement's button waits for a location when the group asks for one
  ready() {
    if (this.loading) return false;
    if (!this.forms || !this.forms.ask_location || this.forms.location_given) return true;
    return $("prejoin-location").value.trim().length > 0;
  }

  pending() {
    if (!this.forms) return [];
    const done = new Set(this.forms.submitted || []);
    return (this.forms.measures_before || []).filter((f) => !done.has(f.id));
  }

  // where the member is, then the measures; false when the member must stay on pre-join
  async beforeLobby(onError) {
    if (!this.api || !this.forms) return true;
    const where = $("prejoin-location").value.trim();
    if (this.forms.ask_location && where) {
      const sent = await this.api.call("PUT", "/location", { location: where });
      if (!sent.ok) {
        onError(say(sent.error && sent.error.code,
          "We could not save where you are. Please try again."));
        return false;
      }
      this.forms.location_given = true;
    }
    const forms = this.pending();
    if (forms.length) await this.measures(forms);
    return true;
  }

  async measures(forms) {
    this.show("measures");
    const box = $("measures-body");
    await this.welcome(box, forms);
    const runner = new Questionnaires(box, { skipReasons: this.forms.skip_reasons });
    const responses = await runner.run(forms);
    // one name for this submission: a retry after a lost answer is recognised, not doubled
    this.submissionId = this.submissionId || (crypto.randomUUID ? crypto.randomUUID()
      : `${Date.now()}-${Math.random().toString(36).slice(2)}`);
    for (;;) {
      const sent = await this.api.call("POST", "/measures",
        { submission_id: this.submissionId, timing: "before", responses });
      const code = sent.error && sent.error.code;
      if (sent.ok || code === "submission_replayed" || code === "measure_already_submitted") break;
      const again = await this.problem(box, say(code, "We could not reach Confide."));
      if (!again) break;
    }
    this.forms.submitted = [...(this.forms.submitted || []), ...forms.map((f) => f.id)];
    await this.thanks(box);
  }

  screen(box, heading, ...children) {
    const h = el("h2", { id: "measures-screen-title", tabindex: "-1" }, heading);
    box.replaceChildren(h, ...children);
    h.focus();
  }

  welcome(box, forms) {
    return new Promise((resolve) => {
      const start = el("button", { type: "button", class: "primary", id: "btn-measures-start" }, "Start");
      start.addEventListener("click", resolve);
      const names = forms.map((f) => f.name).join(" and ");
      this.screen(box, "A few questions before the session",
        el("p", {}, `Your clinician asks these at every session, so that the session's time goes on the session itself: ${names}.`),
        el("p", {}, "Your answers go to your clinician only. Nobody else in the group sees them. You can skip a questionnaire if you would rather not answer it today."),
        start);
    });
  }

  problem(box, message) {
    return new Promise((resolve) => {
      const retry = el("button", { type: "button", class: "primary" }, "Try again");
      const go = el("button", { type: "button" }, "Go to the waiting room without sending");
      retry.addEventListener("click", () => resolve(true));
      go.addEventListener("click", () => resolve(false));
      this.screen(box, "Your answers were not sent",
        el("p", { role: "alert", class: "error" }, message || "We could not reach Confide."),
        retry, go);
    });
  }

  thanks(box) {
    return new Promise((resolve) => {
      const go = el("button", { type: "button", class: "primary", id: "btn-measures-done" }, "Go to the waiting room");
      go.addEventListener("click", resolve);
      this.screen(box, "Thank you",
        el("p", {}, "Your answers have gone to your clinician."),
        el("p", {}, "If you are having thoughts of harming yourself, please tell your clinician today: in the session you can also write to them privately in the chat. If you are in danger now, call 999."),
        go);
    });
  }
}
