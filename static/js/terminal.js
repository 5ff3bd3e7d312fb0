// Browser terminals on ws/containers/<ref>/terminal/ (issue 6), drawn by xterm.js.
//
// Protocol (containers_app/consumers/terminal.py): binary frames are raw terminal bytes
// both ways; text frames are JSON: {"resize": [rows, cols]} from here, {"ready"},
// {"exit": code}, {"detached": true} and {"error": sentence} to here; a refusal closes
// with 4000 + the HTTP status. Every way a session can end is said on the status line,
// so the user never stares at a black box.
//
// Markup: any element with [data-terminal] holding a .term-screen, a .term-status and,
// optionally, a form.term-controls (mode, cmd, user); data-ref names the container,
// data-autoconnect starts at once. Several on one page are independent.
(function () {
  "use strict";

  const PASTE_CHUNK = 32 * 1024; // a large paste goes out in pieces the socket can take
  const encoder = new TextEncoder();
  const CLOSE_REASONS = {
    4400: "the request was not valid",
    4401: "you are not signed in",
    4403: "permission denied",
    4404: "no such container (or not yours)",
    4409: "the container is not running",
    4500: "the engine failed",
    4501: "the engine lacks a feature this needs",
  };

  function socketUrl(ref, params) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams(params).toString();
    return `${scheme}//${location.host}/ws/containers/${encodeURIComponent(ref)}/terminal/?${query}`;
  }

  class ContainerTerminal {
    constructor(root) {
      this.root = root;
      this.ref = root.dataset.ref;
      this.screen = root.querySelector(".term-screen");
      this.statusLine = root.querySelector(".term-status");
      this.controls = root.querySelector("form.term-controls");
      this.socket = null;
      this.term = new window.Terminal({
        cursorBlink: true,
        convertEol: false,
        scrollback: 5000,
        fontFamily: '"DejaVu Sans Mono", ui-monospace, monospace',
        fontSize: 14,
        theme: { background: "#0d1117" },
      });
      this.fit = new window.FitAddon.FitAddon();
      this.term.loadAddon(this.fit);
      this.term.open(this.screen);
      this.refit();
      // Typed keys, pastes (xterm turns a paste into one onData) and mouse reports.
      this.term.onData((text) => this.sendBytes(encoder.encode(text)));
      this.term.onBinary((text) => {
        const bytes = new Uint8Array(text.length);
        for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0xff;
        this.sendBytes(bytes);
      });
      this.term.onResize(({ rows, cols }) => this.sendJson({ resize: [rows, cols] }));
      // The layout follows the element: a window resize, a split pane, a tab shown.
      this.observer = new ResizeObserver(() => this.refit());
      this.observer.observe(this.screen);
      if (this.controls) {
        this.controls.addEventListener("submit", (event) => {
          event.preventDefault();
          this.connect(this.options());
        });
        const disconnect = this.controls.querySelector(".term-disconnect");
        if (disconnect) disconnect.addEventListener("click", () => this.disconnect());
      }
      this.setStatus("idle", "not connected");
      if (root.dataset.autoconnect !== undefined) this.connect(this.options());
    }

    options() {
      const form = this.controls;
      const value = (name, fallback) => {
        const field = form && form.elements.namedItem(name);
        return field && field.value !== undefined ? field.value : fallback;
      };
      return {
        mode: value("mode", this.root.dataset.mode || "exec"),
        cmd: value("cmd", this.root.dataset.cmd || ""),
        user: value("user", ""),
      };
    }

    refit() {
      if (this.screen.offsetWidth === 0 || this.screen.offsetHeight === 0) return; // hidden
      try {
        this.fit.fit();
      } catch (e) {
        // fit() measures the renderer; before the first paint there is nothing to measure.
      }
    }

    setStatus(kind, text) {
      this.root.dataset.state = kind;
      if (this.statusLine) {
        this.statusLine.textContent = text;
        this.statusLine.className = `term-status term-${kind}`;
      }
    }

    connect({ mode, cmd, user }) {
      this.disconnect();
      this.refit();
      this.mode = mode === "attach" ? "attach" : "exec";
      const params = { mode: this.mode, rows: this.term.rows, cols: this.term.cols };
      if (this.mode === "exec" && cmd) params.cmd = cmd;
      if (this.mode === "exec" && user) params.user = user;
      const socket = new WebSocket(socketUrl(this.ref, params));
      socket.binaryType = "arraybuffer";
      this.socket = socket;
      this.opened = false;
      this.ended = false; // a final status was set: the close must not overwrite it
      this.error = "";
      this.setStatus("connecting", "connecting…");
      socket.onopen = () => {
        this.opened = true;
        this.setStatus("connecting", "connected; starting the session…");
      };
      socket.onmessage = (event) => {
        if (socket !== this.socket) return;
        if (typeof event.data !== "string") {
          this.term.write(new Uint8Array(event.data));
          return;
        }
        this.onJson(JSON.parse(event.data));
      };
      socket.onclose = (event) => {
        if (socket === this.socket) this.onClose(event);
      };
      this.term.focus();
    }

    onJson(message) {
      if (message.ready) {
        const what =
          message.ready.mode === "attach"
            ? "attached to the container's TTY (ctrl-p ctrl-q detaches)"
            : `running ${(message.ready.command || []).join(" ") || "a shell"}`;
        this.setStatus("open", what);
        // The pty was made with the size we asked for; say it again in case it changed.
        this.sendJson({ resize: [this.term.rows, this.term.cols] });
      } else if ("exit" in message) {
        this.ended = true;
        if (this.mode === "attach" || message.exit === null) {
          const code = message.exit === null ? "" : ` (exit code ${message.exit})`;
          this.setStatus("ended", `container stopped${code}`);
        } else {
          this.setStatus("ended", `exited with code ${message.exit}`);
        }
      } else if (message.detached) {
        this.ended = true;
        this.setStatus("ended", "detached; the container keeps running");
      } else if (message.error) {
        this.error = message.error;
      }
    }

    onClose(event) {
      this.socket = null;
      if (this.ended) return;
      if (!this.opened) {
        this.setStatus(
          "failed",
          `could not connect (close code ${event.code}): a proxy or the Origin check may be refusing websockets`,
        );
      } else if (event.code >= 4000) {
        const why = CLOSE_REASONS[event.code] || `HTTP ${event.code - 4000}`;
        this.setStatus("failed", `refused: ${why} (close code ${event.code})${this.error ? ": " + this.error : ""}`);
      } else {
        this.setStatus("failed", `connection lost (close code ${event.code}${event.reason ? ", " + event.reason : ""})`);
      }
    }

    sendBytes(bytes) {
      if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
      for (let start = 0; start < bytes.length; start += PASTE_CHUNK) {
        this.socket.send(bytes.subarray(start, start + PASTE_CHUNK));
      }
    }

    sendJson(message) {
      if (this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify(message));
      }
    }

    disconnect() {
      if (this.socket) {
        const socket = this.socket;
        this.socket = null;
        socket.close();
        this.setStatus("idle", "disconnected");
      }
    }
  }

  function start() {
    window.moorageTerminals = window.moorageTerminals || [];
    document.querySelectorAll("[data-terminal]").forEach((root) => {
      if (root.moorageTerminal) return;
      root.moorageTerminal = new ContainerTerminal(root);
      window.moorageTerminals.push(root.moorageTerminal);
    });
  }

  window.ContainerTerminal = ContainerTerminal;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
