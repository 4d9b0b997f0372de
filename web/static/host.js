// The host's view: who waits (with real names, for the clinician only), per-person
// controls, room controls and private alerts. Every action is a command the server decides.

import { fillProfileSelect } from "./profiles.js";
import { Clinical } from "./clinical.js";
import { clearIfSent } from "./chat.js";
import { say } from "./wording.js";

const $ = (id) => document.getElementById(id);
const ROSTER_REFRESH_MS = 5000;

function button(text, action, label, cls) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.dataset.action = action;
  b.setAttribute("aria-label", label);
  if (cls) b.className = cls;
  return b;
}

// the session id named in a grant (its payload is plain base64url JSON; nothing is verified
// here: the server checks every request)
function grantSessionId(grant) {
  try {
    const part = grant.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part)).sid || null;
  } catch { return null; }
}

export class Host {
  constructor(state, notify) {
    this.state = state;
    this.notify = notify;
    this.enabled = false;
    this.sessionId = null;
    // real names stay in this closure: shown beside the pseudonym, never sent anywhere
    this.realNames = new Map();
    this.rosterFetchedAt = 0;
    this.waiting = [];
    this.endArmed = false;
    $("btn-admit-all").addEventListener("click", () => this.run("admit_all"));
    $("btn-mute-all").addEventListener("click", () => this.run("mute_all"));
    $("btn-lock").addEventListener("click", () =>
      this.run(this.state.locked ? "unlock" : "lock"));
    $("btn-pause").addEventListener("click", () =>
      this.run(this.state.paused ? "resume" : "pause"));
    $("btn-focus").addEventListener("click", () =>
      this.run(this.state.focus ? "focus_off" : "focus_on"));
    $("btn-end").addEventListener("click", () => {
      // two steps: ending for everyone cannot be undone
      $("btn-end-confirm").hidden = false;
      $("btn-end-confirm").focus();
    });
    $("btn-end-confirm").addEventListener("click", () => this.run("end"));
    $("lobby-msg-form").addEventListener("submit", (ev) => { ev.preventDefault(); this.sendToLobby(); });
  }

  // a word to the waiting room: to everyone there, or to one person
  async sendToLobby() {
    const input = $("lobby-msg-input");
    const text = input.value.trim();
    if (!text) return;
    const fields = { to: "lobby", text };
    if ($("lobby-msg-to").value) fields.target = $("lobby-msg-to").value;
    $("lobby-msg-error").textContent = "";
    const reply = await this.state.signaling.command("chat", fields);
    if (reply.type === "ok") clearIfSent(input, text);
    else $("lobby-msg-error").textContent = say(reply.code, "Not sent. Please try again.");
  }

  enable(grant) {
    if (this.enabled) return;
    this.enabled = true;
    this.sessionId = grant ? grantSessionId(grant) : null;
    $("host-panel").hidden = false;
    this.fetchRoster();
    // measures, risk flags, where members are today: the clinician's eyes only
    this.clinical = new Clinical(this.sessionId, () => this.renderLobby());
    this.clinical.refresh(true);
  }

  async run(name, fields = {}) {
    const reply = await this.state.signaling.command(name, fields);
    if (reply.type !== "ok") this.notify(say(reply.code));
    return reply;
  }

  async fetchRoster() {
    // development rooms have no session, hence no roster
    if (!this.sessionId || Date.now() - this.rosterFetchedAt < ROSTER_REFRESH_MS) return;
    this.rosterFetchedAt = Date.now();
    try {
      const resp = await fetch(`/api/v1/sessions/${encodeURIComponent(this.sessionId)}/roster`,
        { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!resp.ok) return;
      const body = await resp.json();
      for (const [pid, entry] of Object.entries(body.participants || {})) {
        if (entry && typeof entry.real_name === "string") this.realNames.set(pid, entry.real_name);
      }
      this.renderLobby();
      for (const [pid, tile] of this.state.tiles) this.showRealName(pid, tile);
    } catch { /* the roster is a help, not a requirement */ }
  }

  showRealName(pid, tile) {
    if (!tile.realName) return;
    tile.realName.textContent = this.realNames.has(pid) ? `(${this.realNames.get(pid)})` : "";
  }

  onLobby(waiting) {
    this.waiting = Array.isArray(waiting) ? waiting : [];
    if (this.waiting.some((p) => !this.realNames.has(p.id))) this.fetchRoster();
    if (this.clinical) this.clinical.refresh();
    this.renderLobby();
  }

  renderLobby() {
    if (!this.enabled) return;
    const list = $("lobby-list");
    list.replaceChildren(...this.waiting.map((p) => {
      const li = document.createElement("li");
      li.dataset.participantId = p.id;
      const name = document.createElement("span");
      name.className = "pseudonym";
      name.textContent = p.display_name;
      const real = document.createElement("span");
      real.className = "real-name";
      real.textContent = this.realNames.has(p.id) ? ` (${this.realNames.get(p.id)})` : "";
      const where = document.createElement("span");
      where.className = "lobby-state";
      const reading = p.lobby_state === "prejoin";
      where.textContent = reading ? " — getting ready (agreement, questionnaires)" : " — waiting";
      const admit = button("Admit", "admit", `Admit ${p.display_name}`);
      admit.disabled = reading;
      admit.addEventListener("click", () => this.run("admit", { target: p.id }));
      const decline = button("Decline", "decline", `Decline ${p.display_name}`);
      decline.addEventListener("click", () => this.run("decline", { target: p.id }));
      li.append(name, real, where, admit, decline);
      if (this.clinical) this.clinical.decorate(li, p.id);
      return li;
    }));
    $("lobby-empty").hidden = this.waiting.length > 0;
    const to = $("lobby-msg-to");
    const chosen = to.value;
    const everyone = to.firstElementChild;
    to.replaceChildren(everyone, ...this.waiting.map((p) => {
      const o = document.createElement("option");
      o.value = p.id;
      o.textContent = p.display_name;
      return o;
    }));
    to.value = this.waiting.some((p) => p.id === chosen) ? chosen : "";
    $("btn-admit-all").disabled = !this.waiting.some((p) => p.lobby_state !== "prejoin");
  }

  // controls on a participant's tile (hosts only; never on another host's tile)
  addTileControls(p, tile) {
    if (!this.enabled || p.role === "host" || tile.hostControls) return;
    const box = document.createElement("div");
    box.className = "host-controls";
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", `Controls for ${p.display_name}`);
    const target = { target: p.id };
    const name = () => (this.state.participants.get(p.id) || p).display_name;
    const acts = [
      ["Mute", "mute", "Mute"], ["Allow to unmute", "allow_unmute", "Allow to unmute"],
      ["Stop video", "stop_video", "Stop video of"], ["Allow video", "allow_video", "Allow video of"],
      ["Send to lobby", "send_to_lobby", "Send to the waiting room:"],
      ["Remove", "remove", "Remove from the session:"],
    ];
    for (const [text, action, label] of acts) {
      const b = button(text, action, `${label} ${name()}`, action === "remove" ? "danger" : "");
      b.addEventListener("click", () => this.run(action, target));
      box.append(b);
    }
    const select = document.createElement("select");
    select.className = "enforce-profile";
    select.setAttribute("aria-label", `Privacy profile to enforce for ${name()}`);
    fillProfileSelect(select, this.state.selfState ? this.state.selfState.allowed_profiles : [],
      p.profile, null);
    const enforce = button("Enforce", "enforce_profile", `Enforce this profile for ${name()}`);
    enforce.addEventListener("click", () =>
      this.run("enforce_profile", { target: p.id, profile: select.value }));
    box.append(select, enforce);
    tile.fig.append(box);
    tile.hostControls = box;
    tile.realName = document.createElement("span");
    tile.realName.className = "real-name";
    tile.name.after(tile.realName);
    this.showRealName(p.id, tile);
  }

  // the group's allowed profiles arrive with our own state, after the first tiles
  refreshProfiles(allowed) {
    for (const [pid, tile] of this.state.tiles) {
      const select = tile.hostControls && tile.hostControls.querySelector("select");
      const p = this.state.participants.get(pid);
      if (select) fillProfileSelect(select, allowed, p ? p.profile : null, null);
    }
  }

  onAlert(msg) {
    const entry = { kind: String(msg.kind || ""), participant_id: msg.participant_id || null,
                    message: String(msg.message || ""), details: msg.details || null };
    this.state.alerts.push(entry);
    if (!this.enabled) return;
    if (entry.kind === "risk_indicator" && this.clinical) this.clinical.refresh(true);
    const li = document.createElement("li");
    li.className = `alert alert-${entry.kind}`;
    li.dataset.kind = entry.kind;
    const time = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    li.textContent = `${time} ${entry.message}`;
    if (entry.details) {
      // how to reach a member who dropped out, for this clinician only
      const d = entry.details;
      const lines = [
        `Location today: ${d.location || "not given"}`,
        `Contact: ${d.contact || "none on record"}`,
        `Emergency contact: ${d.emergency_contact || "none on record"}`,
      ];
      const ul = document.createElement("ul");
      ul.className = "alert-details";
      for (const line of lines) {
        const item = document.createElement("li");
        item.textContent = line;
        ul.append(item);
      }
      li.append(ul);
    }
    $("alerts").prepend(li);
    while ($("alerts").children.length > 50) $("alerts").lastElementChild.remove();
  }

  onRoomFlags() {
    const lock = $("btn-lock");
    lock.textContent = this.state.locked ? "Unlock room" : "Lock room";
    lock.setAttribute("aria-pressed", String(this.state.locked));
    const pause = $("btn-pause");
    pause.textContent = this.state.paused ? "Resume group" : "Pause group";
    pause.setAttribute("aria-pressed", String(this.state.paused));
    const focus = $("btn-focus");
    focus.textContent = this.state.focus ? "End focus" : "Focus on me";
    focus.setAttribute("aria-pressed", String(this.state.focus));
  }
}
