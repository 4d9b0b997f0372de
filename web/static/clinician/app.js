// The clinician's pages: groups, a group's roster and sessions, a session's invite links.
// Everything is drawn with textContent, never innerHTML: names come from people.
import { api, logout, me } from "./api.js";

const $ = (id) => document.getElementById(id);
const views = ["groups-view", "group-view", "session-view"];
// links issued in this page view: shown once, never fetched again
const freshLinks = new Map();

function show(view) {
  for (const id of views) $(id).hidden = id !== view;
}

function say(message) {
  $("status").textContent = message || "";
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function button(label, accessibleName, onclick) {
  return el("button", { type: "button", "aria-label": accessibleName, text: label, onclick });
}

async function guarded(fn) {
  say("");
  try {
    await fn();
  } catch (err) {
    if (err.status === 401) window.location.assign("/login");
    else say(err.message);
  }
}

async function showGroups() {
  const { groups } = await api("GET", "/groups");
  const list = $("group-list");
  list.replaceChildren(
    ...groups.map((g) => el("li", {}, el("a", { href: `#/groups/${g.id}`, text: g.name }))),
  );
  if (!groups.length) list.append(el("li", { class: "muted", text: "No groups yet." }));
  show("groups-view");
}

let currentGroup = null;
let currentRules = {};

async function showGroup(groupId) {
  currentGroup = groupId;
  const [{ group }, { members }, { sessions }] = await Promise.all([
    api("GET", `/groups/${groupId}`),
    api("GET", `/groups/${groupId}/members`),
    api("GET", `/groups/${groupId}/sessions`),
  ]);
  $("group-title").textContent = group.name;
  currentRules = group.rules || {};
  $("rule-names-hidden").checked = Boolean(currentRules.names_hidden);
  $("rule-audio-only").checked = Boolean(currentRules.audio_only_default);
  $("rules-status").textContent = "";
  $("roster-body").replaceChildren(
    ...members.map((m) =>
      el(
        "tr",
        {},
        el("td", { text: m.pseudonym + (m.active ? "" : " (left)") }),
        el("td", { class: "real-name", text: m.real_name }),
        el("td", { text: m.contact || "" }),
        el("td", { text: m.emergency_contact || "" }),
        el(
          "td",
          {},
          button("Change pseudonym", `Change pseudonym of ${m.pseudonym}`, () =>
            guarded(async () => {
              const next = window.prompt(`New pseudonym for ${m.pseudonym}`, m.pseudonym);
              if (!next) return;
              await api("PATCH", `/groups/${groupId}/members/${m.id}`, { pseudonym: next });
              await showGroup(groupId);
            }),
          ),
          button("Edit contacts", `Edit contacts of ${m.pseudonym}`, () =>
            guarded(async () => {
              const contact = window.prompt(`Contact (phone or email) of ${m.pseudonym}`, m.contact || "");
              if (contact === null) return;
              const emergency = window.prompt(
                `Emergency contact (name and number) of ${m.pseudonym}`, m.emergency_contact || "");
              if (emergency === null) return;
              // an empty answer clears the field
              await api("PATCH", `/groups/${groupId}/members/${m.id}`, {
                contact: contact.trim() || null, emergency_contact: emergency.trim() || null,
              });
              await showGroup(groupId);
            }),
          ),
        ),
      ),
    ),
  );
  $("session-list").replaceChildren(
    ...sessions.map((s) =>
      el(
        "tr",
        {},
        el("td", { text: new Date(s.starts_at).toLocaleString() }),
        el("td", { text: String(s.duration_min) }),
        el("td", { text: s.status }),
        el(
          "td",
          {},
          el("a", {
            href: `#/sessions/${s.id}`,
            "aria-label": `Open session of ${new Date(s.starts_at).toLocaleString()}`,
            text: "Open",
          }),
        ),
      ),
    ),
  );
  showSettings(group);
  $("group-export").href = `/api/v1/groups/${groupId}/measures.csv`;
  show("group-view");
}

function showSettings(group) {
  currentRules = group.rules;
  const chosen = new Set(group.rules.measures || []);
  for (const box of document.querySelectorAll('#settings-form input[name="measure"]')) {
    box.checked = chosen.has(box.value);
  }
  $("ask-location").checked = group.rules.ask_location !== false;
  $("focus-rule").checked = group.rules.focus === true;
  $("clinician-profile").value = group.rules.clinician_profile || "";
  const mode = group.rules.feedback || "off";
  for (const radio of document.querySelectorAll('#settings-form input[name="feedback"]')) {
    radio.checked = radio.value === mode;
  }
  $("late-cutoff").value = String(group.rules.late_join_cutoff_min ?? 15);
  $("settings-saved").textContent = "";
}

async function showSession(sessionId) {
  const { session } = await api("GET", `/sessions/${sessionId}`);
  currentGroup = session.group_id;
  const { invites } = await api("GET", `/sessions/${sessionId}/invites`);
  $("session-title").textContent = `Session on ${new Date(session.starts_at).toLocaleString()}`;
  $("session-summary").textContent = `${session.duration_min} minutes, status: ${session.status}`;
  for (const b of document.querySelectorAll("[data-status]")) {
    b.onclick = () =>
      guarded(async () => {
        await api("POST", `/sessions/${sessionId}/status`, { status: b.dataset.status });
        await showSession(sessionId);
      });
  }
  // the host's own pre-session checklist is part of the safety gate
  $("host-checklist-link").href = `/cso/host-checklist.html#${sessionId}`;
  $("session-export").href = `/api/v1/sessions/${sessionId}/measures.csv`;
  const { feedback } = await api("GET", `/sessions/${sessionId}/feedback`);
  $("feedback-list").replaceChildren(
    ...feedback.map((f) =>
      el(
        "tr",
        {},
        el("td", { text: f.pseudonym || "anonymous" }),
        el("td", { text: Object.entries(f.answers).map(([q, a]) => `${q}: ${a}`).join("; ") }),
        el("td", { text: f.comment || "" }),
      ),
    ),
  );
  $("host-join-button").onclick = () =>
    guarded(async () => {
      const { grant } = await api("POST", `/sessions/${sessionId}/host-grant`, {});
      window.open(`/room#grant=${grant}`, "_blank", "noopener");
    });
  $("issue-all-button").onclick = () =>
    guarded(async () => {
      const { invites: issued } = await api("POST", `/sessions/${sessionId}/invites`, { all: true });
      for (const inv of issued) freshLinks.set(inv.id, inv.url);
      await showSession(sessionId);
    });
  $("invite-list").replaceChildren(
    ...invites.map((inv) => {
      const url = freshLinks.get(inv.id);
      const actions = el("td", {});
      if (url) {
        actions.append(
          button("Copy", `Copy link for ${inv.pseudonym}`, () =>
            navigator.clipboard.writeText(url).then(() => say(`Link for ${inv.pseudonym} copied.`)),
          ),
        );
      }
      if (inv.state === "active" || inv.state === "redeemed") {
        actions.append(
          button("Revoke", `Revoke link for ${inv.pseudonym}`, () =>
            guarded(async () => {
              await api("POST", `/invites/${inv.id}/revoke`, {});
              await showSession(sessionId);
            }),
          ),
        );
      }
      actions.append(
        button("New link", `Issue a new link for ${inv.pseudonym}`, () =>
          guarded(async () => {
            const { invites: issued } = await api("POST", `/sessions/${sessionId}/invites`, {
              member_id: inv.member_id,
            });
            for (const i of issued) freshLinks.set(i.id, i.url);
            await showSession(sessionId);
          }),
        ),
      );
      return el(
        "tr",
        {},
        el("td", { text: inv.pseudonym }),
        el("td", { text: inv.state + (inv.refused_count ? ` (refused ${inv.refused_count}x)` : "") }),
        el("td", { class: "link-box", text: url || "(hidden: issue a new link to copy)" }),
        actions,
      );
    }),
  );
  show("session-view");
}

async function route() {
  const hash = window.location.hash.replace(/^#/, "") || "/";
  const parts = hash.split("/").filter(Boolean);
  if (parts[0] === "groups" && parts[1]) await showGroup(parts[1]);
  else if (parts[0] === "sessions" && parts[1]) await showSession(parts[1]);
  else await showGroups();
}

function localToIso(value) {
  // datetime-local has no zone: it is the clinician's local time
  return new Date(value).toISOString();
}

$("new-group-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    const { group } = await api("POST", "/groups", { name: $("new-group-name").value });
    window.location.hash = `#/groups/${group.id}`;
  });
});

$("rules-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    // the other rules are sent back as they were: a PATCH replaces the group's rules
    const rules = { ...currentRules, names_hidden: $("rule-names-hidden").checked,
                    audio_only_default: $("rule-audio-only").checked };
    const { group } = await api("PATCH", `/groups/${currentGroup}`, { rules });
    currentRules = group.rules || rules;
    $("rules-status").textContent = "Saved. They apply to sessions from the next time their room opens.";
  });
});

$("add-member-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    await api("POST", `/groups/${currentGroup}/members`, {
      real_name: $("member-real-name").value,
      pseudonym: $("member-pseudonym").value,
      contact: $("member-contact").value.trim() || null,
      emergency_contact: $("member-emergency").value.trim() || null,
    });
    $("add-member-form").reset();
    await showGroup(currentGroup);
  });
});

$("settings-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    const measures = [...document.querySelectorAll('#settings-form input[name="measure"]:checked')]
      .map((b) => b.value);
    const feedback = document.querySelector('#settings-form input[name="feedback"]:checked');
    const rules = {
      ...currentRules,
      measures,
      ask_location: $("ask-location").checked,
      focus: $("focus-rule").checked,
      clinician_profile: $("clinician-profile").value || null,
      feedback: feedback ? feedback.value : "off",
      late_join_cutoff_min: Number($("late-cutoff").value),
    };
    const { group } = await api("PATCH", `/groups/${currentGroup}`, { rules });
    showSettings(group);
    $("settings-saved").textContent = "Settings saved.";
  });
});

$("suggest-button").addEventListener("click", () =>
  guarded(async () => {
    const { suggestions } = await api("GET", `/groups/${currentGroup}/pseudonym-suggestions`);
    $("pseudonym-suggestions").replaceChildren(...suggestions.map((s) => el("option", { value: s })));
    $("suggestions").textContent = `Suggestions: ${suggestions.join(", ")}`;
  }),
);

$("schedule-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    await api("POST", `/groups/${currentGroup}/sessions`, {
      starts_at: localToIso($("session-start").value),
      duration_min: Number($("session-duration").value),
    });
    await showGroup(currentGroup);
  });
});

$("logout-button").addEventListener("click", () =>
  guarded(async () => {
    await logout();
    window.location.assign("/login");
  }),
);

window.addEventListener("hashchange", () => guarded(route));

guarded(async () => {
  const user = await me();
  $("whoami").textContent = `${user.display_name} (${user.role})`;
  await route();
});
