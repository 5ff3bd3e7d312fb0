// Live logs on ws/containers/<ref>/logs/?tail=N|all (issue 6), one socket per source.
//
// The server sends {"lines": [[stream, time, text], ...]} and {"end": true}; this page
// sends {"pause": bool}, and while paused the server stops reading the log, so a chatty
// container cannot drown the tab. What is kept is bounded twice: at most KEEP lines in
// memory (searchable), at most RENDER of them in the DOM, appended once per animation
// frame. Whatever falls out is counted and the whole log stays one download away.
//
// Markup: an element with [data-logs] and data-sources='[{"ref", "name"}, ...]' holding
// .logs-lines, .logs-status, .logs-note and a form.logs-controls (tail, timestamps,
// search, pause button). More than one source is a merged view, one colour each.
(function () {
  "use strict";

  const RENDER = 5000;
  const KEEP = 50000;
  const COLOURS = 8; // .logs-src-0 … .logs-src-7 in streams.css

  function socketUrl(ref, tail) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/ws/containers/${encodeURIComponent(ref)}/logs/?tail=${encodeURIComponent(tail)}`;
  }

  class LiveLogs {
    constructor(root) {
      this.root = root;
      this.sources = JSON.parse(root.dataset.sources || "[]");
      this.merged = this.sources.length > 1;
      this.view = root.querySelector(".logs-lines");
      this.statusLine = root.querySelector(".logs-status");
      this.note = root.querySelector(".logs-note");
      this.form = root.querySelector("form.logs-controls");
      this.lines = []; // {src, stream, time, text}
      this.dropped = 0; // older lines no longer kept in memory
      this.pending = []; // arrived, not yet drawn
      this.paused = false;
      this.sockets = [];
      this.states = [];
      this.search = "";
      this.timestamps = false;
      if (this.form) {
        const f = this.form.elements;
        this.form.addEventListener("submit", (e) => {
          e.preventDefault();
          this.open();
        });
        if (f.timestamps) {
          this.timestamps = f.timestamps.checked;
          f.timestamps.addEventListener("change", () => {
            this.timestamps = f.timestamps.checked;
            this.root.classList.toggle("logs-with-time", this.timestamps);
          });
          this.root.classList.toggle("logs-with-time", this.timestamps);
        }
        if (f.search) {
          f.search.addEventListener("input", () => {
            this.search = f.search.value;
            this.redraw();
          });
        }
        const pause = this.form.querySelector(".logs-pause");
        if (pause) pause.addEventListener("click", () => this.setPaused(!this.paused, pause));
      }
      this.open();
      // A source that stopped and runs again (live.js saw it) is followed again.
      document.addEventListener("moorage:container", (event) => {
        const index = this.sources.findIndex((s) => s.ref === event.detail.id);
        if (index >= 0 && event.detail.state === "running" && this.states[index] !== "live") {
          if (this.sockets[index]) this.sockets[index].close();
          this.sockets[index] = this.connect(this.sources[index], index, "0");
        }
      });
    }

    tail() {
      const field = this.form && this.form.elements.tail;
      const value = field ? field.value.trim() : this.root.dataset.tail || "200";
      return value === "all" || /^\d+$/.test(value) ? value : "200";
    }

    open() {
      this.sockets.forEach((s) => s && s.close());
      this.lines = [];
      this.pending = [];
      this.dropped = 0;
      this.view.textContent = "";
      this.sockets = this.sources.map((source, index) => this.connect(source, index));
      this.states = this.sources.map(() => "connecting");
      this.showStatus();
      this.showNote();
    }

    connect(source, index, tail) {
      const socket = new WebSocket(socketUrl(source.ref, tail || this.tail()));
      let opened = false;
      let error = "";
      let ended = false;
      socket.onopen = () => {
        opened = true;
        this.states[index] = "live";
        this.showStatus();
        if (this.paused) socket.send(JSON.stringify({ pause: true }));
      };
      socket.onmessage = (event) => {
        if (this.sockets[index] !== socket) return;
        const message = JSON.parse(event.data);
        if (message.lines) this.add(index, message.lines);
        else if (message.end) {
          ended = true;
          this.states[index] = "stopped: log complete";
          this.showStatus();
        } else if (message.error) error = message.error;
      };
      socket.onclose = (event) => {
        if (this.sockets[index] !== socket || ended) return;
        if (!opened) {
          this.states[index] = `could not connect (close code ${event.code}): a proxy or the Origin check may be refusing websockets`;
        } else if (event.code >= 4000) {
          this.states[index] = `refused (close code ${event.code})${error ? ": " + error : ""}`;
        } else {
          this.states[index] = `connection lost (close code ${event.code})`;
        }
        this.showStatus();
      };
      return socket;
    }

    add(src, raw) {
      for (const [stream, time, text] of raw) {
        const line = { src, stream, time, text: text.replace(/\r?\n$/, "") };
        this.lines.push(line);
        if (!this.search || this.matches(line)) this.pending.push(line);
      }
      if (this.lines.length > KEEP) {
        const extra = this.lines.length - KEEP;
        this.lines.splice(0, extra);
        this.dropped += extra;
      }
      if (this.pending.length > RENDER) this.pending.splice(0, this.pending.length - RENDER);
      if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
    }

    matches(line) {
      return line.text.toLowerCase().includes(this.search.toLowerCase());
    }

    row(line) {
      const div = document.createElement("div");
      div.className = `logs-line logs-${line.stream === "stderr" ? "stderr" : "stdout"}`;
      if (this.merged) div.classList.add(`logs-src-${line.src % COLOURS}`);
      const time = document.createElement("span");
      time.className = "logs-time";
      time.textContent = line.time + " ";
      div.appendChild(time);
      if (this.merged) {
        const name = document.createElement("span");
        name.className = "logs-name";
        name.textContent = this.sources[line.src].name + " | ";
        div.appendChild(name);
      }
      div.appendChild(document.createTextNode(line.text));
      return div;
    }

    flush() {
      this.frame = null;
      const view = this.view;
      const atBottom = view.scrollHeight - view.scrollTop - view.clientHeight < 40;
      const fragment = document.createDocumentFragment();
      for (const line of this.pending) fragment.appendChild(this.row(line));
      this.pending = [];
      view.appendChild(fragment);
      let extra = view.childElementCount - RENDER;
      while (extra-- > 0) view.removeChild(view.firstElementChild);
      if (atBottom) view.scrollTop = view.scrollHeight;
      this.showNote();
      this.showStatus();
    }

    redraw() {
      this.view.textContent = "";
      this.pending = (this.search ? this.lines.filter((l) => this.matches(l)) : this.lines).slice(-RENDER);
      this.flush();
      this.view.scrollTop = this.view.scrollHeight;
    }

    setPaused(paused, button) {
      this.paused = paused;
      for (const socket of this.sockets) {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ pause: paused }));
      }
      if (button) button.textContent = paused ? "Resume" : "Pause";
      this.root.dataset.paused = paused ? "yes" : "no";
      this.showStatus();
    }

    showNote() {
      if (!this.note) return;
      const hidden = this.dropped + Math.max(0, this.lines.length - RENDER);
      this.note.hidden = hidden === 0 || Boolean(this.search);
      this.note.querySelector(".logs-dropped").textContent = String(hidden);
    }

    showStatus() {
      if (!this.statusLine) return;
      const shown = this.view.childElementCount;
      const parts = this.sources.map((s, i) => (this.merged ? `${s.name}: ${this.states[i]}` : this.states[i]));
      const search = this.search ? `, ${shown} matching "${this.search}"` : "";
      this.statusLine.textContent = `${this.paused ? "paused · " : ""}${parts.join(" · ")} · ${this.lines.length + this.dropped} lines${search}`;
    }
  }

  function start() {
    document.querySelectorAll("[data-logs]").forEach((root) => {
      if (!root.moorageLogs) root.moorageLogs = new LiveLogs(root);
    });
  }

  window.LiveLogs = LiveLogs;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
