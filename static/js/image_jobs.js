// Live output of build, pull and push jobs on ws/jobs/<pk>/output/.
//
// The server sends {"output": text} (build output, appended to the <pre>),
// {"progress": {status, id, progressDetail: {current, total}}} (docker's JSON progress:
// one row per layer id with a bar, other statuses as lines of output), {"failed":
// {message, step, exit_code}}, {"done": {...}}, {"end": {state, error}} and, before a
// refusal, {"error": sentence}. The page never sends anything.
(function () {
  "use strict";

  const root = document.getElementById("image-job");
  if (!root) return;
  const output = document.getElementById("image-job-output");
  const layers = document.getElementById("image-job-layers");
  const failure = document.getElementById("image-job-failure");
  const done = document.getElementById("image-job-done");
  const state = document.getElementById("image-job-state");
  const note = document.getElementById("image-job-note");
  const rows = new Map(); // layer id -> {status, bar}

  function append(text) {
    const stick = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
    output.append(document.createTextNode(text));
    if (stick) output.scrollTop = output.scrollHeight;
  }

  function layer(event) {
    let row = rows.get(event.id);
    if (!row) {
      const tr = layers.insertRow();
      tr.dataset.layer = event.id;
      tr.insertCell().textContent = event.id;
      const status = tr.insertCell();
      const bar = document.createElement("progress");
      bar.max = 1;
      bar.value = 0;
      tr.insertCell().append(bar);
      row = { status, bar };
      rows.set(event.id, row);
    }
    row.status.textContent = event.status;
    const detail = event.progressDetail || {};
    if (detail.total) {
      row.bar.max = detail.total;
      row.bar.value = Math.min(detail.current || 0, detail.total);
    } else if (/complete|exists|Pushed|Mounted/i.test(event.status)) {
      row.bar.max = 1;
      row.bar.value = 1;
    }
  }

  function show(message) {
    if (message.output !== undefined) append(message.output);
    if (message.progress) {
      if (message.progress.id) layer(message.progress);
      else append(message.progress.status + "\n");
    }
    if (message.failed) {
      failure.hidden = false;
      failure.querySelector(".step").textContent = message.failed.step || "";
      failure.querySelector(".exit").textContent =
        message.failed.exit_code === null || message.failed.exit_code === undefined
          ? "" : `exit code ${message.failed.exit_code}`;
      failure.querySelector(".message").textContent = message.failed.message;
    }
    if (message.done) {
      done.hidden = false;
      const result = done.querySelector(".result");
      if (result) result.textContent = message.done.image || message.done.digest || "";
    }
    if (message.end) {
      state.textContent = message.end.state;
      state.className = `state state-${message.end.state}`;
      root.dataset.state = message.end.state;
      if (message.end.state !== "succeeded" && failure.hidden) {
        failure.hidden = false;
        failure.querySelector(".message").textContent = message.end.error || message.end.state;
      }
    }
    if (message.error) note.textContent = message.error;
  }

  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/ws/jobs/${root.dataset.job}/output/`);
  socket.addEventListener("message", (e) => show(JSON.parse(e.data)));
  socket.addEventListener("close", (e) => {
    if (!root.dataset.state && e.code !== 1000) note.textContent ||= `Live output closed (${e.code}).`;
  });
})();
