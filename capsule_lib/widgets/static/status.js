// The studio's status line (anywidget ES module): one message, or a busy state with its elapsed
// time counted here, so a long job never needs the kernel to tick.  Also saves downloads the
// kernel sends ({op: "download", name, mime} + the file's bytes as a buffer).
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "capsule-ui cs-status";
  root.setAttribute("data-testid", "studio-status");
  const bar = document.createElement("progress");
  bar.className = "cs-progress";
  bar.setAttribute("aria-label", "Working");
  const text = document.createElement("span");
  text.className = "cs-message";
  text.setAttribute("role", "status");
  text.setAttribute("aria-live", "polite");
  const clock = document.createElement("span");
  clock.className = "cs-clock cc-note";
  clock.setAttribute("aria-hidden", "true");
  root.append(bar, text, clock);
  el.append(root);
  let timer = null;

  const tick = () => {
    const s = Math.max(0, Math.round((Date.now() - model.get("busy_since")) / 1000));
    clock.textContent = `${s} s`;
  };
  function draw() {
    const busy = model.get("busy");
    root.dataset.busy = String(busy);
    root.dataset.level = model.get("level");
    bar.hidden = clock.hidden = !busy;
    text.textContent = busy ? model.get("busy_label") : model.get("message");
    text.className = `cs-message${model.get("level") === "error" && !busy ? " cc-error" : ""}`;
    if (busy && !timer) { tick(); timer = setInterval(tick, 1000); }
    if (!busy && timer) { clearInterval(timer); timer = null; }
  }

  const onMsg = (msg, buffers) => {
    if (!msg || msg.op !== "download" || !buffers || !buffers.length) return;
    const b = buffers[0];
    const bytes = b instanceof DataView ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : new Uint8Array(b);
    const url = URL.createObjectURL(new Blob([bytes], { type: msg.mime || "application/octet-stream" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = msg.name || "download";
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  };

  // JupyterLab's command-mode shortcuts match any focused element: arrow keys in the studio's lists
  // would move between cells, "a" would insert one.  The attribute on each control keeps its keys for it
  // (other front ends ignore it); new controls (a track's instrument list) get it as they appear.
  let watch = null, tries = 0;
  const attach = () => {  // the view joins the page after render() returns
    const studio = el.closest(".capsule-studio");
    if (!studio) { if (tries++ < 100) setTimeout(attach, 100); return; }
    const mark = () => studio.querySelectorAll("button, input, select, textarea, [tabindex]").forEach((c) => {
      if (!c.hasAttribute("data-lm-suppress-shortcuts")) c.setAttribute("data-lm-suppress-shortcuts", "true");
    });
    mark();
    if (typeof MutationObserver === "function") {
      watch = new MutationObserver(mark);
      watch.observe(studio, { childList: true, subtree: true });
    }
  };
  attach();

  const keys = ["message", "level", "busy", "busy_label", "busy_since"];
  keys.forEach((k) => model.on(`change:${k}`, draw));
  model.on("msg:custom", onMsg);
  draw();
  return () => {
    if (timer) clearInterval(timer);
    if (watch) watch.disconnect();
    keys.forEach((k) => model.off(`change:${k}`, draw));
    model.off("msg:custom", onMsg);
  };
}

export default { render };
