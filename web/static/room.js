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
import { adviceFor, devicesReachable, openDevices } from "./devices.js";
import { GENERIC, LINK_WEAK, say } from "./wording.js";
import { WORDS, grade, sample } from "./linkquality.js";

const $ = (id) => document.getElementById(id);
const STAGES = ["error", "prejoin", "measures", "lobby", "room", "ended"];
// reconnecting: exponential backoff with jitter, so pages do not all hit a restarted server
// at the same instant; the server keeps our place through a restart, so keep trying a while
const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 5000;
const RECONNECT_GIVE_UP_MS = 5 * 60 * 1000;
// a socket sent on to the server that runs the session, at most this often in a row
const MAX_REDIRECTS = 3;
// after this long trying, a person is offered a way to try at once rather than only to wait
const OFFER_RETRY_AFTER_MS = 60 * 1000;
const TILE_MESSAGES = 3;
// join refusals a fresh grant (from the invite's resume secret) can cure
const REFRESHABLE = new Set(["grant_replayed", "grant_expired"]);

const state = {
  me: null, stage: "connecting", stageHistory: [], selfState: null,
  participants: new Map(), tiles: new Map(), localStream: new MediaStream(),
  publisher: null, preview: null, subscriber: null, signaling: null, selfTrack: null,
  leaving: false, inRoom: false, iceServers: [], errors: [], chat: [], alerts: [],
  paused: false, locked: false, focus: false, joinError: null, mediaCalls: 0,
  restarting: false, reconnects: 0, joins: 0, audioBlocked: false,
  // what the last device check found: null (working) or refused/missing/busy/insecure/failed
  devices: { audio: null, video: null },
  // low data: others' video switched off; link figures from getStats (self, and per member)
  incomingVideo: true, link: { self: null, members: {} }, midOwner: {},
  // the socket URL of the server that runs the session, when this page's server sent us on
  redirect: null,
};
window.confide = state; // read by the end-to-end tests

function setStatus(text) { $("status").textContent = text; }
function notify(text) { $("notice").textContent = text; }

function show(stage) {
  const changed = state.stage !== stage;
  if (changed) state.stageHistory.push(stage);
  state.stage = stage;
  for (const s of STAGES) $(`stage-${s}`).hidden = s !== stage;
  // a new step: keyboard and screen reader users start at its heading, not where they were.
  // The measures' screens draw and focus their own heading, so that stage has none here.
  const heading = $(`${stage}-title`);
  if (changed && heading) heading.focus();
}

function fail(text, { retry = false } = {}) {
  state.leaving = true;
  teardown();
  stopLocal();
  hideReconnecting();
  $("error-text").textContent = text;
  // a lost connection is not a dead end: the link still holds a place to come back to
  $("btn-error-retry").hidden = !retry;
  show("error");
  setStatus("Not connected");
}

$("btn-error-retry").addEventListener("click", () => location.reload());

// a refusal worth trying again (the service is restarting or cannot reach its records)
class Retry extends Error {}

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

// an error whose text is meant for the person (other errors show a plain fallback instead)
function plainError(text) { return Object.assign(new Error(text), { plain: text }); }

function grantClaims(grant) {
  // the grant's claims (plain base64url JSON; the server verifies, the page only reads)
  try {
    return JSON.parse(atob(grant.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  } catch { return {}; }
}

function readCookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

// a fresh grant can be had: a member from their invite's secret, a host from their login
function canRefresh() {
  const held = sessionStorage.getItem("confide.grant");
  return Boolean(sessionStorage.getItem("confide.invite_resume")
    || (held && grantClaims(held).role === "host"));
}

async function postForGrant(path, body, headers = {}) {
  let resp;
  try {
    resp = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...headers },
      body: JSON.stringify(body),
    });
  } catch {
    throw new Retry("Could not reach the server.");
  }
  const data = await resp.json().catch(() => ({}));
  if (resp.status === 503 || resp.status === 502 || resp.status === 504) {
    // restarting, or its database is away for a moment: try again
    throw new Retry("The service is busy.");
  }
  return { resp, data };
}

async function freshHostGrant(sessionId) {
  // a clinician signed in to this service gets a new host grant, however long they were away
  const { resp, data } = await postForGrant(
    `/api/v1/sessions/${encodeURIComponent(sessionId)}/host-grant`, {},
    { "X-CSRF-Token": readCookie("confide_csrf") });
  if (!resp.ok) {
    const code = data.error && data.error.code;
    throw plainError(code === "session_ended" ? "This session has ended."
      : "Please sign in again to return to the session.");
  }
  sessionStorage.setItem("confide.grant", data.grant);
  sessionStorage.removeItem("confide.resume");
  return data.grant;
}

async function freshGrant() {
  const held = sessionStorage.getItem("confide.grant");
  const claims = held ? grantClaims(held) : {};
  if (claims.role === "host" && claims.sid) return freshHostGrant(claims.sid);
  const resume = sessionStorage.getItem("confide.invite_resume");
  if (!resume) return null;
  const { resp, data } = await postForGrant("/api/v1/invites/resume", { resume });
  if (!resp.ok) {
    const code = data.error && data.error.code;
    throw plainError(code === "invite_revoked" ? "Your link has been withdrawn by the clinician."
      : code === "invite_expired" ? "Your link has expired." : "Your link can no longer be used.");
  }
  sessionStorage.setItem("confide.grant", data.grant);
  return data.grant;
}

// --- local devices
// open the wanted devices that are not live yet; keeps what works, records what does not
async function openWanted({ audio, video }) {
  const want = { audio: audio && !liveTrack("audio"), video: video && !liveTrack("video") };
  if (!want.audio && !want.video) return { audio: null, video: null, tracks: [] };
  state.mediaCalls += 1;
  const found = await openDevices(want);
  for (const t of found.tracks) { dropTrack(t.kind); state.localStream.addTrack(t); }
  for (const name of found.names) state.errors.push(`media: ${name}`);
  if (want.audio) state.devices.audio = found.audio;
  if (want.video) state.devices.video = found.video;
  return found;
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
  const found = await openWanted({ audio: kind === "audio", video: kind === "video" });
  if (found[kind]) notify(adviceFor(found));
  return liveTrack(kind) || null;
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
    // not a live region: the chat log already announces these words, and twice is noise
    messages.className = "tile-messages";
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
  for (const { mid, participantId, kind } of tracks) state.midOwner[mid] = { participantId, kind };
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
    if (kind === "audio") playSound(el);
    else el.play().catch(() => {});
  }
}

// --- sound the browser will not start by itself
function playSound(el) {
  el.play().catch((e) => {
    // NotAllowedError: autoplay needs a tap first (iOS, and browsers set to ask). Without
    // this a member, a text-only one above all, would sit in silence and not know why
    if (e && e.name === "NotAllowedError") soundBlocked();
  });
}

function soundBlocked() {
  if (state.audioBlocked) return;
  state.audioBlocked = true;
  // its own line, not the notice: a device or refusal message there would write over it
  $("hear").hidden = false;
  console.info("Confide: the browser held back the group's sound until a tap");
}

$("btn-hear").addEventListener("click", async () => {
  const tries = [...state.tiles.values()]
    .filter((t) => t.audio.srcObject)
    .map((t) => t.audio.play().then(() => true, () => false));
  const played = await Promise.all(tries);
  if (played.every(Boolean)) {
    state.audioBlocked = false;
    $("hear").hidden = true;
  }
});

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
  if (!devicesReachable()) {
    // no device can work on this page: say so now, before anyone presses a button
    $("device-status").textContent = adviceFor({ audio: "insecure", video: "insecure" });
    $("btn-preview").disabled = true;
    const ss = state.selfState || {};
    if (ss.text_only_allowed && !$("prejoin-text-only").checked) {
      $("prejoin-text-only").checked = true;
      $("preview-tile").hidden = true;
    }
  }
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
  if (!ss.text_only && !$("prejoin-text-only").checked) {
    // a muted microphone is still opened, so unmuting later is instant
    const found = await openWanted({ audio: true, video: true });
    if (!liveTrack("audio") && !liveTrack("video")) {
      // neither device: take part by text rather than not at all
      const reply = ss.text_only_allowed
        ? await state.signaling.command("set_text_only", { enabled: true }) : { type: "error" };
      notify(reply.type === "ok"
        ? `${adviceFor(found)} You are taking part by text: use the chat to write to the group.`
        : `${adviceFor(found)} You can still listen and use the chat.`);
    } else if (found.audio || found.video) {
      notify(adviceFor(found));
    }
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

// the pre-join check: camera and microphone, with what to do if either does not work
async function checkDevices() {
  const status = $("device-status");
  status.textContent = "Checking your camera and microphone…";
  const found = await openWanted({ audio: true, video: true });
  const audioOk = Boolean(liveTrack("audio"));
  // the microphone is only checked here: it is opened again in the room, not kept open
  dropTrack("audio");
  const videoOk = Boolean(liveTrack("video"));
  status.textContent = adviceFor({ audio: audioOk ? null : found.audio || "failed",
                                   video: videoOk ? null : found.video || "failed" })
    || "Your camera and microphone work.";
  if (!audioOk && !videoOk && state.selfState && state.selfState.text_only_allowed) {
    $("prejoin-text-only-field").hidden = false;
  }
  return videoOk;
}

async function startPreview() {
  $("btn-preview").disabled = true;
  const videoOk = await checkDevices();
  const track = liveTrack("video");
  if (!videoOk || !track) {
    $("btn-preview").textContent = "Check again";
    $("btn-preview").disabled = !devicesReachable();
    return;
  }
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
  showClinicianView(ss);
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

// the clinician's own view: offered by the group, given or withdrawn by the member; the
// server decides what the clinician receives (`clinician_sees`), this only says it plainly
function showClinicianView(ss) {
  const offered = Boolean(ss.clinician_profile);
  $("prejoin-clinician-view").hidden = !offered;
  $("room-clinician-view").hidden = !offered;
  if (!offered) return;
  for (const el of document.querySelectorAll(".cv-clinician")) {
    el.textContent = profileLabel(ss.clinician_sees || ss.profile);
  }
  for (const el of document.querySelectorAll(".cv-group")) el.textContent = profileLabel(ss.profile);
  for (const el of document.querySelectorAll(".cv-offered")) {
    el.textContent = profileLabel(ss.clinician_profile);
  }
  for (const box of document.querySelectorAll(".clinician-consent")) {
    box.checked = Boolean(ss.clinician_consent);
  }
}

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
    state.joins += 1;
    state.me = msg.participant;
    state.joinError = null;
    if (state.restarting) { state.restarting = false; notify(""); }
    state.iceServers = msg.ice_servers || [];
    state.paused = Boolean(msg.paused);
    state.locked = Boolean(msg.locked);
    sessionStorage.setItem("confide.resume", msg.resume || "");
    for (const id of ["self-name", "lobby-name", "prejoin-name"]) {
      $(id).textContent = msg.participant.display_name;
    }
    $("paused-banner").hidden = !state.paused;
    setFocus(msg.focus);
    if (isHost()) {
      host.enable(sessionStorage.getItem("confide.grant"));
      host.onRoomFlags();
    }
    else if (!arrival.forms) {
      arrival.load(grantClaims(sessionStorage.getItem("confide.grant") || "").sid,
        sessionStorage.getItem("confide.invite_resume")).then(updateAgree);
    }
    state.subscriber = new Subscriber(sig, state.iceServers, onTracks);
    setRoster(msg.participants || []);
    if (msg.participant.state === "admitted") enterRoom();
    // a new connection forgets the choice: say it again
    if (!state.incomingVideo) sig.send({ type: "incoming_video", enabled: false });
  });
  sig.on("self_state", onSelfState);
  sig.on("incoming_video", (msg) => showIncomingVideo(Boolean(msg.enabled)));
  sig.on("link_weak", (msg) => showLinkWeak(msg.video === "paused"));
  sig.on("publish_layer", (msg) => { if (state.publisher) state.publisher.setLayer(msg); });
  sig.on("admitted", (msg) => {
    state.paused = Boolean(msg.paused);
    state.locked = Boolean(msg.locked);
    if (isHost()) host.onRoomFlags();
    $("paused-banner").hidden = !state.paused;
    setFocus(msg.focus);
    setRoster(msg.participants || []);
    enterRoom();
  });
  sig.on("sent_to_lobby", () => enterLobby());
  // join and leave notices use the name the server gave (a stand-in under the names rule)
  const arrived = (p) => {
    const isNew = !state.tiles.has(p.id);
    state.participants.set(p.id, p);
    tileFor(p);
    if (isNew && state.inRoom) notify(`${p.display_name} joined the group.`);
  };
  sig.on("participant_joined", (msg) => {
    if (state.me && msg.participant.id === state.me.id) return;
    if (msg.participant.state !== "admitted") return;
    arrived(msg.participant);
  });
  sig.on("participant_updated", (msg) => {
    if (state.me && msg.participant.id === state.me.id) { state.me = msg.participant; return; }
    if (msg.participant.state !== "admitted") {
      // sent back to the waiting room: gone from the room
      if (state.tiles.has(msg.participant.id)) removeTile(msg.participant.id);
      return;
    }
    arrived(msg.participant);
  });
  sig.on("participant_left", (msg) => {
    const gone = state.participants.get(msg.participant_id);
    removeTile(msg.participant_id);
    if (gone && state.inRoom) notify(`${gone.display_name} left the group.`);
  });
  sig.on("lobby", (msg) => host.onLobby(msg.waiting));
  sig.on("alert", (msg) => host.onAlert(msg));
  sig.on("prompt", (msg) => notify(String(msg.message || "")));
  sig.on("profile", (msg) => {
    $("self-profile").textContent = profileLabel(msg.profile);
    $("preview-profile").textContent = profileLabel(msg.profile);
  });
  sig.on("chat", (msg) => {
    if (!isHost() && state.stage !== "room") {
      // before the room: the clinician's word to the waiting room, and our replies
      const entry = chat.receive(msg, "lobby-log");
      if (state.stage === "prejoin" && entry.to === "lobby") {
        $("prejoin-note").textContent = `Message from your clinician: ${entry.text}`;
        $("prejoin-note").hidden = false;
      }
      return;
    }
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
    if (!joined) state.joinError = msg.code;
    if (!msg.ref) setStatus("There was a problem with the connection.");
  });
  sig.on("redirect", (msg) => {
    // another server runs this session: the same grant and token go there at once
    const url = String(msg.url || "");
    if (/^wss?:\/\//.test(url)) state.redirect = url;
  });
  sig.on("service_restarting", (msg) => {
    // the server is stopping to start again: we come back by ourselves, in the same place
    state.restarting = true;
    notify("The service is restarting. You will be back in the group in a moment.");
  });
  sig.on("removed", () => finish("The clinician has ended your place in this session."));
  sig.on("declined", () => finish("The clinician has not admitted you to this session."));
  // someone who was in the room is offered the after-session forms
  sig.on("ended", () => finish("The clinician has ended the session.", true));
  // this place was taken over by the same person in another window: do not take it back
  sig.on("replaced", () => finish("This session was opened in another window."));
  sig.on("close", (ev) => onClose(sig, ev));
}

let reconnectStarted = 0;
let refusals = 0;

let redirects = 0;

async function onClose(sig, ev) {
  if (state.leaving || sig !== state.signaling) return;
  if (state.redirect && redirects < MAX_REDIRECTS) {
    const target = state.redirect;
    state.redirect = null;
    redirects += 1;
    teardown();
    connect(target).catch((e) => (e instanceof Retry ? reconnect()
      : fail(e.message || "Could not reach the server.")));
    return;
  }
  state.redirect = null;
  const code = state.joinError || ev.reason;
  state.joinError = null;
  if (code === "service_unavailable" || ev.code === 1013) {
    // the service cannot reach its records for a moment: try again, with backoff
    reconnect();
    return;
  }
  if (ev.code === 1008) {
    teardown();
    if (REFRESHABLE.has(code) && canRefresh() && refusals < 2) {
      // too long away for the old grant: the invite's secret gets a fresh one
      refusals += 1;
      try {
        await freshGrant();
        await connect();
      } catch (e) {
        if (e instanceof Retry) { refusals -= 1; reconnect(); return; }
        fail(e.plain || "We could not reach Confide. Please check your connection.");
      }
      return;
    }
    if (code === "already_connected" && reconnectStarted && refusals < 3) {
      // our previous connection has not been closed by the server yet
      refusals += 1;
      setTimeout(() => connect().catch((e) => (e instanceof Retry ? reconnect()
        : fail(e.plain || "We could not reach Confide. Please check your connection."))), 1500);
      return;
    }
    if (code === "late_join_closed") {
      // kind words, and saying the clinician knows (the hosts were alerted)
      $("error-title").textContent = "The waiting room has closed";
    }
    fail(refusalText(code));
    return;
  }
  reconnect();
}

// --- finding the way back: say what is happening, and after a minute offer to try at once
function showReconnecting(waitMs, awayMs) {
  const why = state.restarting ? "The service is restarting." : "The connection to the group was lost.";
  const secs = Math.max(1, Math.round(waitMs / 1000));
  $("reconnect-text").textContent =
    `${why} Trying again in ${secs} second${secs === 1 ? "" : "s"} (attempt ${attempts + 1}). ` +
    "You will be back where you were.";
  $("reconnect").hidden = false;
  const offer = awayMs >= OFFER_RETRY_AFTER_MS;
  // the live status line speaks when the situation changes, not at every attempt
  const said = offer ? `${why} Still trying to reconnect: you can try again now.`
    : `${why} Reconnecting…`;
  if ($("status").textContent !== said) setStatus(said);
  $("btn-retry").hidden = !offer;
}

function hideReconnecting() {
  $("reconnect").hidden = true;
  $("btn-retry").hidden = true;
}

$("btn-retry").addEventListener("click", () => {
  // now rather than at the next scheduled attempt (which this replaces)
  if (!reconnectTimer || state.leaving) return;
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  $("reconnect-text").textContent = "Trying again now…";
  attempt();
});

function refusalText(code) {
  const texts = {
    removed: "The clinician has ended your place in this session.",
    declined: "The clinician has not admitted you to this session.",
    session_ended: "This session has ended.",
    room_locked: "The clinician has locked the session for now.",
    room_full: "The session is full.",
    lobby_not_open: "The waiting room is not open yet. Please come back nearer the start time.",
    late_join_closed: say("late_join_closed"),
    already_connected: "This link is already in use in another window.",
    grant_replayed: "This link has already been used. Please open your personal link again.",
    grant_expired: "This link has expired. Please open your personal link again.",
  };
  return texts[code]
    || "This link cannot be used just now. Please open your personal link again, or ask your clinician for a new one.";
}

function teardown() {
  state.inRoom = false;
  closePreview();
  if (state.publisher) { state.publisher.close(); state.publisher = null; }
  if (state.subscriber) { state.subscriber.close(); state.subscriber = null; }
  clearTiles();
}

function backoffMs(attempt) {
  const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

let attempts = 0;
let reconnectTimer = null;

function reconnect() {
  // a blip or a restart: come back with the resume token, without passing the lobby again;
  // one attempt at a time (a failed socket reports both an error and a close)
  if (reconnectTimer || state.leaving) return;
  if (!reconnectStarted) reconnectStarted = Date.now();
  const away = Date.now() - reconnectStarted;
  if (away > RECONNECT_GIVE_UP_MS) {
    fail("The connection was lost. Check that you are online, then try again.", { retry: true });
    return;
  }
  const wait = backoffMs(attempts);
  showReconnecting(wait, away);
  teardown();
  reconnectTimer = setTimeout(() => { reconnectTimer = null; attempt(); }, wait);
}

async function attempt() {
  attempts += 1;
  state.reconnects += 1;
  try { await connect(); } catch (e) {
    if (e instanceof Retry) reconnect();
    else fail(e.plain || "We could not reach Confide. Please check your connection.");
  }
}

async function connect(target) {
  let grant = readGrant();
  if (!grant) grant = await freshGrant();
  if (!grant) { fail("This page needs a personal join link."); return; }
  // this page's own server, unless it sent us on to the server that runs the session (after a
  // drop we ask this page's server again: the session may have moved)
  const url = target || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/rtc`;
  const sig = new Signaling(url);
  state.signaling = sig;
  wire(sig);
  try { await sig.open(); } catch { throw new Retry("Could not reach the server."); }
  const join = { type: "join", grant };
  const resume = sessionStorage.getItem("confide.resume");
  if (resume) join.resume = resume;
  sig.send(join);
  sig.on("joined", () => {
    reconnectStarted = 0; refusals = 0; attempts = 0; redirects = 0;
    hideReconnecting();
  });
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
  if (reply.type !== "ok") notify(say(reply.code));
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
    notify(say(reply.code, "You cannot unmute just now."));
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

// --- low data: others' video off, and the connection indicator
function showIncomingVideo(on) {
  state.incomingVideo = on;
  const b = $("btn-video-in");
  b.textContent = on ? "Save data" : "Show video";
  b.setAttribute("aria-pressed", String(!on));
  b.setAttribute("aria-label", on ? "Turn off other people's video to save data"
    : "Turn other people's video back on");
  document.body.classList.toggle("video-in-off", !on);
  notify(on ? "" : "Other people's video is off to save data. You still hear everyone.");
}

// the server paused others' video to this member alone (their sound keeps coming): the
// tiles show no frozen picture, and the banner says why in plain words
function showLinkWeak(paused) {
  document.body.classList.toggle("link-weak", paused);
  const banner = $("link-weak-banner");
  banner.textContent = LINK_WEAK.paused;
  banner.hidden = !paused;
  notify(paused ? "" : LINK_WEAK.resumed);
}

$("btn-video-in").addEventListener("click", () => {
  if (state.signaling) state.signaling.send({ type: "incoming_video", enabled: !state.incomingVideo });
});

let lastSample = null;
async function watchLink() {
  const pc = state.subscriber && state.subscriber.pc;
  if (!state.inRoom || !pc) { $("link-quality").hidden = true; lastSample = null; return; }
  const now = await sample(pc, lastSample).catch(() => null);
  if (!now) return;
  const remoteVideo = Object.values(state.midOwner).some(
    (o) => o.kind === "video" && (!state.me || o.participantId !== state.me.id));
  if (lastSample) {
    const word = grade(now.overall, state.incomingVideo && remoteVideo);
    state.link.self = { ...now.overall, grade: word };
    $("link-word").textContent = WORDS[word];
    $("link-quality").className = `link-quality link-${word}`;
    $("link-quality").hidden = false;
    if (isHost()) {
      // each member as the host receives them: their loss and frame rate on this connection
      for (const [pid, tile] of state.tiles) {
        const mids = Object.keys(state.midOwner).filter((m) => state.midOwner[m].participantId === pid);
        const f = now.figures(mids);
        const w = grade(f, state.incomingVideo && mids.some((m) => state.midOwner[m].kind === "video"));
        state.link.members[pid] = { ...f, grade: w };
        tile.fig.dataset.link = w;
        tile.badges.dataset.link = `link ${WORDS[w]}`;
      }
    }
  }
  lastSample = now;
}
setInterval(watchLink, 2000);

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
    if (reply.type !== "ok" && state.stage === "prejoin") $("prejoin-error").textContent = say(reply.code);
  });
}

$("text-only").addEventListener("change", async (ev) => {
  const enabled = ev.target.checked;
  if (enabled) stopSending();
  const reply = await command("set_text_only", { enabled });
  if (reply.type !== "ok") ev.target.checked = !enabled;
  else if (!enabled) notify("Use the camera and microphone buttons when you are ready.");
});

for (const box of document.querySelectorAll(".clinician-consent")) {
  box.addEventListener("change", async (ev) => {
    const reply = await command("set_clinician_consent", { consent: ev.target.checked });
    if (reply.type !== "ok" && state.selfState) {
      ev.target.checked = Boolean(state.selfState.clinician_consent);
    }
  });
}

$("prejoin-text-only").addEventListener("change", (ev) => {
  $("device-check").hidden = ev.target.checked;
  if (ev.target.checked) { closePreview(); stopLocal(); }
});

$("btn-preview").addEventListener("click", () => startPreview());

$("btn-agree").addEventListener("click", async () => {
  $("prejoin-error").textContent = "";
  if ($("prejoin-text-only").checked) {
    const reply = await state.signaling.command("set_text_only", { enabled: true });
    if (reply.type !== "ok") { $("prejoin-error").textContent = say(reply.code); return; }
  }
  // where they are today and the session measures come before the waiting room
  const onward = await arrival.beforeLobby((text) => { $("prejoin-error").textContent = text; });
  if (!onward) return;
  const reply = await state.signaling.command("confirm_checklist", { answers: checklistAnswers() });
  if (reply.type !== "ok") {
    show("prejoin");
    $("prejoin-error").textContent = say(reply.code, GENERIC);
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

connect().catch((e) => fail((e && e.plain) || "We could not reach Confide. Please check your connection and open your link again."));
