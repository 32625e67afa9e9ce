// Live calls over server-sent events: the table is redrawn from each snapshot; elapsed times tick locally.
"use strict";
(() => {
  const table = document.getElementById("live-table");
  const body = document.getElementById("live-calls");
  const empty = document.getElementById("live-empty");
  const status = document.getElementById("live-status");
  const seat = document.getElementById("seat");
  const pickLabel = document.getElementById("pick-label").innerHTML;
  seat.value = localStorage.getItem("console-seat") || seat.value;
  seat.addEventListener("change", () => localStorage.setItem("console-seat", seat.value));

  function cell(row, className, text) {
    const td = row.insertCell();
    if (className) td.className = className;
    if (text !== undefined) td.textContent = text;
    return td;
  }

  function draw(calls) {
    body.textContent = "";
    for (const call of calls) {
      const row = body.insertRow();
      row.dataset.call = call.call_id;
      cell(row, "", call.caller);
      cell(row, "elapsed").dataset.started = call.started_at;
      cell(row, "node", `${call.flow || ""}:${call.node || ""}`);
      cell(row, "ivr-node", call.ivr_node || "");
      const heard = cell(row, "heard");
      for (const text of call.heard) heard.appendChild(document.createElement("div")).textContent = text;
      const partial = heard.appendChild(document.createElement("div"));
      partial.className = "partial";
      partial.textContent = call.partial || "";
      const button = cell(row, "").appendChild(document.createElement("button"));
      button.className = "pick";
      button.dataset.call = call.call_id;
      if (call.picked_up_to) {  // picked up already (by anyone): say where it went
        button.textContent = table.dataset.picked.replace("{seat}", call.picked_up_to);
        button.disabled = true;
      } else {
        button.innerHTML = pickLabel;
      }
    }
    empty.hidden = calls.length > 0;
    elapsed();
  }

  function elapsed() {
    document.querySelectorAll("td.elapsed[data-started]").forEach((td) => {
      const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(td.dataset.started)) / 1000));
      td.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
    });
  }
  setInterval(elapsed, 1000);
  elapsed();

  body.addEventListener("click", async (event) => {
    const button = event.target.closest("button.pick");
    if (!button) return;
    button.disabled = true;
    const response = await fetch(`/live/${button.dataset.call}/pick-up`, {
      method: "POST", headers: Console.csrfHeaders({ "Content-Type": "application/x-www-form-urlencoded" }),
      body: new URLSearchParams({ seat: seat.value }),
    });
    button.textContent = response.ok ? table.dataset.picked.replace("{seat}", seat.value) : response.status;
  });

  // This node's recognisers' load: the page's sentence with the figures of each `speech` event put in.
  const speech = document.getElementById("speech-load");
  function drawSpeech(figures) {
    if (!speech) return;
    speech.textContent = speech.dataset.template.replace(/\{(\w+)\}/g, (whole, name) =>
      name in figures ? String(figures[name]) : whole);
  }

  if (table.dataset.stream === "true") {
    const source = new EventSource("/live/events");
    source.addEventListener("calls", (event) => { status.hidden = true; draw(JSON.parse(event.data)); });
    source.addEventListener("speech", (event) => { status.hidden = true; drawSpeech(JSON.parse(event.data)); });
    source.addEventListener("error", () => { status.hidden = false; });
  }
})();
