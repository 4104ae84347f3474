// Virtual keyboard (anywidget ES module, no build step, no imports).
// Draws 32 keys, sounds them with Web Audio, runs metronome/countdown and records
// {pitch, velocity, start, end} events (ms from the start of recording) into the model.
// Effects in the recorded score (auto-chord, arpeggio, sustain) are applied in Python;
// here they are only previewed so the player hears them.

const N_KEYS = 32;
const NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];
const BLACK = new Set([1, 3, 6, 8, 10]);
const SCALES = { major: [0, 2, 4, 5, 7, 9, 11], minor: [0, 2, 3, 5, 7, 8, 10] };
const LETTERS = { C: 0, D: 2, E: 4, F: 5, G: 7, A: 9, B: 11 };
const CODE_CHARS = { Semicolon: ";", Quote: "'" };
const MIN_OCTAVE = 24, MAX_OCTAVE = 84;
const NO_MIDI = "Web MIDI not available in this browser: use the on-screen keys or hot keys";

const noteName = (p) => NAMES[p % 12] + (Math.floor(p / 12) - 1);
const codeChar = (code) => (code.startsWith("Key") ? code.slice(3).toLowerCase() : CODE_CHARS[code]);

// Third and fifth above `pitch` in key `text` ("C major", "A minor"); major triad otherwise.
function triad(pitch, text) {
  const m = /^\s*([A-G])\s*([#b]?)\s*(major|minor|maj|min)?\s*$/i.exec(text || "");
  const pc = pitch % 12;
  if (!m) return [pitch + 4, pitch + 7];
  const tonic = (LETTERS[m[1].toUpperCase()] + ({ "#": 1, b: -1 }[m[2]] || 0) + 12) % 12;
  const mode = (m[3] || "major").toLowerCase().startsWith("min") ? "minor" : "major";
  const scale = SCALES[mode].map((d) => (tonic + d) % 12);
  const degree = scale.indexOf(pc);
  if (degree < 0) return [pitch + 4, pitch + 7];
  return [2, 4].map((k) => pitch + ((scale[(degree + k) % 7] - pc + 12) % 12));
}

// A tiny synthesizer: one triangle oscillator and gain envelope per note.  Never throws.
class Synth {
  constructor() { this.ctx = null; }
  ensure() { // call from user gestures: browsers only start audio after one
    try {
      if (!this.ctx) {
        const AC = window.AudioContext || window.webkitAudioContext;
        if (AC) this.ctx = new AC();
      }
      if (this.ctx && this.ctx.state === "suspended") this.ctx.resume().catch(() => {});
    } catch (e) { this.ctx = null; }
  }
  tone(freq, peak, type = "triangle") {
    if (!this.ctx) return null;
    try {
      const t = this.ctx.currentTime, osc = this.ctx.createOscillator(), gain = this.ctx.createGain();
      osc.type = type;
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0, t);
      gain.gain.linearRampToValueAtTime(peak, t + 0.01);
      gain.gain.setTargetAtTime(peak * 0.5, t + 0.01, 0.4);
      osc.connect(gain).connect(this.ctx.destination);
      osc.start(t);
      return { osc, gain };
    } catch (e) { return null; }
  }
  noteOn(pitch, velocity) { return this.tone(440 * 2 ** ((pitch - 69) / 12), 0.2 * velocity / 127); }
  noteOff(voice, after = 0) {
    if (!voice || !this.ctx) return;
    try {
      const t = this.ctx.currentTime + after;
      voice.gain.gain.cancelScheduledValues(t);
      voice.gain.gain.setTargetAtTime(0, t, 0.05);
      voice.osc.stop(t + 0.4);
    } catch (e) { /* already stopped */ }
  }
  click(accent) { this.noteOff(this.tone(accent ? 1760 : 1320, 0.25, "square"), 0.03); }
}

function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function render({ model, el }) {
  const synth = new Synth();
  const listeners = [], timers = new Set();
  const on = (name, cb) => { model.on(name, cb); listeners.push([name, cb]); };
  const later = (fn, ms) => { const id = setTimeout(() => { timers.delete(id); fn(); }, ms); timers.add(id); return id; };
  const save = (changes) => { for (const [k, v] of Object.entries(changes)) model.set(k, v); model.save_changes(); };
  const low = () => model.get("octave");
  const hot = () => model.get("hot_keys") || {};

  // ---- DOM ----------------------------------------------------------------------------
  const check = (id, label) => {
    const box = h("input", { type: "checkbox", "data-testid": id });
    return [box, h("label", { class: "ck-opt" }, box, " " + label)];
  };
  const button = (id, label, title) => h("button", { class: "cc-btn", "data-testid": id, type: "button", title: title || label,
                                                     "aria-label": title || label, text: label });
  const rec = button("record", "● Record"), stop = button("stop", "■ Stop"), play = button("play", "▶ Play", "Play the last recording");
  const tempo = h("input", { type: "number", min: 40, max: 160, step: 1, "data-testid": "tempo" });
  const [metro, metroL] = check("metronome", "metronome"), [count, countL] = check("countdown", "5 s countdown");
  const status = h("span", { class: "ck-status", "data-testid": "status", text: "ready" });
  const down8 = button("octave-down", "◀ octave", "Octave down (z)"), up8 = button("octave-up", "octave ▶", "Octave up (x)");
  const range = h("span", { class: "ck-range" });
  const [arp, arpL] = check("arpeggiator", "arpeggiator");
  const pattern = h("select", { "data-testid": "arp-pattern", "aria-label": "Arpeggio pattern", title: "Arpeggio pattern" },
    ...[["up", "up"], ["down", "down"], ["updown", "up-down"], ["random", "random"]].map(([v, t]) => h("option", { value: v, text: t })));
  const tap = button("tap-tempo", "tap tempo", "Tap a few times to set the arpeggio speed");
  const tapBpm = h("span", { class: "ck-tap", "data-testid": "tap-bpm" });
  const [chord, chordL] = check("auto-chord", "auto-chord"), [sus, susL] = check("sustain", "sustain (hold Space)");
  const keys = h("div", { class: "ck-keys" });
  const midi = h("div", { class: "ck-midi", "data-testid": "midi-status" });
  const help = h("div", { class: "ck-help" });
  const root = h("div", { class: "capsule-ui capsule-keyboard", tabindex: "0", "data-lm-suppress-shortcuts": "true",
                          role: "group", "data-testid": "keyboard",
                          "aria-label": "Virtual keyboard: with the focus here, keys A to ' play notes, Z and X change octave, Space holds the sustain pedal" },
    h("div", { class: "ck-bar" }, rec, stop, play, h("label", { class: "ck-opt" }, "tempo ", tempo, " bpm"), metroL, countL, status),
    h("div", { class: "ck-bar" }, down8, range, up8, arpL, pattern, tap, tapBpm, chordL, susL),
    keys, help, midi);
  el.append(root);

  const keyEls = [];
  let whites = 0;
  for (let i = 0; i < N_KEYS; i++) {
    const black = BLACK.has(i % 12);
    const k = h("div", { class: black ? "ck-key ck-black" : "ck-key ck-white", "data-testid": "key" }, h("span", { class: "ck-label" }));
    k.style.left = black ? `calc(${whites} * var(--ck-w) - var(--ck-bw) / 2)` : `calc(${whites} * var(--ck-w))`;
    if (!black) whites++;
    keys.append(k);
    keyEls.push(k);
  }
  keys.style.width = `calc(${whites} * var(--ck-w))`;

  // ---- sound: notes, auto-chord and arpeggio previews, sustain --------------------------
  const voices = new Map(); // pitch -> voices of a held key
  let sustained = [], playPedal = false, arpTimer = null, arpStep = 0;
  const arpPool = new Set();
  const pedalDown = () => model.get("sustain") || playPedal;
  const withChord = (p) => (model.get("auto_chord") ? [p, ...triad(p, model.get("chord_key"))] : [p]).filter((q) => q <= 127);
  const arpMs = () => (model.get("tap_bpm") > 0 ? 15000 / model.get("tap_bpm") : model.get("arp_rate") / 24 * 60000 / model.get("tempo"));

  function arpTick() {
    const up = [...arpPool].sort((a, b) => a - b);
    if (!up.length) { arpTimer = null; return; }
    const pat = model.get("arp_pattern");
    const seq = pat === "down" ? up.slice().reverse() : pat === "updown" ? up.concat(up.slice(1, -1).reverse()) : up;
    const p = pat === "random" ? seq[Math.floor(Math.random() * seq.length)] : seq[arpStep++ % seq.length];
    const ms = arpMs();
    synth.noteOff(synth.noteOn(p, 90), ms * 0.9 / 1000);
    arpTimer = later(arpTick, ms);
  }
  function soundOn(p, v) {
    if (model.get("arpeggiator")) {
      withChord(p).forEach((q) => arpPool.add(q));
      if (!arpTimer) { arpStep = 0; arpTick(); }
    } else voices.set(p, withChord(p).map((q) => synth.noteOn(q, v)));
  }
  function soundOff(p) {
    withChord(p).forEach((q) => arpPool.delete(q));
    const vs = voices.get(p) || [];
    voices.delete(p);
    if (pedalDown()) sustained.push(...vs); else vs.forEach((x) => synth.noteOff(x));
  }
  function pedalUp() { sustained.forEach((x) => synth.noteOff(x)); sustained = []; }

  // ---- keys: pressed by mouse, hot keys, MIDI or playback ------------------------------
  const held = new Map(); // pitch -> number of sources holding it
  let take = null; // the recording in progress: {t0, open, events, pedals, pedalStart}
  let counting = null, metroTimer = null, beat = 0;
  const now = () => performance.now() - take.t0;

  function showKey(p) { const k = keyEls[p - low()]; if (k) k.classList.toggle("ck-down", held.has(p)); }
  function press(p, v = 100) {
    const n = held.get(p) || 0;
    held.set(p, n + 1);
    if (n) return;
    if (take) take.open.set(p, { pitch: p, velocity: v, start: now() });
    soundOn(p, v);
    showKey(p);
  }
  function release(p) {
    const n = held.get(p) || 0;
    if (n > 1) { held.set(p, n - 1); return; }
    if (!n) return;
    held.delete(p);
    if (take && take.open.has(p)) { take.events.push({ ...take.open.get(p), end: now() }); take.open.delete(p); }
    soundOff(p);
    showKey(p);
  }

  // ---- recording, metronome, countdown, playback -------------------------------------
  const setStatus = (text) => { status.textContent = text; };
  const recorded = (n) => `recorded ${n} note${n === 1 ? "" : "s"}`;
  function metronomeTick() {
    synth.click(beat++ % 4 === 0);
    metroTimer = later(metronomeTick, 60000 / model.get("tempo"));
  }
  function updateMetronome() {
    const want = !!take && model.get("metronome");
    if (want && !metroTimer) { beat = 0; metronomeTick(); }
    if (!want && metroTimer) { clearTimeout(metroTimer); timers.delete(metroTimer); metroTimer = null; }
  }
  function begin() {
    counting = null;
    take = { t0: performance.now(), open: new Map(), events: [], pedals: [], pedalStart: model.get("sustain") ? 0 : null };
    setStatus("recording…");
    root.classList.add("ck-recording");
    updateMetronome();
  }
  function startRecording() {
    if (take || counting) return;
    stopPlayback();
    synth.ensure();
    if (model.get("countdown")) {
      let left = 5;
      const tick = () => {
        if (left === 0) return begin();
        setStatus(`countdown ${left}…`);
        synth.click(left === 5);
        left--;
        counting = later(tick, 1000);
      };
      tick();
    } else begin();
    if (!model.get("recording")) save({ recording: true }); // after the state is set: this re-enters
  }
  function stopRecording() {
    if (counting) { clearTimeout(counting); timers.delete(counting); counting = null; setStatus("ready"); }
    if (take) {
      for (const p of [...take.open.keys()]) take.events.push({ ...take.open.get(p), end: now() });
      if (take.pedalStart !== null) take.pedals.push({ start: take.pedalStart, end: now() });
      const events = take.events.sort((a, b) => a.start - b.start || a.pitch - b.pitch);
      const pedals = take.pedals;
      take = null;
      updateMetronome();
      root.classList.remove("ck-recording");
      setStatus(recorded(events.length));
      save({ pedal_events: pedals, events, recording: false });
    } else if (model.get("recording")) save({ recording: false });
  }
  let playing = [];
  function stopPlayback() {
    if (!playing.length) return;
    playing.forEach((id) => { clearTimeout(id); timers.delete(id); });
    playing = [];
    for (const p of [...held.keys()]) { held.set(p, 1); release(p); }
    playPedal = false;
    pedalUp();
    setStatus("ready");
  }
  function playBack() {
    if (take || counting) return;
    stopPlayback();
    synth.ensure();
    const events = model.get("events") || [];
    if (!events.length) return setStatus("nothing recorded yet");
    setStatus("playing…");
    const at = (ms, fn) => playing.push(later(fn, ms));
    for (const e of events) { at(e.start, () => press(e.pitch, e.velocity)); at(e.end, () => release(e.pitch)); }
    for (const d of model.get("pedal_events") || []) {
      at(d.start, () => { playPedal = true; });
      at(d.end, () => { playPedal = false; if (!pedalDown()) pedalUp(); });
    }
    const end = Math.max(...events.map((e) => e.end), 0);
    at(end + 10, () => { playing = []; playPedal = false; pedalUp(); setStatus(recorded(events.length)); });
  }

  // ---- controls <-> model ------------------------------------------------------------
  function relabel() {
    const map = hot(), byOffset = {};
    for (const [ch, off] of Object.entries(map)) byOffset[off] = ch;
    keyEls.forEach((k, i) => {
      const p = low() + i;
      k.dataset.pitch = String(p);
      k.title = noteName(p);
      k.firstChild.textContent = (byOffset[i] ? byOffset[i].toUpperCase() + "\n" : "") + (p % 12 === 0 ? noteName(p) : "");
      k.classList.toggle("ck-down", held.has(p));
    });
    range.textContent = `${noteName(low())}–${noteName(low() + N_KEYS - 1)}`;
    help.textContent = `Hot keys (click the keyboard first): ${Object.keys(map).join(" ")} play from ${noteName(low())} up; ` +
      "z / x octave down / up; hold Space for sustain.";
  }
  const shiftOctave = (d) => {
    const o = Math.min(MAX_OCTAVE, Math.max(MIN_OCTAVE, low() + 12 * d));
    if (o !== low()) save({ octave: o });
  };
  function syncControls() {
    tempo.value = model.get("tempo");
    for (const [box, name] of [[metro, "metronome"], [count, "countdown"], [arp, "arpeggiator"], [chord, "auto_chord"], [sus, "sustain"]]) box.checked = model.get(name);
    pattern.value = model.get("arp_pattern");
    const bpm = model.get("tap_bpm");
    tapBpm.textContent = bpm > 0 ? `tapped ${Math.round(bpm)} bpm` : "";
    midi.textContent = model.get("midi_status");
    down8.disabled = low() <= MIN_OCTAVE;
    up8.disabled = low() >= MAX_OCTAVE;
  }
  for (const name of ["tempo", "metronome", "countdown", "arpeggiator", "arp_pattern", "auto_chord", "tap_bpm", "midi_status"]) on(`change:${name}`, syncControls);
  on("change:octave", () => { syncControls(); relabel(); });
  on("change:hot_keys", relabel);
  on("change:metronome", updateMetronome);
  on("change:sustain", () => {
    syncControls();
    const onNow = model.get("sustain");
    if (take && onNow && take.pedalStart === null) take.pedalStart = now();
    if (take && !onNow && take.pedalStart !== null) { take.pedals.push({ start: take.pedalStart, end: now() }); take.pedalStart = null; }
    if (!pedalDown()) pedalUp();
  });
  on("change:recording", () => { if (model.get("recording")) startRecording(); else stopRecording(); });
  on("change:events", () => { if (!take && !playing.length) setStatus((model.get("events") || []).length ? recorded(model.get("events").length) : "ready"); });

  const commitTempo = () => {
    const v = Math.round(Number(tempo.value));
    if (tempo.value !== "" && Number.isFinite(v) && v !== model.get("tempo")) save({ tempo: Math.min(160, Math.max(40, v)) });
    syncControls();
  };
  tempo.addEventListener("change", commitTempo);
  tempo.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.stopPropagation(); commitTempo(); } });
  for (const [box, name] of [[metro, "metronome"], [count, "countdown"], [arp, "arpeggiator"], [chord, "auto_chord"], [sus, "sustain"]]) {
    box.addEventListener("change", () => save({ [name]: box.checked }));
  }
  pattern.addEventListener("change", () => save({ arp_pattern: pattern.value }));
  rec.addEventListener("click", startRecording);
  stop.addEventListener("click", () => { stopRecording(); stopPlayback(); });
  play.addEventListener("click", playBack);
  down8.addEventListener("click", () => shiftOctave(-1));
  up8.addEventListener("click", () => shiftOctave(1));
  let taps = [];
  tap.addEventListener("click", () => {
    const t = performance.now() / 1000;
    if (taps.length && t - taps[taps.length - 1] > 2) taps = [];
    taps = [...taps, t].slice(-8);
    save({ taps });
  });

  // ---- mouse / touch -----------------------------------------------------------------
  const pointers = new Map(); // pointerId -> pitch
  const pointerOff = (ev) => { if (pointers.has(ev.pointerId)) { release(pointers.get(ev.pointerId)); pointers.delete(ev.pointerId); } };
  keyEls.forEach((k) => {
    k.addEventListener("pointerdown", (ev) => {
      ev.preventDefault();
      if (k.hasPointerCapture && k.hasPointerCapture(ev.pointerId)) k.releasePointerCapture(ev.pointerId);
      root.focus({ preventScroll: true });
      synth.ensure();
      pointerOff(ev);
      pointers.set(ev.pointerId, Number(k.dataset.pitch));
      press(Number(k.dataset.pitch));
    });
    k.addEventListener("pointerenter", (ev) => { // glide across keys with the button held
      if (!(ev.buttons & 1) || !pointers.has(ev.pointerId)) return;
      pointerOff(ev);
      pointers.set(ev.pointerId, Number(k.dataset.pitch));
      press(Number(k.dataset.pitch));
    });
    for (const type of ["pointerup", "pointerleave", "pointercancel"]) k.addEventListener(type, pointerOff);
  });
  keys.addEventListener("pointerup", () => root.focus({ preventScroll: true }));

  // ---- hot keys (on the widget only, so JupyterLab keeps its own shortcuts elsewhere) ---
  const hotHeld = new Map(); // KeyboardEvent.code -> pitch
  let spaceSustain = false;
  root.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t.matches("input[type=number], select")) return; // typing into a field
    if (ev.code === "Space") {
      if (t.matches("button, input")) return;
      ev.preventDefault(); ev.stopPropagation();
      if (!ev.repeat && !model.get("sustain")) { spaceSustain = true; save({ sustain: true }); }
      return;
    }
    const ch = codeChar(ev.code), off = hot()[ch];
    if (off === undefined && ch !== "z" && ch !== "x") return;
    ev.preventDefault(); ev.stopPropagation();
    if (ev.repeat || hotHeld.has(ev.code)) return;
    synth.ensure();
    if (ch === "z" || ch === "x") return shiftOctave(ch === "z" ? -1 : 1);
    hotHeld.set(ev.code, low() + off);
    press(low() + off);
  });
  root.addEventListener("keyup", (ev) => {
    if (ev.code === "Space" && spaceSustain) { spaceSustain = false; save({ sustain: false }); ev.stopPropagation(); return; }
    if (!hotHeld.has(ev.code)) return;
    ev.stopPropagation();
    release(hotHeld.get(ev.code));
    hotHeld.delete(ev.code);
  });
  root.addEventListener("focusout", (ev) => { // keys up when focus leaves, so nothing sticks
    if (root.contains(ev.relatedTarget)) return;
    hotHeld.forEach((p) => release(p));
    hotHeld.clear();
    if (spaceSustain) { spaceSustain = false; save({ sustain: false }); }
  });

  // ---- Web MIDI ------------------------------------------------------------------------
  let midiAccess = null, alive = true;
  const setMidi = (text) => { if (alive && model.get("midi_status") !== text) save({ midi_status: text }); syncControls(); };
  function onMidi(msg) {
    const [st, d1, d2] = msg.data, cmd = st & 0xf0;
    if (cmd === 0x90 && d2 > 0) { synth.ensure(); press(d1, d2); }
    else if (cmd === 0x80 || cmd === 0x90) release(d1);
    else if (cmd === 0xb0 && d1 === 64 && (d2 >= 64) !== model.get("sustain")) save({ sustain: d2 >= 64 });
  }
  function listInputs() {
    const names = [];
    midiAccess.inputs.forEach((input) => { input.onmidimessage = onMidi; names.push(input.name); });
    setMidi(names.length ? `Web MIDI: listening to ${names.join(", ")}` : "Web MIDI ready: connect a MIDI keyboard (or use the on-screen keys or hot keys)");
  }
  if (typeof navigator.requestMIDIAccess !== "function") setMidi(NO_MIDI);
  else {
    setMidi("asking the browser for Web MIDI…");
    let answered = false;
    later(() => { if (!answered) setMidi(NO_MIDI + " (no answer to the permission request)"); }, 5000);
    try {
      navigator.requestMIDIAccess().then(
        (access) => { answered = true; midiAccess = access; listInputs(); access.onstatechange = listInputs; },
        (err) => { answered = true; setMidi(`${NO_MIDI} (${(err && err.name) || "refused"})`); });
    } catch (err) { answered = true; setMidi(`${NO_MIDI} (${err.name || "refused"})`); }
  }

  relabel();
  syncControls();
  if ((model.get("events") || []).length) setStatus(recorded(model.get("events").length));
  return () => {
    alive = false;
    for (const [name, cb] of listeners) model.off(name, cb);
    timers.forEach((id) => clearTimeout(id));
    if (midiAccess) midiAccess.inputs.forEach((input) => { input.onmidimessage = null; });
    if (synth.ctx) synth.ctx.close().catch(() => {});
  };
}

export default { render };
