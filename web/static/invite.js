// The page a member's personal link opens (/i/{token}). Opening it uses nothing up (link
// previews fetch pages too): the link is redeemed only when the person presses the button.

const PLACEHOLDER = "join"; // what the address shows instead of the token
const TOKEN_KEY = "confide.invite_token";

const ERRORS = {
  invite_already_redeemed:
    "This link has already been used to join, perhaps in another browser or on another " +
    "device. Each link works once. If that was not you, please tell your clinician.",
  invite_expired: "This link has expired. Please ask your clinician for a new one.",
  invite_revoked: "This link has been withdrawn by your clinician. Please ask them for a new one.",
  invite_not_yet_valid:
    "The waiting room for this session is not open yet. Please come back nearer the start time.",
  invite_not_found:
    "We do not recognise this link. Please check you opened the whole link from your clinician.",
};

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function takeToken() {
  const app = document.getElementById("app");
  const prefix = (app && app.dataset.invitePrefix) || "/i/";
  let token = location.pathname.startsWith(prefix) ? location.pathname.slice(prefix.length) : "";
  if (token && token !== PLACEHOLDER) {
    // keep the token out of the address bar, history and anything shared from this screen
    sessionStorage.setItem(TOKEN_KEY, token);
  } else {
    token = sessionStorage.getItem(TOKEN_KEY) || "";
  }
  history.replaceState(null, "", prefix + PLACEHOLDER);
  return token;
}

function render(token) {
  const sheet = el("link", { rel: "stylesheet", href: "/static/style.css" });
  document.head.append(sheet);
  const app = document.getElementById("app");
  const card = el("section", { id: "invite-card", class: "card", "aria-labelledby": "invite-title" });
  card.append(
    el("h1", { id: "invite-title" }, "Join your group session"),
    el("p", {}, "When you are ready, press the button. You will first read the group " +
      "agreement and see how the group will see you, then wait until your clinician lets you in."),
    el("p", {}, "Please join from a private place where nobody else can see or hear the group."),
  );
  const button = el("button", { id: "btn-join", type: "button", class: "primary" }, "Join the session");
  const error = el("p", { id: "invite-error", class: "error", role: "alert" });
  card.append(button, error);
  const status = document.getElementById("status");
  app.replaceChildren(card, status);
  status.textContent = "";
  if (!token) {
    button.disabled = true;
    error.textContent = "This page needs the personal link your clinician sent you.";
    return;
  }
  button.addEventListener("click", () => redeem(token, button, error, status));
}

async function redeem(token, button, error, status) {
  button.disabled = true;
  error.textContent = "";
  status.textContent = "Opening your place in the session…";
  let resp;
  let body = {};
  try {
    resp = await fetch("/api/v1/invites/redeem", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ token }),
    });
    body = await resp.json().catch(() => ({}));
  } catch {
    status.textContent = "";
    error.textContent = "We could not reach Confide. Please check your connection and try again.";
    button.disabled = false;
    return;
  }
  if (!resp.ok) {
    const code = body.error && body.error.code;
    status.textContent = "";
    // the server's own wording and codes are for logs; a person reads plain words
    error.textContent = ERRORS[code] ||
      "This link could not be used. Please ask your clinician for a new one.";
    // a session not open yet can be tried again; every other refusal is final for this link
    button.disabled = code !== "invite_not_yet_valid";
    if (code !== "invite_not_yet_valid") sessionStorage.removeItem(TOKEN_KEY);
    return;
  }
  sessionStorage.removeItem(TOKEN_KEY);
  // the reconnect path: a fresh grant for this link while the session lasts
  sessionStorage.setItem("confide.invite_resume", body.resume || "");
  sessionStorage.removeItem("confide.resume");
  location.replace(`/room#grant=${encodeURIComponent(body.grant)}`);
}

render(takeToken());
