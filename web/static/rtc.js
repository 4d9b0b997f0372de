// The client's peer connections: publisher (we offer), preview (we offer, before admission)
// and subscriber (the server offers).

// aiortc has no trickle ICE: send descriptions once gathering has finished
export function gatheringComplete(pc, timeoutMs = 5000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, timeoutMs);
  });
}

function preferCodec(transceiver, kind) {
  // both legs of a forwarded stream must use one codec: VP8 for video, Opus for audio
  if (!RTCRtpReceiver.getCapabilities || !transceiver.setCodecPreferences) return;
  const caps = RTCRtpReceiver.getCapabilities(kind);
  if (!caps) return;
  const want = kind === "video" ? ["video/vp8", "video/rtx"] : ["audio/opus"];
  const codecs = caps.codecs.filter((c) => want.includes(c.mimeType.toLowerCase()));
  if (codecs.length) transceiver.setCodecPreferences(codecs);
}

// offer on `pc`, send it as `type`, wait for the answer of `answerType`
async function offerAndAnswer(pc, signaling, type, answerType) {
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  await gatheringComplete(pc);
  const id = `${type}-${Date.now()}`;
  const answered = new Promise((resolve, reject) => {
    const onAnswer = (ev) => { if (ev.detail.ref === id) finish(null, ev.detail.sdp); };
    const onError = (ev) => { if (ev.detail.ref === id) finish(ev.detail); };
    const finish = (err, sdp) => {
      signaling.removeEventListener(answerType, onAnswer);
      signaling.removeEventListener("error", onError);
      if (err) reject(Object.assign(new Error(err.message), { code: err.code }));
      else resolve(sdp);
    };
    signaling.addEventListener(answerType, onAnswer);
    signaling.addEventListener("error", onError);
  });
  signaling.send({ type, sdp: pc.localDescription.sdp, id });
  const sdp = await answered;
  if (pc.signalingState !== "closed") await pc.setRemoteDescription({ type: "answer", sdp });
}

// scale a video sender down to `layer` ({max_width, max_height, max_bps}), the most the room's
// gallery shows of it: the camera keeps its size, the encoder sends less
async function applyLayer(sender, layer) {
  if (!layer || !sender || !sender.track || !sender.getParameters) return;
  const { width, height } = sender.track.getSettings();
  const scale = width && height
    ? Math.max(1, width / layer.max_width, height / layer.max_height) : 1;
  const params = sender.getParameters();
  if (!params.encodings || !params.encodings.length) params.encodings = [{}];
  params.encodings[0].scaleResolutionDownBy = scale;
  params.encodings[0].maxBitrate = layer.max_bps;
  try {
    await sender.setParameters(params);
  } catch (e) {
    // the server scales whatever is larger: sending more costs bandwidth, not privacy
    console.warn("publish layer not applied", e);
  }
}

export class Publisher {
  constructor(signaling, iceServers) {
    this.signaling = signaling;
    this.pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
    this.senders = {};
    this.layer = null;
    this.queue = Promise.resolve();
  }

  // the server's `publish_layer`: send video no larger than the gallery shows it
  setLayer(layer) {
    this.layer = layer;
    this.queue = this.queue.then(() => applyLayer(this.senders.video, layer));
    return this.queue;
  }

  // send `track` as this kind: swap it in place, or add it and renegotiate
  setTrack(kind, track, stream) {
    this.queue = this.queue.then(async () => {
      const sender = this.senders[kind];
      if (sender) {
        await sender.replaceTrack(track);
        if (kind === "video") await applyLayer(sender, this.layer);
        return;
      }
      if (!track) return;
      const t = this.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      preferCodec(t, kind);
      this.senders[kind] = t.sender;
      await offerAndAnswer(this.pc, this.signaling, "publish_offer", "publish_answer");
      if (kind === "video") await applyLayer(t.sender, this.layer);
    });
    return this.queue;
  }

  async publish(stream) {
    const tracks = stream.getTracks();
    for (const track of tracks) {
      const t = this.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      preferCodec(t, track.kind);
      this.senders[track.kind] = t.sender;
    }
    if (!tracks.length) return;
    this.queue = this.queue.then(
      () => offerAndAnswer(this.pc, this.signaling, "publish_offer", "publish_answer"));
    await this.queue;
  }

  close() { this.pc.close(); }
}

// video sent before admission: the server processes it and returns it to us alone
export class Preview {
  constructor(signaling, iceServers) {
    this.signaling = signaling;
    this.pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
  }

  async start(track, stream) {
    const t = this.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    preferCodec(t, "video");
    await offerAndAnswer(this.pc, this.signaling, "preview_offer", "preview_answer");
  }

  close() { this.pc.close(); }
}

export class Subscriber {
  // onTracks(list of {mid, participantId, kind, track}) after each negotiation
  constructor(signaling, iceServers, onTracks) {
    this.signaling = signaling;
    this.iceServers = iceServers;
    this.onTracks = onTracks;
    this.pc = null;
    this.queue = Promise.resolve();
    this.closed = false;
    signaling.on("subscribe_offer", (msg) => {
      // one negotiation at a time, in order
      this.queue = this.queue.then(() => this.handleOffer(msg)).catch((e) => console.error(e));
    });
  }

  async handleOffer(msg) {
    if (this.closed) return;
    if (!this.pc) {
      this.pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle" });
    }
    await this.pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    await gatheringComplete(this.pc);
    this.signaling.send({ type: "subscribe_answer", sdp: this.pc.localDescription.sdp });
    const tracks = [];
    for (const t of this.pc.getTransceivers()) {
      const info = (msg.tracks || {})[t.mid];
      if (info && info.participant_id) {
        tracks.push({ mid: t.mid, participantId: info.participant_id, kind: info.kind,
                      track: t.receiver.track });
      }
    }
    this.onTracks(tracks);
  }

  close() { this.closed = true; if (this.pc) this.pc.close(); }
}
