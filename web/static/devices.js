// Camera and microphone: asked for together (one prompt), then one at a time when that fails,
// so a missing camera does not cost the microphone. What went wrong is told in plain words,
// with what to do next; the browser's error names stay out of sight.

export const VIDEO = { width: 640, height: 480, frameRate: 15 };

// what a person can do about each problem; nothing here names an error or a code
export const ADVICE = {
  insecure: "Your browser will not share a camera or microphone with this page because the " +
    "link was not opened securely. Please open the link exactly as your clinician sent it " +
    "(it starts with https). You can still join by text.",
  refused: "Your browser is not allowing this page to use your camera or microphone. To use " +
    "them, allow them in your browser's settings for this site (often a camera or padlock " +
    "sign beside the address), then press \u201cCheck again\u201d. You can also join by text.",
  missing: "We could not find a camera or microphone on this device. You can join by text.",
  busy: "Your camera or microphone seems to be in use by another app. Close that app (for " +
    "example another video call), then press \u201cCheck again\u201d. You can also join by text.",
  failed: "Your camera or microphone did not start. Press \u201cCheck again\u201d, or join by text.",
};

// the same, when the microphone works and only the camera does not
export const CAMERA_ADVICE = {
  refused: "Your browser is not allowing this page to use your camera. You will join with " +
    "your microphone only. To be seen, allow the camera in your browser's settings for this " +
    "site, then press \u201cCheck again\u201d.",
  missing: "We could not find a camera on this device. You will join with your microphone only.",
  busy: "Your camera seems to be in use by another app. You will join with your microphone " +
    "only. To be seen, close that app, then press \u201cCheck again\u201d.",
  failed: "Your camera did not start. You will join with your microphone only.",
};

export function devicesReachable() {
  // browsers offer getUserMedia only in a secure context (https, or this machine itself)
  return Boolean(window.isSecureContext && navigator.mediaDevices
    && navigator.mediaDevices.getUserMedia);
}

// the kind of problem behind a getUserMedia failure
export function problemOf(error) {
  const name = error && error.name;
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
    return "refused";
  }
  if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") {
    return "missing";
  }
  if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") {
    return "busy";
  }
  return "failed";
}

async function ask(constraints) {
  try {
    return { stream: await navigator.mediaDevices.getUserMedia(constraints), problem: null };
  } catch (e) {
    return { stream: null, problem: problemOf(e), name: e && e.name };
  }
}

// open what is wanted: {tracks, audio, video} where audio/video are null (working) or a problem
export async function openDevices({ audio = true, video = true } = {}) {
  const out = { tracks: [], audio: audio ? "missing" : null, video: video ? "missing" : null,
                names: [] };
  if (!audio && !video) return out;
  if (!devicesReachable()) {
    if (audio) out.audio = "insecure";
    if (video) out.video = "insecure";
    return out;
  }
  const both = await ask({ audio, video: video ? VIDEO : false });
  if (both.stream) {
    out.tracks = both.stream.getTracks();
    out.audio = null; out.video = null;
    return out;
  }
  out.names.push(both.name);
  // one at a time: a refusal or a missing camera must not cost the microphone
  for (const kind of ["audio", "video"].filter((k) => (k === "audio" ? audio : video))) {
    const one = await ask(kind === "audio" ? { audio: true } : { video: VIDEO });
    if (one.stream) { out.tracks.push(...one.stream.getTracks()); out[kind] = null; }
    else { out[kind] = one.problem; out.names.push(one.name); }
  }
  return out;
}

// one sentence (or two) for the person, from what openDevices found
export function adviceFor(found) {
  if (!found.audio && !found.video) return "";
  if (!found.audio && found.video) return CAMERA_ADVICE[found.video] || CAMERA_ADVICE.failed;
  if (found.audio && !found.video) {
    return "Your camera works but your microphone did not start. You will join with your " +
      "camera only, and can take part by text.";
  }
  const problem = found.video === "insecure" || found.audio === "insecure" ? "insecure"
    : found.audio === "refused" || found.video === "refused" ? "refused"
      : found.audio === "busy" || found.video === "busy" ? "busy"
        : found.audio === "missing" && found.video === "missing" ? "missing" : "failed";
  return ADVICE[problem];
}
