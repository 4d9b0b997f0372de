// After the session: the group's session rating (if chosen) and a short feedback form
// modelled on the patient experience questionnaire, shown on the page the member ends on.
// Everything is optional; the page says plainly whether the clinician sees who wrote it.

import { MemberApi, Questionnaires } from "./measures.js";
import { say } from "./wording.js";

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function focusHeading(box, text) {
  const h = el("h3", { id: "after-title", tabindex: "-1" }, text);
  box.replaceChildren(h);
  h.focus();
  return h;
}

// offered once the session has ended for this member (ended by the clinician, or left)
export async function offerAfterSession(sessionId, secret) {
  const box = $("after-session");
  if (!box || !sessionId || !secret) return;
  const api = new MemberApi(sessionId, secret);
  const got = await api.call("GET", "/forms");
  if (!got.ok) return;
  const forms = got.data;
  const done = new Set(forms.submitted || []);
  const rating = (forms.measures_after || []).filter((f) => !done.has(f.id));
  const feedback = forms.feedback && forms.feedback.mode !== "off" && !forms.feedback.given
    ? forms.feedback : null;
  if (!rating.length && !feedback) return;
  box.hidden = false;
  if (rating.length) {
    const runner = new Questionnaires(box, { skipReasons: forms.skip_reasons });
    const responses = await runner.run(rating);
    const id = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-after`;
    await api.call("POST", "/measures", { submission_id: id, timing: "after", responses });
  }
  if (feedback) await feedbackForm(box, api, feedback);
  focusHeading(box, "Thank you");
  box.append(el("p", {}, "You can close this page."));
}

function feedbackForm(box, api, feedback) {
  return new Promise((resolve) => {
    focusHeading(box, "How was today?");
    box.append(el("p", {}, feedback.mode === "anonymous"
      ? "Your answers are anonymous: your clinician will not know which answers are yours."
      : "Your clinician will see these answers with your name in the group."));
    box.append(el("p", {}, "Every question is optional."));
    const form = el("form", { id: "feedback-form", novalidate: "" });
    feedback.questions.forEach((q) => {
      const fs = el("fieldset", { class: "question" });
      fs.append(el("legend", {}, q.label));
      const list = el("div", { class: "options" });
      feedback.answers.forEach((label, value) => {
        const id = `fb-${q.id}-${value}`;
        const row = el("div", { class: "option" });
        row.append(el("input", { type: "radio", id, name: `fb-${q.id}`, value: String(value) }),
          el("label", { for: id }, label));
        list.append(row);
      });
      fs.append(list);
      form.append(fs);
    });
    const comment = el("textarea", { id: "fb-comment", rows: "3", maxlength: String(feedback.max_comment) });
    form.append(el("label", { for: "fb-comment" }, feedback.comment_prompt), comment);
    const err = el("p", { id: "feedback-error", class: "error", role: "alert" });
    const send = el("button", { type: "submit", class: "primary" }, "Send");
    const skip = el("button", { type: "button" }, "No thanks");
    form.append(err, send, skip);
    box.append(form);
    skip.addEventListener("click", resolve);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const answers = {};
      for (const q of feedback.questions) {
        const chosen = form.querySelector(`input[name="fb-${q.id}"]:checked`);
        if (chosen) answers[q.id] = Number(chosen.value);
      }
      const text = comment.value.trim();
      if (!Object.keys(answers).length && !text) { resolve(); return; }
      send.disabled = true;
      const sent = await api.call("POST", "/feedback", { answers, comment: text || null });
      if (sent.ok || (sent.error && sent.error.code === "feedback_already_given")) { resolve(); return; }
      send.disabled = false;
      err.textContent = say(sent.error && sent.error.code, "We could not send this. Please try again.");
    });
  });
}
