// Piano-roll editor (anywidget ES module, no build step).  Python owns the score: this file
// draws the synced `notes`, plays them with Web Audio, and sends what the user did as
// custom messages ({op: "toggle" | "pitch" | "length" | "apply" | "download"}).

const ROW_H = 14;    // px per pitch row
const CELL_W = 18;   // px per grid cell at zoom 1
const FIT_MIN_W = 5; // "fit" never draws cells narrower than this: longer pieces scroll
const KEYS_W = 44;   // the pitch-name column
const ZOOM_STEP = 1.5;
const NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];  // as capsule_lib.keys.PITCH_NAMES
const BLACK = new Set([1, 3, 6, 8, 10]);
const pitchName = (p) => NAMES[p % 12] + (Math.floor(p / 12) - 1);
const hz = (p) => 440 * Math.pow(2, (p - 69) / 12);

function h(tag, cls, attrs = {}, text = "") {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text) e.textContent = text;
  return e;
}

// Seconds <-> steps at the score's tempo, honouring tempo changes (as Score.step_to_seconds).
function timeline(model) {
  const res = model.get("resolution");
  const segs = [];
  let step = 0, sec = 0, bpm = model.get("tempo");
  for (const [s, b] of model.get("tempo_changes") || []) {
    if (s > step) {
      segs.push({ step, sec, bpm });
      sec += ((s - step) * 60) / (bpm * res);
      step = s;
    }
    bpm = b;
  }
  segs.push({ step, sec, bpm });
  const seg = (key, v) => segs.filter((g) => g[key] <= v).pop() || segs[0];
  return {
    toSec: (st) => { const g = seg("step", st); return g.sec + ((st - g.step) * 60) / (g.bpm * res); },
    toStep: (t) => { const g = seg("sec", t); return g.step + ((t - g.sec) * g.bpm * res) / 60; },
  };
}

function render({ model, el }) {
  const root = h("div", "capsule-ui capsule-pianoroll", { role: "group", "aria-label": "Piano roll" });
  const bar = h("div", "cpr-toolbar");
  const button = (id, label, title) => {
    const b = h("button", "cc-btn cpr-button", { "data-testid": id, type: "button", title, "aria-label": title,
                                                 "data-lm-suppress-shortcuts": "true" }, label);
    bar.append(b);
    return b;
  };
  const playBtn = button("play", "▶ Play", "Play");
  const stopBtn = button("stop", "■ Stop", "Stop");
  const outBtn = button("zoom-out", "− Zoom out", "Zoom out");
  const inBtn = button("zoom-in", "+ Zoom in", "Zoom in");
  const fitBtn = button("fit", "↔ Whole piece", "Fit the whole piece in view");
  const applyBtn = button("apply", "Apply changes", "Apply changes");
  const downloadBtn = button("download", "Download MIDI", "Download the notes as a MIDI file");
  const view = h("span", "cpr-view cc-note", { "data-testid": "view", "aria-live": "polite" });
  bar.append(view);
  const audioEl = h("audio", "cpr-audio", { controls: "", preload: "auto", "data-testid": "audio",
                                             "aria-label": "Rendered audio", "data-lm-suppress-shortcuts": "true" });
  let audioUrl = null;
  const legend = h("div", "cpr-legend");
  const status = h("div", "cpr-status", { "data-testid": "status", role: "status" });

  const scroller = h("div", "cpr-scroll", { "data-testid": "scroll", tabindex: "0", "data-lm-suppress-shortcuts": "true",
                                            "aria-label": "Notes: scroll with the arrow keys" });
  const inner = h("div", "cpr-inner");
  const corner = h("div", "cpr-corner");
  const ruler = h("div", "cpr-ruler");
  const keys = h("div", "cpr-keys");
  const grid = h("div", "cpr-grid", { "data-testid": "grid" });
  const layer = h("div", "cpr-layer");      // rows, bar lines, notes: rebuilt on every draw
  const playhead = h("div", "cpr-playhead", { "data-testid": "playhead" });
  grid.append(layer, playhead);
  inner.append(corner, ruler, keys, grid);
  scroller.append(inner);
  root.append(bar, audioEl, legend, scroller, status);
  el.append(root);

  // Cell width: "fit" spreads the piece over the view (never below FIT_MIN_W px), else CELL_W * zoom.
  const cellWidth = () => {
    if (!model.get("fit")) return CELL_W * model.get("zoom");
    const cells = Math.max(1, Math.ceil(model.get("total_steps") / Math.max(1, model.get("grid"))));
    const room = (scroller.clientWidth || el.clientWidth || 800) - (keys.offsetWidth || KEYS_W) - 1;
    return Math.min(CELL_W * 8, Math.max(FIT_MIN_W, Math.floor((room / cells) * 100) / 100));
  };
  const geom = () => {
    const g = Math.max(1, model.get("grid"));
    const cw = cellWidth();
    return { g, cw, px: cw / g, high: model.get("pitch_high"), low: model.get("pitch_low") };
  };

  // "bars 1-8 of 8": which bars the view shows, so a piece wider than the view says so.
  function drawView() {
    const { px } = geom(), spb = model.get("steps_per_bar"), total = model.get("total_steps");
    const bars = Math.max(1, Math.round(total / spb)), barPx = spb * px;
    const first = Math.min(bars, Math.floor(scroller.scrollLeft / barPx) + 1);
    const shown = scroller.scrollLeft + scroller.clientWidth - (keys.offsetWidth || KEYS_W);
    const last = Math.min(bars, Math.max(first, Math.floor((shown + 1) / barPx)));
    view.textContent = first === 1 && last >= bars ? `all ${bars} bars` : `bars ${first}–${last} of ${bars} · scroll →`;
    view.dataset.first = first; view.dataset.last = last; view.dataset.bars = bars;
  }

  function draw() {
    const { g, cw, px, high, low } = geom();
    const total = model.get("total_steps"), spb = model.get("steps_per_bar"), res = model.get("resolution");
    const width = Math.ceil(total / g) * cw, height = (high - low + 1) * ROW_H;
    Object.assign(grid.dataset, { cellWidth: cw, cellHeight: ROW_H, pitchHigh: high, pitchLow: low, gridSteps: g });
    grid.style.width = ruler.style.width = `${width}px`;
    grid.style.height = keys.style.height = `${height}px`;
    grid.style.backgroundSize = `${cw}px ${ROW_H}px`;
    keys.replaceChildren();
    layer.replaceChildren();
    ruler.replaceChildren();
    for (let p = high; p >= low; p--) {
      const top = (high - p) * ROW_H;
      const black = BLACK.has(p % 12);
      keys.append(h("div", `cpr-key${black ? " black" : ""}${p % 12 === 0 ? " c" : ""}`,
                    { style: `top:${top}px` }, pitchName(p)));
      if (black) layer.append(h("div", "cpr-row black", { style: `top:${top}px` }));
    }
    for (let s = 0; s <= total; s += res) {
      const isBar = s % spb === 0;
      layer.append(h("div", isBar ? "cpr-line bar" : "cpr-line", { style: `left:${s * px}px` }));
      if (isBar && s < total) ruler.append(h("span", "cpr-bar", { style: `left:${s * px}px` }, String(s / spb + 1)));
    }
    const tracks = model.get("tracks");
    for (const n of model.get("notes")) {
      const tr = tracks[n.track] || {};
      const editable = !!tr.editable;
      const note = h("div", `cpr-note${editable ? " editable" : ""}`, {
        "data-testid": "note", "data-track": n.track, "data-start": n.start, "data-pitch": n.pitch,
        "data-duration": n.duration, "data-editable": editable, title: `${tr.name}: ${pitchName(n.pitch)}`,
        style: `left:${n.start * px}px; top:${(high - n.pitch) * ROW_H}px; width:${Math.max(3, n.duration * px - 1)}px;`
          + `background:${tr.colour}; opacity:${0.45 + (0.55 * n.velocity) / 127}`,
      });
      if (editable) note.append(h("div", "cpr-resize", { "data-testid": "note-resize" }));
      layer.append(note);
    }
    drawView();
    legend.replaceChildren(...tracks.map((tr) => {
      const item = h("span", `cpr-track${tr.editable ? " editable" : ""}`, {}, `${tr.name}${tr.editable ? " (editing)" : ""}`);
      item.prepend(h("i", "", { style: `background:${tr.colour}` }));
      return item;
    }));
    drawStatus();
  }

  function drawStatus() {
    status.textContent = model.get("status");
    status.classList.toggle("error", model.get("status_level") === "error");
    applyBtn.classList.toggle("dirty", model.get("dirty"));
    playBtn.disabled = model.get("playing");
    const editable = model.get("editable");
    applyBtn.hidden = downloadBtn.hidden = !editable;
    fitBtn.setAttribute("aria-pressed", String(model.get("fit")));
  }

  // Real audio, rendered by the kernel: an <audio> element whose time drives the playhead.
  function drawAudio() {
    const data = model.get("audio");
    const bytes = data && data.byteLength ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
    if (audioUrl) { URL.revokeObjectURL(audioUrl); audioUrl = null; }
    if (bytes) {
      audioUrl = URL.createObjectURL(new Blob([bytes], { type: model.get("audio_mime") || "audio/mpeg" }));
      audioEl.src = audioUrl;
      audioEl.hidden = false;
    } else {
      if (!audioEl.paused) audioEl.pause();
      audioEl.removeAttribute("src");
      audioEl.hidden = true;
    }
    root.dataset.audio = bytes ? "ready" : "none";
  }
  const hasAudio = () => !!audioUrl;

  const send = (msg) => model.send({ track: model.get("track"), ...msg });

  // -- editing: double-click adds/removes, drag a note for pitch, drag its edge for length --
  function cellAt(e) {
    const { g, cw, high } = geom();
    const r = grid.getBoundingClientRect();
    return { start: Math.floor((e.clientX - r.left) / cw) * g, pitch: high - Math.floor((e.clientY - r.top) / ROW_H) };
  }

  grid.addEventListener("dblclick", (e) => {
    e.preventDefault();
    e.stopPropagation();
    if (!model.get("editable")) return;
    const note = e.target.closest(".cpr-note.editable");
    const at = note ? { start: +note.dataset.start, pitch: +note.dataset.pitch } : cellAt(e);
    if (at.pitch < 0 || at.pitch > 127 || at.start < 0) return;
    send({ op: "toggle", ...at });
  });

  let drag = null;
  grid.addEventListener("pointerdown", (e) => {
    const note = e.target.closest(".cpr-note.editable");
    if (!note || e.button !== 0) return;
    e.preventDefault();
    e.stopPropagation();
    const d = note.dataset;
    drag = { note, resize: !!e.target.closest(".cpr-resize"), x: e.clientX, y: e.clientY,
             start: +d.start, pitch: +d.pitch, duration: +d.duration, value: null };
    note.classList.add("dragging");
  });

  function dragTo(e) {
    const { g, cw, px, high, low } = geom();
    if (drag.resize) {
      const cells = Math.round((e.clientX - drag.x) / cw);
      drag.value = Math.max(drag.duration + cells * g, Math.min(drag.duration, g));
      drag.note.style.width = `${Math.max(3, drag.value * px - 1)}px`;
    } else {
      const rows = Math.round((drag.y - e.clientY) / ROW_H);
      drag.value = Math.min(high, Math.max(low, drag.pitch + rows));
      drag.note.style.top = `${(high - drag.value) * ROW_H}px`;
    }
  }
  const onMove = (e) => { if (drag) dragTo(e); };
  const onUp = (e) => {
    if (!drag) return;
    dragTo(e);
    const d = drag;
    drag = null;
    d.note.classList.remove("dragging");
    if (d.resize && d.value !== d.duration) {
      send({ op: "length", start: d.start, pitch: d.pitch, duration: d.value });
    } else if (!d.resize && d.value !== d.pitch) {
      send({ op: "pitch", start: d.start, pitch: d.pitch, new_pitch: d.value });
    }
  };
  window.addEventListener("pointermove", onMove);
  window.addEventListener("pointerup", onUp);

  // -- playback: Web Audio oscillators (if there is audio) and a playhead on the clock --
  let audio = null, play = null;
  function audioContext() {
    try {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!audio && AC) audio = new AC();
      if (audio && audio.state === "suspended") audio.resume().catch(() => {});
    } catch (err) {
      audio = null;
    }
    return audio;
  }

  function scheduleUpTo(t) {
    // Start the oscillators of notes that begin before t seconds into the piece.
    while (play.next < play.queue.length && play.queue[play.next].at < t) {
      const n = play.queue[play.next++];
      if (!play.out) continue;
      try {
        const ctx = play.out.context, when = play.t0 + n.at, end = when + Math.max(0.05, n.len);
        const osc = ctx.createOscillator(), gain = ctx.createGain();
        osc.type = n.drum ? "square" : n.wave;
        osc.frequency.value = n.drum ? 110 + (n.pitch % 12) * 40 : hz(n.pitch);
        const v = 0.25 * (n.velocity / 127), stop = n.drum ? when + 0.06 : end;
        gain.gain.setValueAtTime(0, when);
        gain.gain.linearRampToValueAtTime(v, when + 0.01);
        gain.gain.setValueAtTime(v, Math.max(when + 0.01, stop - 0.03));
        gain.gain.linearRampToValueAtTime(0, stop);
        osc.connect(gain).connect(play.out);
        osc.start(when);
        osc.stop(stop + 0.01);
      } catch (err) { /* audio is optional: the playhead still runs */ }
    }
  }

  // Follow the <audio> element: whoever started it (our Play or its own controls), the playhead tracks it.
  let follow = 0;
  function followAudio() {
    cancelAnimationFrame(follow);
    playhead.style.display = "block";
    const tl = timeline(model);
    const tick = () => {
      const x = Math.max(0, tl.toStep(audioEl.currentTime)) * geom().px;
      playhead.style.left = `${x}px`;
      if (x > scroller.scrollLeft + scroller.clientWidth - KEYS_W - 60 || x < scroller.scrollLeft) {
        scroller.scrollLeft = Math.max(0, x - 80);
      }
      if (!audioEl.paused && !audioEl.ended) follow = requestAnimationFrame(tick);
    };
    follow = requestAnimationFrame(tick);
  }
  let quiet = false;  // our own "playing" updates must not pause or restart the audio
  const setPlaying = (v) => {
    if (model.get("playing") === v) return;
    quiet = true;
    try { model.set("playing", v); model.save_changes(); } finally { quiet = false; }
  };
  const onAudioPlay = () => { followAudio(); setPlaying(true); };
  const onAudioStop = () => {
    cancelAnimationFrame(follow);
    if (audioEl.ended) { playhead.style.display = "none"; playhead.style.left = "0px"; }
    if (!play) setPlaying(false);
  };
  audioEl.addEventListener("play", onAudioPlay);
  audioEl.addEventListener("pause", onAudioStop);
  audioEl.addEventListener("ended", onAudioStop);
  audioEl.addEventListener("seeked", () => {  // moved by hand while paused: show where
    if (audioEl.paused && audioEl.currentTime > 0) { playhead.style.display = "block"; followAudio(); }
  });

  function startPlay() {
    if (play) return;
    if (hasAudio()) {
      if (audioEl.paused) audioEl.play().catch(() => startSynth());
      return;
    }
    startSynth();
  }

  function startSynth() {
    if (play) return;
    const tl = timeline(model), tracks = model.get("tracks");
    const waves = ["triangle", "sine", "sawtooth", "square"];
    const queue = model.get("notes").map((n) => ({
      ...n, at: tl.toSec(n.start), len: tl.toSec(n.start + n.duration) - tl.toSec(n.start),
      drum: !!(tracks[n.track] || {}).is_drum, wave: waves[n.track % waves.length],
    })).sort((a, b) => a.at - b.at);
    const endStep = Math.max(0, ...model.get("notes").map((n) => n.start + n.duration));
    const ctx = audioContext();
    let out = null;
    try {
      if (ctx) { out = ctx.createGain(); out.gain.value = 0.6; out.connect(ctx.destination); }
    } catch (err) { out = null; }
    play = { tl, queue, next: 0, out, t0: ctx ? ctx.currentTime + 0.05 : 0, clock: performance.now() + 50,
             end: tl.toSec(endStep), frame: 0 };
    playhead.style.display = "block";
    const tick = () => {
      if (!play) return;
      const t = (performance.now() - play.clock) / 1000;
      scheduleUpTo(t + 0.5);
      const x = Math.max(0, play.tl.toStep(Math.max(0, t))) * geom().px;
      playhead.style.left = `${x}px`;
      if (x > scroller.scrollLeft + scroller.clientWidth - 60 || x < scroller.scrollLeft) {
        scroller.scrollLeft = Math.max(0, x - 80);
      }
      if (t >= play.end) { stopPlay(true); return; }
      play.frame = requestAnimationFrame(tick);
    };
    play.frame = requestAnimationFrame(tick);
  }

  function stopPlay(sync) {
    if (hasAudio() && !audioEl.paused) audioEl.pause();
    if (hasAudio()) audioEl.currentTime = 0;
    cancelAnimationFrame(follow);
    if (play) {
      cancelAnimationFrame(play.frame);
      try { if (play.out) play.out.disconnect(); } catch (err) { /* already gone */ }
      play = null;
    }
    playhead.style.display = "none";
    playhead.style.left = "0px";
    if (sync && model.get("playing")) { model.set("playing", false); model.save_changes(); }
  }

  playBtn.addEventListener("click", () => {
    audioContext();  // create/resume inside the click, as browsers require
    model.set("playing", true);
    model.save_changes();
    startPlay();
  });
  stopBtn.addEventListener("click", () => stopPlay(true));
  const onPlaying = () => {
    if (!quiet) model.get("playing") ? startPlay() : stopPlay(false);
    drawStatus();
  };

  // -- zoom keeps the centre of the view in place; from "whole piece" it starts at the fitted width --
  const zoomBy = (f) => {
    const from = model.get("fit") ? cellWidth() / CELL_W : model.get("zoom");
    model.set("zoom", Math.min(8, Math.max(0.25, from * f)));
    model.set("fit", false);
    model.save_changes();
  };
  outBtn.addEventListener("click", () => zoomBy(1 / ZOOM_STEP));
  inBtn.addEventListener("click", () => zoomBy(ZOOM_STEP));
  fitBtn.addEventListener("click", () => { model.set("fit", true); model.save_changes(); });
  let lastCell = cellWidth();
  const onZoom = () => {
    const cw = cellWidth(), mid = scroller.scrollLeft + scroller.clientWidth / 2;
    draw();
    scroller.scrollLeft = Math.max(0, (mid * cw) / lastCell - scroller.clientWidth / 2);
    lastCell = cw;
  };
  scroller.addEventListener("scroll", drawView);
  // The view's width is known only once the widget is on the page (and changes with the window).
  const resize = typeof ResizeObserver === "function" ? new ResizeObserver(() => {
    if (model.get("fit") && Math.abs(cellWidth() - lastCell) > 0.01) { lastCell = cellWidth(); draw(); } else drawView();
  }) : null;
  if (resize) resize.observe(scroller);

  applyBtn.addEventListener("click", () => send({ op: "apply" }));
  downloadBtn.addEventListener("click", () => send({ op: "download" }));

  const onMsg = (msg) => {
    if (msg && msg.op === "download") {
      const bytes = Uint8Array.from(atob(msg.b64), (c) => c.charCodeAt(0));
      const url = URL.createObjectURL(new Blob([bytes], { type: "audio/midi" }));
      const a = h("a", "", { href: url, download: msg.name || "melody.mid" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 30000);
    } else if (msg && msg.op === "done") {
      draw();  // also undoes the look of a drag that Python refused
    }
  };

  const redrawOn = ["notes", "tracks", "pitch_low", "pitch_high", "total_steps", "grid", "track"];
  const statusOn = ["status", "status_level", "dirty", "editable", "fit"];
  // [event, handler]: subscribed below, and unsubscribed by the same list when the view goes.
  const listeners = [
    ...redrawOn.map((k) => [`change:${k}`, draw]),
    ...statusOn.map((k) => [`change:${k}`, drawStatus]),
    ["change:zoom", onZoom], ["change:fit", onZoom], ["change:playing", onPlaying],
    ["change:audio", drawAudio], ["msg:custom", onMsg],
  ];
  // A view shorter than the pitch range opens on the notes, not on the empty top rows.
  function centreNotes() {
    const notes = model.get("notes");
    if (!notes.length || scroller.scrollHeight <= scroller.clientHeight) return;
    const pitches = notes.map((n) => n.pitch).sort((a, b) => a - b);
    const mid = pitches[Math.floor(pitches.length / 2)];
    scroller.scrollTop = Math.max(0, (model.get("pitch_high") - mid) * ROW_H - scroller.clientHeight / 2);
  }
  const onRange = () => requestAnimationFrame(centreNotes);
  listeners.push(["change:pitch_high", onRange], ["change:pitch_low", onRange]);
  listeners.forEach(([event, handler]) => model.on(event, handler));
  drawAudio();
  draw();
  requestAnimationFrame(() => { lastCell = cellWidth(); draw(); centreNotes(); });  // now that the view has a width
  if (model.get("playing")) startPlay();

  return () => {
    stopPlay(false);
    if (resize) resize.disconnect();
    window.removeEventListener("pointermove", onMove);
    window.removeEventListener("pointerup", onUp);
    listeners.forEach(([event, handler]) => model.off(event, handler));
    if (audioUrl) URL.revokeObjectURL(audioUrl);
    if (audio) audio.close().catch(() => {});
  };
}

export default { render };
