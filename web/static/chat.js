// In-room chat: plain text only, to everyone or privately to the clinician.
// Messages are rendered with textContent; nothing in them is fetched, linked or previewed.

import { say } from "./wording.js";

const $ = (id) => document.getElementById(id);

const DENIALS = {
  chat_rate_limited: "You are sending messages quickly; please wait a moment and try again.",
  chat_disabled: "Group chat is off for this session. You can still write privately to the clinician.",
  no_host_present: "The clinician is not in the room right now.",
  not_admitted: "You can message the group once you are in the room.",
};

// a message is confirmed a moment after it is sent: clear the field then only if it still
// holds what was sent, since the writer may already be typing the next one
export function clearIfSent(input, text) {
  if (input.value.trim() === text) input.value = "";
}

function timeOf(tsMs) {
  const d = new Date(typeof tsMs === "number" ? tsMs : Date.now());
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export class Chat {
  constructor(state) {
    this.state = state;
    $("chat-form").addEventListener("submit", (ev) => { ev.preventDefault(); this.send(); });
    $("lobby-form").addEventListener("submit", (ev) => { ev.preventDefault(); this.sendFromLobby(); });
  }

  // from the waiting room: to the clinician alone (the server allows nothing else there)
  async sendFromLobby() {
    const input = $("lobby-input");
    const text = input.value.trim();
    if (!text || !this.state.signaling) return;
    $("lobby-error").textContent = "";
    const reply = await this.state.signaling.command("chat", { to: "host", text });
    if (reply.type === "ok") clearIfSent(input, text);
    else $("lobby-error").textContent = DENIALS[reply.code] || say(reply.code, "Not sent. Please try again.");
  }

  // show or hide choices that the rules or the role make pointless
  configure({ isHost, chatEnabled }) {
    const to = $("chat-to");
    to.hidden = isHost;
    to.previousElementSibling.hidden = isHost;
    const all = to.querySelector("option[value=all]");
    all.disabled = !chatEnabled && !isHost;
    if (all.disabled) to.value = "host";
  }

  async send() {
    const input = $("chat-input");
    const text = input.value.trim();
    if (!text || !this.state.signaling) return;
    const to = this.state.me && this.state.me.role === "host" ? "all" : $("chat-to").value;
    $("chat-error").textContent = "";
    const reply = await this.state.signaling.command("chat", { to, text });
    if (reply.type === "ok") {
      clearIfSent(input, text);
    } else {
      $("chat-error").textContent = DENIALS[reply.code] || say(reply.code, "Not sent. Please try again.");
    }
  }

  // a message from the server: {from, display_name, to, text, ts_ms}, shown in the list `logId`
  receive(msg, logId = "chat-log") {
    const entry = {
      from: String(msg.from || ""), display_name: String(msg.display_name || ""),
      to: ["host", "lobby"].includes(msg.to) ? msg.to : "all", text: String(msg.text || ""), ts_ms: msg.ts_ms,
    };
    this.state.chat.push(entry);
    const li = document.createElement("li");
    li.className = entry.to === "all" ? "chat-msg" : "chat-msg private";
    const who = document.createElement("span");
    who.className = "chat-who";
    const mine = this.state.me && entry.from === this.state.me.id;
    who.textContent = mine ? "You" : entry.display_name;
    const meta = document.createElement("span");
    meta.className = "chat-meta";
    const where = entry.to === "host" ? " · private to the clinician"
      : entry.to === "lobby" ? " · to the waiting room" : "";
    meta.textContent = ` ${timeOf(entry.ts_ms)}${where}`;
    const body = document.createElement("p");
    body.className = "chat-text";
    body.textContent = entry.text;
    li.append(who, meta, body);
    const log = $(logId);
    log.append(li);
    // keep the page light in a long session
    while (log.children.length > 200) log.firstElementChild.remove();
    li.scrollIntoView({ block: "nearest" });
    return entry;
  }
}
