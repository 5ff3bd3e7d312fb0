// Live stats charts on ws/containers/<ref>/stats/ (issue 6), drawn with uPlot.
//
// One sample a second: {"cpu_percent", "memory", "memory_limit", "net_rx", "net_tx",
// "block_read", "block_write", "pids"} (CPU by Docker's formula, server-side), then
// {"end": true} when the container stops. Network and block I/O arrive as counters;
// the charts show rates (bytes/s) from consecutive samples. The last WINDOW seconds are
// kept. Markup: [data-stats][data-ref] with .stats-chart[data-chart=cpu|mem|net|blk],
// .stats-now and .stats-status.
(function () {
  "use strict";

  const WINDOW = 120;

  function bytes(value) {
    if (value === null || value === undefined) return "";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let n = Math.abs(value);
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return `${(Math.sign(value) * n).toFixed(n < 10 && i ? 1 : 0)} ${units[i]}`;
  }

  const CHARTS = {
    cpu: { title: "CPU %", series: [["CPU %", "#1f6feb"]], format: (v) => (v == null ? "" : v.toFixed(1) + "%") },
    mem: { title: "Memory", series: [["used", "#8250df"]], format: bytes },
    net: { title: "Network /s", series: [["rx", "#1a7f37"], ["tx", "#cf222e"]], format: bytes },
    blk: { title: "Block I/O /s", series: [["read", "#9a6700"], ["write", "#0969da"]], format: bytes },
  };

  class LiveStats {
    constructor(root) {
      this.root = root;
      this.ref = root.dataset.ref;
      this.statusLine = root.querySelector(".stats-status");
      this.now = root.querySelector(".stats-now");
      this.data = {};
      this.plots = {};
      root.querySelectorAll(".stats-chart").forEach((el) => this.makeChart(el));
      this.observer = new ResizeObserver(() => this.resize());
      this.observer.observe(root);
      this.connect();
      // Stopped, then running again (live.js saw it): sample again.
      document.addEventListener("moorage:container", (event) => {
        if (event.detail.id === this.ref && event.detail.state === "running" && this.ended) {
          this.connect();
        }
      });
    }

    makeChart(el) {
      const kind = el.dataset.chart;
      const spec = CHARTS[kind];
      this.data[kind] = [[], ...spec.series.map(() => [])];
      const options = {
        title: spec.title,
        width: Math.max(200, el.clientWidth),
        height: 160,
        series: [{}, ...spec.series.map(([label, stroke]) => ({ label, stroke, width: 1.5, value: (u, v) => spec.format(v) }))],
        axes: [{}, { size: 70, values: (u, splits) => splits.map(spec.format) }],
        // x: always the last WINDOW seconds (one early point must not span years);
        // y: from zero, with a floor so an idle container's flat line is readable.
        scales: {
          x: { time: true, range: (u, min, max) => [max - WINDOW, max] },
          y: { range: (u, min, max) => [0, Math.max(max || 0, kind === "cpu" ? 5 : 1024)] },
        },
      };
      this.plots[kind] = new window.uPlot(options, this.data[kind], el);
    }

    resize() {
      for (const [kind, plot] of Object.entries(this.plots)) {
        const el = this.root.querySelector(`.stats-chart[data-chart=${kind}]`);
        if (el && el.clientWidth) plot.setSize({ width: el.clientWidth, height: 160 });
      }
    }

    push(kind, t, values) {
      const series = this.data[kind];
      if (!series) return;
      series[0].push(t);
      values.forEach((v, i) => series[i + 1].push(v));
      if (series[0].length > WINDOW) series.forEach((s) => s.shift());
      this.plots[kind].setData(series);
    }

    sample(s) {
      const t = Date.now() / 1000;
      const before = this.last;
      this.last = { ...s, t };
      this.push("cpu", t, [s.cpu_percent]);
      this.push("mem", t, [s.memory]);
      if (before) {
        const dt = Math.max(0.001, t - before.t);
        const rate = (key) => Math.max(0, (s[key] - before[key]) / dt);
        this.push("net", t, [rate("net_rx"), rate("net_tx")]);
        this.push("blk", t, [rate("block_read"), rate("block_write")]);
      }
      if (this.now) {
        const limit = s.memory_limit ? ` / ${bytes(s.memory_limit)}` : "";
        this.now.textContent = `CPU ${s.cpu_percent.toFixed(1)}% · memory ${bytes(s.memory)}${limit} · pids ${s.pids}`;
      }
    }

    setStatus(text) {
      if (this.statusLine) this.statusLine.textContent = text;
    }

    connect() {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const socket = new WebSocket(`${scheme}//${location.host}/ws/containers/${encodeURIComponent(this.ref)}/stats/`);
      let opened = false;
      let error = "";
      let ended = false;
      this.ended = false;
      this.setStatus("connecting…");
      socket.onopen = () => {
        opened = true;
        this.setStatus("live, one sample a second");
      };
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.end) {
          ended = this.ended = true;
          this.setStatus("container stopped");
        } else if (message.error) error = message.error;
        else this.sample(message);
      };
      socket.onclose = (event) => {
        this.ended = true;
        if (ended) return;
        if (!opened) this.setStatus(`could not connect (close code ${event.code}): a proxy or the Origin check may be refusing websockets`);
        else if (event.code >= 4000) this.setStatus(`no stats (close code ${event.code})${error ? ": " + error : ""}`);
        else this.setStatus(`connection lost (close code ${event.code})`);
      };
      this.socket = socket;
    }
  }

  function start() {
    document.querySelectorAll("[data-stats]").forEach((root) => {
      if (!root.moorageStats) root.moorageStats = new LiveStats(root);
    });
  }

  window.LiveStats = LiveStats;
  LiveStats.bytes = bytes; // also the containers list's live column (stats_column.js)
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
