// Signaling socket, protocol v1 (docs/signaling.md).

const COMMAND_TIMEOUT_MS = 10000;

export class Signaling extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
    this.closed = false;
    this.nextId = 1;
    this.pending = new Map(); // request id -> resolve
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error("signaling connection failed"));
      ws.onmessage = (ev) => {
        let msg;
        try { msg = JSON.parse(ev.data); } catch { return; }
        if (!msg || typeof msg.type !== "string") return;
        if ((msg.type === "ok" || msg.type === "error") && this.pending.has(msg.ref)) {
          const settle = this.pending.get(msg.ref);
          this.pending.delete(msg.ref);
          settle(msg);
        }
        this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
        this.dispatchEvent(new CustomEvent("message", { detail: msg }));
      };
      ws.onclose = (ev) => {
        this.closed = true;
        for (const settle of this.pending.values()) {
          settle({ type: "error", code: "disconnected", message: "the connection closed" });
        }
        this.pending.clear();
        this.dispatchEvent(new CustomEvent("close", { detail: { code: ev.code, reason: ev.reason } }));
      };
    });
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ v: 1, ...msg }));
      return true;
    }
    return false;
  }

  // a command decided by the session rules: resolves with the `ok` or `error` reply
  command(name, fields = {}) {
    const id = `c${this.nextId++}`;
    return new Promise((resolve) => {
      if (!this.send({ type: "command", name, ...fields, id })) {
        resolve({ type: "error", code: "disconnected", message: "not connected" });
        return;
      }
      this.pending.set(id, resolve);
      setTimeout(() => {
        if (this.pending.delete(id)) {
          resolve({ type: "error", code: "timeout", message: "no answer from the server" });
        }
      }, COMMAND_TIMEOUT_MS);
    });
  }

  on(type, fn) {
    this.addEventListener(type, (ev) => fn(ev.detail));
  }

  close() {
    if (this.ws) this.ws.close(1000, "bye");
  }
}
