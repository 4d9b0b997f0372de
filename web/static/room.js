// The group room: join with a grant, follow the server's view of where we stand
// (pre-join → waiting room → room), publish camera and microphone, show everyone else.
import { Signaling } from "./signaling.js";
import { Preview, Publisher, Subscriber } from "./rtc.js";
import { fillProfileSelect, profileLabel } from "./profiles.js";
import { checklistAnswers, checklistComplete, renderChecklist } from "./prejoin.js";
import { Chat } from "./chat.js";
import { Host } from "./host.js";
import { Arrival } from "./measures.js";
import { offerAfterSession } from "./feedback.js";

const $ = (id) => document.getElementById(id);
const STAGES = ["error", "prejoin", "measures", "lobby", "room", "ended"];
const GRACE_MS = 30000;
const TILE_MESSAGES = 3;
const VIDEO = { width: 640, height: 480, frameRate: 15 };
// join refusals a fresh grant (from the invite's resume secret) can cure
const REFRESHABLE = new Set(["grant_replayed", "grant_expired"]);

const state = {
  me: null, stage: "connecting", stageHistory: [], selfState: null,
  participants: new Map(), tiles: new Map(), localStream: new MediaStream(),
  publisher: null, preview: null, subscriber: null, signaling: null, selfTrack: null,
  leaving: false, inRoom: false, iceServers: [], errors: [], chat: [], alerts: [],
  paused: false, locked: false, focus: false, joinError: null, mediaCalls: 0,
};
window.confide = state; // read by the end-to-end tests

function setStatus(text) { $("status").textContent = text; }
function notify(text) { $("notice").textContent = text; }

function show(stage) {
  if (state.stage !== stage) state.stageHistory.push(stage);
  state.stage = stage;
  for (const s of STAGES) $(`stage-${s}`).hidden = s !== stage;
}

function fail(text) {
  state.leaving = true;
  teardown();
  stopLocal();
  $("error-text").textContent = text;
  show("error");
  setStatus("Not connected");
}

// --- grants: from the address (then hidden), the tab's storage, or the invite's resume
function readGrant() {
  const params = new URLSearchParams(location.hash.slice(1));
  const grant = params.get("grant");
  if (grant) {
    // keep the grant out of history and out of anything the page might share
    sessionStorage.setItem("confide.grant", grant);
    history.replaceState(null, "", location.pathname);
    return grant;
  }
  return sessionStorage.getItem("confide.grant");
}

function grantClaims(grant) {
  try {
    return JSON.parse(atob(grant.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  } catch { return {}; }
}

async function freshHostGrant(sessionId) {
  // a clinician signed in to this service gets a new host grant, however long they were away
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("confide_csrf="));
  const resp = await fetch(`/api/v1/sessions/${encodeURIComponent(sessionId)}/host-grant`, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json",
               "X-CSRF-Token": csrf ? decodeURIComponent(csrf.split("=")[1]) : "" },
    body: "{}",
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const code = body.error && body.error.code;
    throw new Error(code === "session_ended" ? "This session has ended."
      : "Please sign in again to return to the session.");
  }
  sessionStorage.setItem("confide.grant", body.grant);
  sessionStorage.removeItem("confide.resume");
  return body.grant;
}

async function freshGrant() {
  const held = sessionStorage.getItem("confide.grant");
  const claims = held ? grantClaims(held) : {};
  if (claims.role === "host" && claims.sid) return freshHostGrant(claims.sid);
  const resume = sessionStorage.getItem("confide.invite_resume");
  if (!resume) return null;
  const resp = await fetch("/api/v1/invites/resume", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ resume }),
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const code = body.error && body.error.code;
    throw new Error(code === "invite_revoked" ? "Your link has been withdrawn by the clinician."
      : code === "invite_expired" ? "Your link has expired." : "Your link can no longer be used.");
  }
  sessionStorage.setItem("confide.grant", body.grant);
  return body.grant;
}

// --- local devices
async function getMedia(constraints) {
  state.mediaCalls += 1;
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch (e) {
    state.errors.push(`media: ${e.name}`);
    notify("We could not start your camera or microphone. You can still take part by text.");
    return null;
  }
}

function liveTrack(kind) {
  return state.localStream.getTracks().find((t) => t.kind === kind && t.readyState === "live");
}

function dropTrack(kind) {
  for (const t of state.localStream.getTracks()) {
    if (t.kind === kind) { t.stop(); state.localStream.removeTrack(t); }
  }
}

// devices off and nothing left on the publisher connection (it stays for turning back on)
function stopSending() {
  stopLocal();
  if (!state.publisher) return;
  for (const kind of Object.keys(state.publisher.senders)) state.publisher.setTrack(kind, null);
}

function stopLocal() {
  for (const t of state.localStream.getTracks()) t.stop();
  state.localStream = new MediaStream();
}

// a live track of `kind`, asking for the device if needed
async function ensureTrack(kind) {
  const have = liveTrack(kind);
  if (have) return have;
  dropTrack(kind);
  const got = await getMedia(kind === "video" ? { video: VIDEO } : { audio: true });
  const track = got && got.getTracks()[0];
  if (track) state.localStream.addTrack(track);
  return track || null;
}

// send the current local track of `kind` (or nothing) on the publisher connection
async function sendTrack(kind) {
  if (!state.inRoom) return;
  if (!state.publisher) state.publisher = new Publisher(state.signaling, state.iceServers);
  try {
    await state.publisher.setTrack(kind, liveTrack(kind) || null, state.localStream);
  } catch (e) {
    state.errors.push(e.code || "publish_failed");
  }
}

function applyTrackStates() {
  const ss = state.selfState;
  if (!ss) return;
  for (const t of state.localStream.getTracks()) {
    // the server holds what it must; the local switch keeps the device honest too
    t.enabled = t.kind === "audio" ? !ss.audio_muted : !ss.video_stopped;
  }
}

// --- tiles
function tileFor(p) {
  let tile = state.tiles.get(p.id);
  if (!tile) {
    const fig = document.createElement("figure");
    fig.className = "tile";
    fig.dataset.participantId = p.id;
    const video = document.createElement("video");
    video.autoplay = true; video.playsInline = true; video.muted = true;
    const audio = document.createElement("audio");
    audio.autoplay = true;
    const cap = document.createElement("figcaption");
    const name = document.createElement("span");
    name.className = "name";
    const badges = document.createElement("span");
    badges.className = "badges";
    cap.append(name, badges);
    const messages = document.createElement("ul");
    messages.className = "tile-messages";
    messages.setAttribute("aria-live", "polite");
    // the picture and its caption in one box; a host's controls sit below it, not over it
    const media = document.createElement("div");
    media.className = "tile-media";
    media.append(video, audio, messages, cap);
    fig.append(media);
    $("tiles").append(fig);
    tile = { fig, video, audio, name, badges, messages, tracks: {} };
    state.tiles.set(p.id, tile);
    host.addTileControls(p, tile);
  }
  // textContent: a display name is shown as text, never as markup
  tile.name.textContent = p.display_name;
  tile.video.setAttribute("aria-label", `Video of ${p.display_name}`);
  tile.badges.textContent = badgesOf(p.muted || {}, p.hand_raised, p.text_only).join(" · ");
  tile.fig.classList.toggle("text-only", Boolean(p.text_only));
  tile.fig.classList.toggle("hand-raised", Boolean(p.hand_raised));
  return tile;
}

function badgesOf(muted, hand, textOnly) {
  return [
    hand ? "✋ hand raised" : "", textOnly ? "text only" : "",
    muted.audio ? "mic off" : "", muted.video ? "camera off" : "",
  ].filter(Boolean);
}

function removeTile(id) {
  const tile = state.tiles.get(id);
  if (tile) { tile.fig.remove(); state.tiles.delete(id); }
  state.participants.delete(id);
}

function clearTiles() { for (const id of [...state.tiles.keys()]) removeTile(id); }

function setRoster(list) {
  clearTiles();
  const waiting = [];
  for (const p of list) {
    if (p.state === "admitted") { state.participants.set(p.id, p); tileFor(p); }
    else if (p.state === "lobby") waiting.push(p);
  }
  if (waiting.length) host.onLobby(waiting);
}

function showSelfView(track) {
  state.selfTrack = track;
  for (const id of ["self-video", "preview-video"]) {
    const el = $(id);
    if (!el.srcObject || el.srcObject.getVideoTracks()[0] !== track) {
      el.srcObject = new MediaStream([track]);
      el.play().catch(() => {});
    }
  }
}

function onTracks(tracks) {
  for (const { participantId, kind, track } of tracks) {
    if (state.me && participantId === state.me.id) {
      // self-view: the server's processed picture, what the group sees; never the camera
      if (kind === "video") showSelfView(track);
      continue;
    }
    const p = state.participants.get(participantId);
    if (!p) continue;
    const tile = tileFor(p);
    if (tile.tracks[kind] === track) continue;
    tile.tracks[kind] = track;
    const el = kind === "video" ? tile.video : tile.audio;
    el.srcObject = new MediaStream([track]);
    el.play().catch(() => {});
  }
}

// --- where we stand
async function follow(lobbyState) {
  if (lobbyState === "prejoin") enterPrejoin();
  else if (lobbyState === "waiting") enterLobby();
  else if (lobbyState === "admitted") await enterRoom();
}

function enterPrejoin() {
  // on the measures' screens the rules still say "pre-join": stay there
  if (state.stage === "measures") return;
  leaveRoomMedia();
  show("prejoin");
  setStatus("Getting ready");
}

function enterLobby() {
  leaveRoomMedia();
  show("lobby");
  setStatus("Waiting to be admitted");
}

function leaveRoomMedia() {
  if (!state.inRoom) return;
  // back in the waiting room: nothing of ours is sent, and the devices are let go
  state.inRoom = false;
  if (state.publisher) { state.publisher.close(); state.publisher = null; }
  stopLocal();
  clearTiles();
}

async function enterRoom() {
  if (state.inRoom) return;
  state.inRoom = true;
  closePreview();
  show("room");
  setStatus("In the session");
  const ss = state.selfState || {};
  if (!ss.text_only && !$("prejoin-text-only").checked
      && (!liveTrack("audio") || !liveTrack("video"))) {
    // a muted microphone is still opened, so unmuting later is instant
    const got = await getMedia({ audio: true, video: VIDEO });
    if (got) for (const t of got.getTracks()) { dropTrack(t.kind); state.localStream.addTrack(t); }
  }
  applyTrackStates();
  if (state.localStream.getTracks().length) {
    state.publisher = new Publisher(state.signaling, state.iceServers);
    try { await state.publisher.publish(state.localStream); }
    catch (e) { state.errors.push(e.code || "publish_failed"); }
  }
}

function closePreview() {
  if (state.preview) { state.preview.close(); state.preview = null; }
}

async function startPreview() {
  $("btn-preview").disabled = true;
  const track = await ensureTrack("video");
  if (!track) { $("btn-preview").disabled = false; return; }
  closePreview();
  state.preview = new Preview(state.signaling, state.iceServers);
  try {
    await state.preview.start(track, state.localStream);
    $("btn-preview").textContent = "Camera check running";
  } catch (e) {
    state.errors.push(e.code || "preview_failed");
    $("prejoin-error").textContent = "The camera check did not start. You can still go on.";
    $("btn-preview").disabled = false;
  }
}

// --- our own state, as the server decided it
function onSelfState(ss) {
  state.selfState = ss;
  const label = profileLabel(ss.profile);
  $("self-profile").textContent = label;
  $("preview-profile").textContent = label;
  for (const id of ["prejoin-profile", "profile-select"]) {
    fillProfileSelect($(id), ss.allowed_profiles, ss.profile, ss.profile_floor);
  }
  $("prejoin-text-only-field").hidden = !ss.text_only_allowed;
  $("text-only-field").hidden = !ss.text_only_allowed && !ss.text_only;
  $("text-only").checked = Boolean(ss.text_only);
  if (ss.checklist) renderChecklist(ss.checklist, updateAgree);

  const mic = $("btn-mic");
  mic.textContent = ss.audio_muted ? "Unmute" : "Mute";
  mic.setAttribute("aria-pressed", String(Boolean(ss.audio_muted)));
  mic.setAttribute("aria-label", ss.audio_muted ? "Unmute microphone" : "Mute microphone");
  const cam = $("btn-cam");
  cam.textContent = ss.video_stopped ? "Camera on" : "Camera off";
  cam.setAttribute("aria-pressed", String(Boolean(ss.video_stopped)));
  cam.setAttribute("aria-label", ss.video_held_by_host
    ? "Camera held by the clinician" : ss.video_stopped ? "Turn camera on" : "Turn camera off");
  cam.disabled = Boolean(ss.video_held_by_host) && Boolean(ss.video_stopped);
  const hand = $("btn-hand");
  hand.textContent = ss.hand_raised ? "Lower hand" : "Raise hand";
  hand.setAttribute("aria-pressed", String(Boolean(ss.hand_raised)));
  $("self-badges").textContent = badgesOf(
    { audio: ss.audio_muted, video: ss.video_stopped }, ss.hand_raised, ss.text_only).join(" · ");
  chat.configure({ isHost: isHost(), chatEnabled: ss.chat_enabled !== false });
  host.refreshProfiles(ss.allowed_profiles);
  applyTrackStates();
  follow(ss.lobby_state);
}

function isHost() { return Boolean(state.me && state.me.role === "host"); }

function updateAgree() {
  $("btn-agree").disabled = !checklistComplete() || !arrival.ready();
}

// "Focus": the server sends members only the hosts' video; this only says so
function setFocus(on) {
  state.focus = Boolean(on);
  const banner = $("focus-banner");
  banner.textContent = isHost()
    ? "Focus is on: members see only your video. You see everyone; everyone hears everyone."
    : "Focus is on: you see only your clinician's video. Everyone can still hear each other.";
  banner.hidden = !state.focus;
  $("prejoin-focus").hidden = !state.focus || isHost();
  host.onRoomFlags();
}

// --- signaling
function wire(sig) {
  let joined = false;
  sig.on("joined", (msg) => {
    joined = true;
    state.me = msg.participant;
    state.joinError = null;
    state.iceServers = msg.ice_servers || [];
    state.paused = Boolean(msg.paused);
    sessionStorage.setItem("confide.resume", msg.resume || "");
    for (const id of ["self-name", "lobby-name", "prejoin-name"]) {
      $(id).textContent = msg.participant.display_name;
    }
    $("paused-banner").hidden = !state.paused;
    setFocus(msg.focus);
    if (isHost()) host.enable(sessionStorage.getItem("confide.grant"));
    else if (!arrival.forms) {
      arrival.load(grantClaims(sessionStorage.getItem("confide.grant") || "").sid,
        sessionStorage.getItem("confide.invite_resume")).then(updateAgree);
    }
    state.subscriber = new Subscriber(sig, state.iceServers, onTracks);
    setRoster(msg.participants || []);
    if (msg.participant.state === "admitted") enterRoom();
  });
  sig.on("self_state", onSelfState);
  sig.on("admitted", (msg) => {
    state.paused = Boolean(msg.paused);
    $("paused-banner").hidden = !state.paused;
    setFocus(msg.focus);
    setRoster(msg.participants || []);
    enterRoom();
  });
  sig.on("sent_to_lobby", () => enterLobby());
  sig.on("participant_joined", (msg) => {
    if (state.me && msg.participant.id === state.me.id) return;
    if (msg.participant.state !== "admitted") return;
    state.participants.set(msg.participant.id, msg.participant); tileFor(msg.participant);
  });
  sig.on("participant_updated", (msg) => {
    if (state.me && msg.participant.id === state.me.id) { state.me = msg.participant; return; }
    if (msg.participant.state !== "admitted") return;
    state.participants.set(msg.participant.id, msg.participant);
    tileFor(msg.participant);
  });
  sig.on("participant_left", (msg) => removeTile(msg.participant_id));
  sig.on("lobby", (msg) => host.onLobby(msg.waiting));
  sig.on("alert", (msg) => host.onAlert(msg));
  sig.on("prompt", (msg) => notify(String(msg.message || "")));
  sig.on("profile", (msg) => {
    $("self-profile").textContent = profileLabel(msg.profile);
    $("preview-profile").textContent = profileLabel(msg.profile);
  });
  sig.on("chat", (msg) => {
    const entry = chat.receive(msg);
    const sender = state.participants.get(entry.from);
    if (sender && sender.text_only && entry.to === "all") {
      // a text-only member's words appear in their tile, as speech would
      const tile = tileFor(sender);
      const li = document.createElement("li");
      li.textContent = entry.text;
      tile.messages.append(li);
      while (tile.messages.children.length > TILE_MESSAGES) tile.messages.firstElementChild.remove();
    }
  });
  sig.on("room_paused", (msg) => {
    state.paused = Boolean(msg.paused);
    $("paused-banner").hidden = !state.paused;
    host.onRoomFlags();
  });
  sig.on("room_locked", (msg) => { state.locked = Boolean(msg.locked); host.onRoomFlags(); });
  sig.on("room_focus", (msg) => setFocus(msg.focus));
  sig.on("error", (msg) => {
    state.errors.push(msg.code);
    if (!joined) { state.joinError = msg.code; state.joinMessage = msg.message; }
    if (!msg.ref) setStatus(`Problem: ${msg.message}`);
  });
  sig.on("removed", () => finish("The clinician has ended your place in this session."));
  sig.on("declined", (msg) => finish(msg.message || "The clinician has not admitted you to this session."));
  sig.on("ended", (msg) => finish(msg.message || "The clinician has ended the session.", true));
  // this place was taken over by the same person in another window: do not take it back
  sig.on("replaced", (msg) => finish(msg.message || "This session was opened in another window."));
  sig.on("close", (ev) => onClose(sig, ev));
}

let reconnectStarted = 0;
let refusals = 0;

async function onClose(sig, ev) {
  if (state.leaving || sig !== state.signaling) return;
  const code = state.joinError || ev.reason;
  state.joinError = null;
  if (ev.code === 1008) {
    teardown();
    const held = sessionStorage.getItem("confide.grant");
    const canRefresh = sessionStorage.getItem("confide.invite_resume")
      || (held && grantClaims(held).role === "host");
    if (REFRESHABLE.has(code) && canRefresh && refusals < 2) {
      // too long away for the old grant: the invite's secret gets a fresh one
      refusals += 1;
      try {
        await freshGrant();
        await connect();
      } catch (e) { fail(e.message || "Could not reach the server."); }
      return;
    }
    if (code === "already_connected" && reconnectStarted && refusals < 3) {
      // our previous connection has not been closed by the server yet
      refusals += 1;
      setTimeout(() => connect().catch(() => reconnect()), 1500);
      return;
    }
    if (code === "late_join_closed") {
      // the server's own words: kind, and saying the clinician knows
      $("error-title").textContent = "The waiting room has closed";
      fail(state.joinMessage || refusalText(code));
      return;
    }
    fail(refusalText(code));
    return;
  }
  reconnect();
}

function refusalText(code) {
  const texts = {
    removed: "The clinician has ended your place in this session.",
    declined: "The clinician has not admitted you to this session.",
    session_ended: "This session has ended.",
    room_locked: "The clinician has locked the session for now.",
    room_full: "The session is full.",
    lobby_not_open: "The waiting room is not open yet. Please come back nearer the start time.",
    late_join_closed: "Joining has closed for this session.",
    already_connected: "This link is already in use in another window.",
    grant_replayed: "This link has already been used. Please open your personal link again.",
    grant_expired: "This link has expired. Please open your personal link again.",
  };
  return texts[code] || `The session refused this link (${code || "not allowed"}).`;
}

function teardown() {
  state.inRoom = false;
  closePreview();
  if (state.publisher) { state.publisher.close(); state.publisher = null; }
  if (state.subscriber) { state.subscriber.close(); state.subscriber = null; }
  clearTiles();
}

async function reconnect() {
  // a blip: come back with the resume token, without passing the lobby again
  if (!reconnectStarted) reconnectStarted = Date.now();
  if (Date.now() - reconnectStarted > GRACE_MS * 2) { fail("The connection was lost."); return; }
  setStatus("Reconnecting…");
  teardown();
  await new Promise((r) => setTimeout(r, 1000));
  try { await connect(); } catch { reconnect(); }
}

async function connect() {
  let grant = readGrant();
  if (!grant) grant = await freshGrant();
  if (!grant) { fail("This page needs a personal join link."); return; }
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/rtc`;
  const sig = new Signaling(url);
  state.signaling = sig;
  wire(sig);
  await sig.open();
  const join = { type: "join", grant };
  const resume = sessionStorage.getItem("confide.resume");
  if (resume) join.resume = resume;
  sig.send(join);
  sig.on("joined", () => { reconnectStarted = 0; refusals = 0; });
}

function finish(text, after = false) {
  // the after-session forms (for someone who was in the room) need the link's secret, which
  // is dropped just below
  if (after && !isHost() && state.stageHistory.includes("room")) {
    offerAfterSession(grantClaims(sessionStorage.getItem("confide.grant") || "").sid,
      sessionStorage.getItem("confide.invite_resume"));
  }
  state.leaving = true;
  teardown();
  stopLocal();
  for (const key of ["confide.grant", "confide.resume", "confide.invite_resume"]) {
    sessionStorage.removeItem(key);
  }
  if (text) $("ended-text").textContent = text;
  show("ended");
  setStatus("Not connected");
  if (state.signaling) state.signaling.close();
}

// --- controls
async function command(name, fields) {
  const reply = await state.signaling.command(name, fields);
  if (reply.type !== "ok") notify(reply.message || "That did not work.");
  return reply;
}

$("btn-mic").addEventListener("click", async () => {
  const ss = state.selfState || {};
  if (!ss.audio_muted) { await command("mute"); return; }
  const reply = await state.signaling.command("unmute");
  if (reply.type === "ok") {
    notify("");
    if (!liveTrack("audio")) { await ensureTrack("audio"); applyTrackStates(); await sendTrack("audio"); }
  } else if (reply.code === "raise_hand_to_speak") {
    notify("The clinician lets people unmute in turn: raise your hand and they will let you speak.");
    $("btn-hand").focus();
  } else {
    notify(reply.message || "You cannot unmute just now.");
  }
});

$("btn-cam").addEventListener("click", async () => {
  const ss = state.selfState || {};
  if (!ss.video_stopped) {
    const reply = await command("stop_video");
    if (reply.type === "ok") { dropTrack("video"); await sendTrack("video"); }
    return;
  }
  const reply = await command("start_video");
  if (reply.type === "ok") {
    notify("");
    await ensureTrack("video");
    applyTrackStates();
    await sendTrack("video");
  }
});

$("btn-hand").addEventListener("click", () =>
  command(state.selfState && state.selfState.hand_raised ? "lower_hand" : "raise_hand"));

$("btn-came-in").addEventListener("click", async () => {
  // first the devices, at once, on this device; then the server holds and tells the host
  stopSending();
  notify("Your camera and microphone are off. The clinician has been told privately.");
  await command("someone_came_in");
});

for (const id of ["profile-select", "prejoin-profile"]) {
  $(id).addEventListener("change", async (ev) => {
    const reply = await command("set_own_profile", { profile: ev.target.value });
    if (reply.type !== "ok" && state.selfState) ev.target.value = state.selfState.profile;
    if (reply.type !== "ok" && state.stage === "prejoin") $("prejoin-error").textContent = reply.message;
  });
}

$("text-only").addEventListener("change", async (ev) => {
  const enabled = ev.target.checked;
  if (enabled) stopSending();
  const reply = await command("set_text_only", { enabled });
  if (reply.type !== "ok") ev.target.checked = !enabled;
  else if (!enabled) notify("Use the camera and microphone buttons when you are ready.");
});

$("prejoin-text-only").addEventListener("change", (ev) => {
  $("device-check").hidden = ev.target.checked;
  if (ev.target.checked) { closePreview(); stopLocal(); }
});

$("btn-preview").addEventListener("click", () => startPreview());

$("btn-agree").addEventListener("click", async () => {
  $("prejoin-error").textContent = "";
  if ($("prejoin-text-only").checked) {
    const reply = await state.signaling.command("set_text_only", { enabled: true });
    if (reply.type !== "ok") { $("prejoin-error").textContent = reply.message; return; }
  }
  // where they are today and the session measures come before the waiting room
  const onward = await arrival.beforeLobby((text) => { $("prejoin-error").textContent = text; });
  if (!onward) return;
  const reply = await state.signaling.command("confirm_checklist", { answers: checklistAnswers() });
  if (reply.type !== "ok") {
    show("prejoin");
    $("prejoin-error").textContent = reply.message || "Please try again.";
  }
});

$("prejoin-location").addEventListener("input", () => updateAgree());

$("btn-leave").addEventListener("click", () => {
  if (state.signaling) state.signaling.send({ type: "leave" });
  finish(undefined, true);
});

window.addEventListener("pagehide", () => {
  if (!state.leaving && state.signaling) state.signaling.close();
});

const chat = new Chat(state);
const host = new Host(state, notify);
const arrival = new Arrival(show);

connect().catch((e) => fail(e && e.message ? e.message : "Could not reach the server."));
