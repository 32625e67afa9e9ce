// Call review: the transcript follows the audio (current word highlighted), a click on a word seeks there,
// a double-click corrects it in place (POST /api/tickets/{id}/transcript/corrections); space plays or
// pauses, the arrow keys skip five seconds; selected words fill the "copy to" box.
"use strict";
(() => {
  const player = document.getElementById("player");
  const box = document.getElementById("transcript");
  const selection = document.getElementById("selection");
  const words = box ? Array.from(box.querySelectorAll(".w")) : [];
  const starts = words.map((w) => parseFloat(w.dataset.s));
  let current = null;

  function wordAt(time) {  // the last word that has started by `time` (binary search: words are in order)
    let low = 0, high = words.length - 1, found = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (starts[middle] <= time) { found = middle; low = middle + 1; } else { high = middle - 1; }
    }
    return found < 0 ? null : words[found];
  }

  function follow() {
    const word = wordAt(player.currentTime);
    if (word === current) return;
    if (current) current.classList.remove("current");
    current = word;
    if (word) {
      word.classList.add("current");
      const top = word.offsetTop - box.offsetTop;
      if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - 30) box.scrollTop = top - 40;
    }
  }

  function loop() { follow(); if (!player.paused) requestAnimationFrame(loop); }

  function seek(seconds) {
    if (!player) return;
    if (player.readyState === 0) player.preload = "auto";
    player.currentTime = Math.max(0, seconds);
    follow();
  }

  if (player && words.length) {
    player.addEventListener("play", () => requestAnimationFrame(loop));
    ["seeked", "timeupdate", "pause"].forEach((name) => player.addEventListener(name, follow));
  }

  function edit(word) {
    if (box.dataset.editable !== "true" || word.querySelector("input")) return;
    const before = word.textContent;
    const input = document.createElement("input");
    input.value = word.classList.contains("struck") ? "" : before;
    input.setAttribute("aria-label", word.dataset.word);
    word.textContent = "";
    word.appendChild(input);
    input.focus();
    input.select();
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      if (!save || input.value.trim() === before.trim()) { word.textContent = before; return; }
      const response = await fetch(`/api/tickets/${box.dataset.ticket}/transcript/corrections`, {
        method: "POST", headers: Console.csrfHeaders({ "Content-Type": "application/json" }),
        body: JSON.stringify({ index: Number(word.dataset.i), text: input.value }),
      });
      if (!response.ok) { word.textContent = before; alert((await response.json()).detail || response.status); return; }
      const saved = await response.json();
      word.textContent = saved.correction.text || saved.word;
      word.classList.add("fixed");
      word.classList.toggle("struck", !saved.correction.text);
      word.title = `${saved.word} → ${saved.correction.text} · ${saved.correction.by} ${saved.correction.at.slice(0, 16).replace("T", " ")}`;
    };
    input.addEventListener("keydown", (event) => {
      event.stopPropagation();
      if (event.key === "Enter") { event.preventDefault(); finish(true); }
      if (event.key === "Escape") { event.preventDefault(); finish(false); }
    });
    input.addEventListener("blur", () => finish(true));
    input.addEventListener("click", (event) => event.stopPropagation());
    input.addEventListener("dblclick", (event) => event.stopPropagation());
  }

  if (box) {
    box.addEventListener("click", (event) => {
      const word = event.target.closest(".w");
      if (word && !word.querySelector("input")) seek(parseFloat(word.dataset.s));
    });
    box.addEventListener("dblclick", (event) => {
      const word = event.target.closest(".w");
      if (word) { window.getSelection().removeAllRanges(); edit(word); }
    });
    box.addEventListener("mouseup", () => {
      const text = window.getSelection().toString().replace(/\s+/g, " ").trim();
      if (text && selection) selection.value = text;
    });
  }

  document.addEventListener("keydown", (event) => {
    if (!player || event.target.closest("input, textarea, select, button, audio, [contenteditable]")) return;
    if (event.key === " ") { event.preventDefault(); if (player.paused) player.play(); else player.pause(); }
    else if (event.key === "ArrowLeft") { event.preventDefault(); seek(player.currentTime - 5); }
    else if (event.key === "ArrowRight") { event.preventDefault(); seek(player.currentTime + 5); }
  });
})();
