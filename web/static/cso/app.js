// The clinical safety officer's page: hazard log, changes, evidence, sign-off, workshop,
// incidents. Everything is drawn with textContent, never innerHTML.
import { api, logout, me } from "/clinician/api.js";

const $ = (id) => document.getElementById(id);
let currentHash = null;

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

async function guarded(fn) {
  try {
    await fn();
  } catch (err) {
    if (err.status === 401) window.location.assign("/login");
    else say(err.message);
  }
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function rating(r) {
  return r ? `${r.risk} (${r.severity} × ${r.likelihood})` : "unreadable";
}

async function showGate() {
  const gate = await api("GET", "/safety/status");
  $("gate-summary").textContent = gate.open
    ? "The service-wide safety items are met. Each session also needs its host's checklist."
    : "Sessions cannot open until these are met:";
  $("gate-unmet").replaceChildren(...gate.unmet.map((u) => el("li", { text: u.message })));
}

async function showLog() {
  const params = new URLSearchParams({ sort: $("log-sort").value });
  if ($("log-status").value) params.set("status", $("log-status").value);
  const log = await api("GET", `/safety/hazard-log?${params}`);
  currentHash = log.hash;
  $("signoff-hash").textContent = log.hash;
  $("log-summary").textContent =
    `${log.name}, version ${log.metadata.version || "?"}, ${log.hazards.length} hazard(s) shown; ` +
    (log.signed_off ? "this version is signed off." : "this version is NOT signed off.");
  $("log-issues").replaceChildren(
    ...(log.issues.length
      ? log.issues.map((i) => el("li", { text: `line ${i.line}: ${i.message}` }))
      : [el("li", { class: "muted", text: "None: the log parses and checks." })]),
  );
  $("log-body").replaceChildren(
    ...log.hazards.map((h) =>
      el(
        "tr",
        {},
        el("td", { text: h.id }),
        el("td", { text: h.title }),
        el("td", { text: rating(h.initial) }),
        el("td", { text: rating(h.residual) }),
        el("td", { text: h.status }),
        el("td", { text: h.owner }),
        el("td", { text: h.acceptance || (h.needs_acceptance ? "MISSING" : "") }),
      ),
    ),
  );
  $("signoff-button").disabled = !log.ok || log.signed_off;
}

async function showChanges() {
  const diff = await api("GET", "/safety/hazard-log/changes");
  const body = $("changes-body");
  body.replaceChildren();
  if (!diff.base) {
    $("changes-summary").textContent = "No version has been signed off yet: every hazard is new.";
  } else if (diff.unchanged) {
    $("changes-summary").textContent =
      `No change since the sign-off by ${diff.base.signed_by_username} on ${when(diff.base.signed_at)}.`;
    return;
  } else {
    $("changes-summary").textContent =
      `Compared with the version signed off by ${diff.base.signed_by_username} on ${when(diff.base.signed_at)}:`;
  }
  const list = (title, items) => {
    if (!items.length) return;
    body.append(el("h3", { text: title }), el("ul", {}, ...items.map((h) => el("li", { text: `${h.id}: ${h.title}` }))));
  };
  list("Added", diff.added);
  list("Removed", diff.removed);
  for (const change of diff.changed) {
    body.append(el("h3", { text: `Changed: ${change.id}: ${change.title}` }));
    const rows = change.fields.map((f) =>
      el(
        "li",
        {},
        el("strong", { text: `${f.field}: ` }),
        el("span", { class: "diff-before", text: f.before ?? "(none)" }),
        " → ",
        el("span", { class: "diff-after", text: f.after ?? "(none)" }),
      ),
    );
    body.append(el("ul", {}, ...rows));
  }
}

async function showEvidence() {
  const ev = await api("GET", "/safety/evidence");
  const rec = ev.record;
  if (rec) {
    const n = rec.summary;
    $("evidence-summary").textContent =
      `Test run of ${when(rec.created_at)} (commit ${rec.commit.slice(0, 12)}): ` +
      `${n.passed} passed, ${n.failed} failed, ${n.error} errors, ${n.skipped} skipped. ` +
      (ev.record_matches_log
        ? "It ran against this version of the hazard log."
        : "It ran against a different version of the hazard log.");
    $("evidence-record").textContent = `Record hash ${rec.record_hash}`;
  } else {
    $("evidence-summary").textContent = `No evidence record: ${ev.record_error}`;
    $("evidence-record").textContent = "";
  }
  $("evidence-body").replaceChildren(
    ...ev.controls.map((c) =>
      el(
        "tr",
        {},
        el("td", { text: c.hazard_id }),
        el("td", { text: c.control }),
        el("td", { text: c.type }),
        el("td", { text: c.evidence.map((e) => `${e.kind}: ${e.ref} (${e.status})`).join("; ") }),
        el("td", { class: `status-${c.status}`, text: c.status }),
      ),
    ),
  );
}

async function showSignOffs() {
  const { sign_offs } = await api("GET", "/safety/sign-offs");
  $("history-body").replaceChildren(
    ...sign_offs.map((s) =>
      el(
        "tr",
        {},
        el("td", { text: when(s.signed_at) }),
        el("td", { text: s.signed_by_username }),
        el("td", {}, el("code", { text: s.content_hash.slice(0, 12) })),
        el("td", { text: s.comment }),
      ),
    ),
  );
}

async function showWorkshop() {
  const ws = await api("GET", "/safety/workshop");
  $("workshop-summary").textContent = ws.complete
    ? "Every question has an answer."
    : "Some questions are not answered yet: sessions cannot open.";
  $("workshop-list").replaceChildren(
    ...ws.questions.map((q) => {
      const id = `answer-${q.id}`;
      const area = el("textarea", { id, rows: "2", maxlength: "4000", required: "" });
      area.value = q.answer ? q.answer.answer : "";
      const who = q.answer
        ? `Answered by ${q.answer.answered_by_username} on ${when(q.answer.answered_at)}`
        : "Not answered";
      const form = el(
        "form",
        { "aria-label": `Answer: ${q.text}` },
        el("label", { for: id, text: q.text }),
        area,
        el("button", { type: "submit", "aria-label": `Save the answer to: ${q.text}`, text: "Save answer" }),
        el("p", { class: "muted", text: who }),
      );
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        guarded(async () => {
          await api("PUT", `/safety/workshop/${encodeURIComponent(q.id)}`, { answer: area.value });
          await Promise.all([showWorkshop(), showGate()]);
        });
      });
      return el("li", {}, form);
    }),
  );
}

function incidentQuery() {
  const params = new URLSearchParams();
  if ($("incident-kind").value) params.set("kind", $("incident-kind").value);
  if ($("incident-hazard").value.trim()) params.set("hazard", $("incident-hazard").value.trim());
  return params.toString();
}

async function showIncidents() {
  const query = incidentQuery();
  const { incidents, kinds } = await api("GET", `/safety/incidents${query ? "?" + query : ""}`);
  const select = $("incident-kind");
  if (select.options.length === 1) {
    for (const kind of kinds) select.append(el("option", { value: kind, text: kind.replaceAll("_", " ") }));
  }
  $("incident-csv").setAttribute("href", `/api/v1/safety/incidents.csv${query ? "?" + query : ""}`);
  $("incident-body").replaceChildren(
    ...incidents.map((i) =>
      el(
        "tr",
        {},
        el("td", { text: when(i.at) }),
        el("td", { text: i.kind.replaceAll("_", " ") }),
        el("td", { text: i.session_id }),
        el("td", { text: i.participant_id || "" }),
        el("td", { text: i.hazard_ids.join(", ") }),
        el("td", { text: i.detail }),
      ),
    ),
  );
}

async function refreshAll() {
  await Promise.all([showGate(), showLog(), showChanges(), showEvidence(), showSignOffs(), showWorkshop(), showIncidents()]);
}

$("log-sort").addEventListener("change", () => guarded(showLog));
$("log-status").addEventListener("change", () => guarded(showLog));
$("incident-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(showIncidents);
});
$("signoff-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    await api("POST", "/safety/sign-offs", { content_hash: currentHash, comment: $("signoff-comment").value });
    $("signoff-comment").value = "";
    say("");
    await refreshAll();
  });
});
$("logout-button").addEventListener("click", () =>
  guarded(async () => {
    await logout();
    window.location.assign("/login");
  }),
);

guarded(async () => {
  const user = await me();
  if (user.role !== "cso" && user.role !== "admin") {
    window.location.assign("/clinician/");
    return;
  }
  $("whoami").textContent = `${user.display_name} (${user.role})`;
  if (user.role !== "cso") {
    // only a clinical safety officer signs off
    $("signoff-form").hidden = true;
  }
  await refreshAll();
});
