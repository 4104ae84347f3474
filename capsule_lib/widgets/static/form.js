// Parameter form (anywidget ES module, no build step): one labelled native control per parameter,
// laid out on one grid so the controls line up.  Python owns the values and checks them.
let nextId = 0;
// JupyterLab's command-mode shortcuts match any focused element (arrow keys move between cells, "a"
// inserts one); this attribute on the control itself keeps its keys for it.  Other front ends ignore it.
const KEYS = { "data-lm-suppress-shortcuts": "true" };

function h(tag, attrs = {}, text = "") {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  if (text) e.textContent = text;
  return e;
}

const show = (p, v) => {
  if (p.kind === "float") {
    const digits = String(p.step).includes(".") ? String(p.step).split(".")[1].length : 0;
    v = Number(v).toFixed(Math.min(3, digits));
  }
  return p.unit ? `${v} ${p.unit}` : String(v);
};

function render({ model, el }) {
  const root = h("div", { class: "capsule-ui cc-form", role: "group" });
  el.append(root);
  let inputs = {}, outputs = {}, specs = {};

  function draw() {
    const focused = root.contains(document.activeElement) ? document.activeElement.dataset.param : null;
    root.replaceChildren();
    inputs = {}; outputs = {}; specs = {};
    root.setAttribute("aria-label", model.get("title") || "Parameters");
    const values = model.get("values") || {};
    for (const p of model.get("parameters") || []) {
      const id = `cc-param-${++nextId}`, helpId = `${id}-help`, value = values[p.name] ?? p.default;
      const label = h("label", { class: "cc-label", for: id, title: p.help }, p.label);
      const help = h("span", { id: helpId, class: "cc-visually-hidden" }, p.help);
      let input, cell;
      if (p.kind === "bool") {
        input = h("input", { type: "checkbox", id, "aria-describedby": helpId, "data-param": p.name, ...KEYS });
        input.checked = !!value;
        cell = h("div", { class: "cc-wide" });
        cell.append(input, h("span", { class: "cc-note", "aria-hidden": "true" }, p.help));
        root.append(label, cell);
        input.addEventListener("change", () => commit(p, input.checked));
      } else if (p.kind === "choice") {
        input = h("select", { id, "aria-describedby": helpId, "data-param": p.name, title: p.help, ...KEYS });
        for (const [text, v] of p.choices) input.append(h("option", { value: v }, text));
        input.value = value;
        cell = h("div", { class: "cc-wide" });
        cell.append(input);
        root.append(label, cell);
        input.addEventListener("change", () => {
          const hit = p.choices.find(([, v]) => String(v) === input.value);  // keep the value's type (52, not "52")
          if (hit) commit(p, hit[1]);
        });
      } else {
        input = h("input", { type: "range", id, min: p.min, max: p.max, step: p.step, "aria-describedby": helpId,
                             "data-param": p.name, title: p.help, ...KEYS });
        input.value = value;
        const out = h("output", { for: id, class: "cc-value", "data-testid": `value-${p.name}` }, show(p, value));
        input.setAttribute("aria-valuetext", show(p, value));
        outputs[p.name] = out;
        input.addEventListener("input", () => {
          out.textContent = show(p, input.value);
          input.setAttribute("aria-valuetext", out.textContent);
        });
        input.addEventListener("change", () => commit(p, p.kind === "int" ? parseInt(input.value, 10) : parseFloat(input.value)));
        root.append(label, input, out);
      }
      root.append(help);
      input.disabled = model.get("disabled");
      inputs[p.name] = input;
      specs[p.name] = p;
    }
    if (focused && inputs[focused]) inputs[focused].focus();  // a redraw (new rows) keeps the keyboard's place
  }

  // New values from Python (or our own commit echoed): update the controls in place, keeping focus.
  function sync() {
    const values = model.get("values") || {};
    for (const [name, input] of Object.entries(inputs)) {
      const p = specs[name], v = values[name] ?? p.default;
      if (p.kind === "bool") { input.checked = !!v; continue; }
      if (String(input.value) !== String(v)) input.value = v;
      if (outputs[name]) {
        outputs[name].textContent = show(p, v);
        input.setAttribute("aria-valuetext", outputs[name].textContent);
      }
    }
  }

  function commit(p, value) {
    model.set("values", { ...(model.get("values") || {}), [p.name]: value });
    model.save_changes();
  }

  const onDisabled = () => Object.values(inputs).forEach((i) => { i.disabled = model.get("disabled"); });
  model.on("change:parameters", draw);
  model.on("change:values", sync);
  model.on("change:title", draw);
  model.on("change:disabled", onDisabled);
  draw();
  return () => {
    model.off("change:parameters", draw);
    model.off("change:values", sync);
    model.off("change:title", draw);
    model.off("change:disabled", onDisabled);
  };
}

export default { render };
