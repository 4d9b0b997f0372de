// The host's pre-session checklist for one session (/cso/host-checklist.html#<session id>).
import { api, me } from "/clinician/api.js";

const $ = (id) => document.getElementById(id);
const sessionId = decodeURIComponent(window.location.hash.slice(1));

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function guarded(fn) {
  $("status").textContent = "";
  try {
    await fn();
  } catch (err) {
    if (err.status === 401) window.location.assign("/login");
    else $("status").textContent = err.message;
  }
}

async function showGate() {
  const gate = await api("GET", `/sessions/${encodeURIComponent(sessionId)}/safety-gate`);
  $("gate-summary").textContent = gate.open
    ? "Everything is in place: you can open the lobby."
    : "The lobby cannot open until these are met:";
  $("gate-unmet").replaceChildren(...gate.unmet.map((u) => el("li", { text: u.message })));
}

async function showChecklist() {
  const { checklist } = await api("GET", `/sessions/${encodeURIComponent(sessionId)}/host-checklist`);
  $("host-items").replaceChildren(
    ...checklist.items.map((item) => {
      const id = `host-${item.id}`;
      const box = el("input", { type: "checkbox", id, value: item.id });
      box.checked = checklist.confirmed.includes(item.id);
      return el("div", {}, box, el("label", { for: id, text: item.text }));
    }),
  );
}

$("host-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    const confirmed = [...document.querySelectorAll("#host-items input:checked")].map((b) => b.value);
    await api("PUT", `/sessions/${encodeURIComponent(sessionId)}/host-checklist`, { confirmed });
    await Promise.all([showChecklist(), showGate()]);
  });
});

guarded(async () => {
  await me();
  $("back-link").setAttribute("href", `/clinician/#/sessions/${encodeURIComponent(sessionId)}`);
  await Promise.all([showChecklist(), showGate()]);
});
