// The clinician's view of each member's day, in the host panel only: today's measures with
// change since the last session, the risk flag, where the member said they are and how to
// reach them. Fetched with the clinician's own login (audited by the server); never sent on.

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 1500;

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  // textContent: everything here came from people
  if (text) node.textContent = text;
  return node;
}

function measureText(m) {
  if (m.status === "skipped") return `${m.name}: skipped (${m.skip_reason || "no reason"})`;
  if (m.status !== "completed") return `${m.name}: not given`;
  let text = `${m.name} ${m.total}`;
  if (m.band) text += ` ${m.band}`;
  if (m.previous_total !== null && m.previous_total !== undefined) {
    const d = m.difference > 0 ? `+${m.difference}` : String(m.difference);
    text += ` (last session ${m.previous_total}, ${d}: ${(m.change_label || "").toLowerCase()})`;
  }
  return text;
}

function progressText(p) {
  if (!p || !p.overall_label) return "";
  let text = `Since ${p.previous_date || "last session"}: ${p.overall_label.toLowerCase()}`;
  if (p.reliable_recovery) text += "; reliable recovery";
  else if (p.recovery) text += "; recovery";
  return text;
}

export class Clinical {
  constructor(sessionId, onChange) {
    this.sessionId = sessionId;
    this.onChange = onChange;
    this.data = {};
    this.fetchedAt = 0;
    this.running = null;
  }

  refresh(force = false) {
    if (!this.sessionId) return Promise.resolve();
    if (this.running) return this.running;
    if (!force && Date.now() - this.fetchedAt < REFRESH_MS) return Promise.resolve();
    this.fetchedAt = Date.now();
    this.running = this.load().finally(() => { this.running = null; });
    return this.running;
  }

  async load() {
    try {
      const resp = await fetch(
        `/api/v1/sessions/${encodeURIComponent(this.sessionId)}/clinical`,
        { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!resp.ok) return;
      const body = await resp.json();
      this.data = body.participants || {};
      this.renderPanel();
      if (this.onChange) this.onChange();
    } catch { /* a help to the clinician, never a reason to stop the room */ }
  }

  // under a member waiting in the lobby: their measures, risk flag, location and contacts
  decorate(li, pid) {
    const e = this.data[pid];
    if (!e) return;
    const box = el("div", { class: "clinical" });
    if (e.risk_flag) {
      box.append(el("p", { class: "risk-flag" },
        "⚑ Risk flag: PHQ-9 question 9 above 0. Assess risk today."));
    }
    const done = (e.measures || []).filter((m) => m.status !== "not_given");
    if (done.length) box.append(el("p", { class: "measures-line" }, done.map(measureText).join("; ")));
    const change = progressText(e.progress);
    if (change) box.append(el("p", { class: "measures-line" }, change));
    box.append(el("p", { class: "where" }, `Location today: ${e.location || "not given"}`));
    box.append(el("p", { class: "reach" },
      `Contact: ${e.contact || "none on record"} · Emergency contact: ${e.emergency_contact || "none on record"}`));
    li.append(box);
  }

  renderPanel() {
    const panel = $("clinical-panel");
    if (!panel) return;
    const entries = Object.entries(this.data);
    const shown = entries.filter(([, e]) => (e.measures || []).some((m) => m.status !== "not_given")
      || e.location || e.risk_flag);
    if (!shown.length) {
      panel.replaceChildren(el("p", { id: "clinical-empty" }, "Nothing yet."));
      return;
    }
    const list = el("ul", { class: "clinical-list" });
    // flagged members first: nothing urgent is below the fold
    shown.sort(([, a], [, b]) => Number(b.risk_flag) - Number(a.risk_flag));
    for (const [pid, e] of shown) {
      const li = el("li", { "data-participant-id": pid });
      if (e.risk_flag) li.className = "flagged";
      li.append(el("strong", {}, e.pseudonym));
      if (e.risk_flag) li.append(el("span", { class: "risk-flag" }, " ⚑ Risk flag: PHQ-9 question 9 above 0"));
      for (const m of e.measures || []) li.append(el("p", { class: "measures-line" }, measureText(m)));
      const change = progressText(e.progress);
      if (change) li.append(el("p", { class: "measures-line" }, change));
      if (e.location) li.append(el("p", { class: "where" }, `Location today: ${e.location}`));
      list.append(li);
    }
    panel.replaceChildren(list);
  }
}
