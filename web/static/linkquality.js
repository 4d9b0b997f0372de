// How well the connection carries the group, from the browser's own getStats: packet loss,
// round-trip time and frames per second. Shown to each member for themselves, and to the host
// for each member (as the host receives them).

const POOR = { lossPct: 8, rttMs: 500, fps: 5 };
const FAIR = { lossPct: 2, rttMs: 250, fps: 10 };

// a grade for one set of figures; fps counts only where video is expected
export function grade({ lossPct, rttMs, fps }, expectVideo) {
  if (lossPct == null && rttMs == null && fps == null) return "unknown";
  if (lossPct > POOR.lossPct || rttMs > POOR.rttMs || (expectVideo && fps != null && fps < POOR.fps)) {
    return "poor";
  }
  if (lossPct > FAIR.lossPct || rttMs > FAIR.rttMs || (expectVideo && fps != null && fps < FAIR.fps)) {
    return "fair";
  }
  return "good";
}

export const WORDS = { good: "good", fair: "fair", poor: "poor", unknown: "checking" };

// figures since the last sample: overall, and per media line (mid) of the connection
export async function sample(pc, previous) {
  const report = await pc.getStats();
  const now = { at: performance.now(), mids: {} };
  let rttMs = null;
  report.forEach((s) => {
    if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime != null) {
      rttMs = s.currentRoundTripTime * 1000;
    }
    if (s.type === "inbound-rtp" && s.mid != null) {
      now.mids[s.mid] = { kind: s.kind, lost: s.packetsLost || 0, received: s.packetsReceived || 0,
                          frames: s.framesDecoded || 0, bytes: s.bytesReceived || 0 };
    }
  });
  const figures = (mids) => {
    let lost = 0; let received = 0; let frames = 0; let video = false;
    const seconds = previous ? (now.at - previous.at) / 1000 : 0;
    for (const mid of mids) {
      const a = now.mids[mid]; const b = previous && previous.mids[mid];
      if (!a || !b) continue;
      lost += Math.max(0, a.lost - b.lost);
      received += Math.max(0, a.received - b.received);
      if (a.kind === "video") { video = true; frames += Math.max(0, a.frames - b.frames); }
    }
    const total = lost + received;
    return { lossPct: total ? (100 * lost) / total : null, rttMs,
             fps: video && seconds > 0 ? frames / seconds : null };
  };
  now.overall = figures(Object.keys(now.mids));
  now.figures = figures;
  return now;
}
