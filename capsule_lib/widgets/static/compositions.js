// "My compositions" (anywidget ES module): the saved compositions as a table; a radio button per
// row picks one (arrow keys move the choice, as in any radio group).  Python owns the list.
function cell(tag, text, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  e.textContent = text;
  return e;
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "capsule-ui cs-table-wrap";
  const table = document.createElement("table");
  table.className = "cs-table";
  table.setAttribute("data-testid", "compositions");
  const caption = cell("caption", "My compositions", "cc-visually-hidden");
  const head = document.createElement("thead");
  const hr = document.createElement("tr");
  for (const h of ["", "Title", "Technique", "Model", "Made from", "Tags", "Saved"]) hr.append(cell("th", h));
  head.append(hr);
  const body = document.createElement("tbody");
  table.append(caption, head, body);
  const empty = cell("div", "Nothing saved yet: every result you make appears here.", "cc-note cs-empty");
  root.append(table, empty);
  el.append(root);
  const group = `cs-compositions-${Math.random().toString(36).slice(2)}`;

  function draw() {
    const rows = model.get("rows") || [], selected = model.get("selected");
    const focused = root.contains(document.activeElement);
    body.replaceChildren();
    let focusMe = null;
    for (const r of rows) {
      const tr = document.createElement("tr");
      tr.dataset.id = r.id;
      tr.className = r.id === selected ? "cs-selected" : "";
      const pick = document.createElement("input");
      pick.type = "radio";
      pick.name = group;
      pick.value = r.id;
      pick.checked = r.id === selected;
      pick.disabled = model.get("disabled");
      pick.setAttribute("aria-label", `${r.title} (${r.technique})`);
      pick.setAttribute("data-lm-suppress-shortcuts", "true");  // arrow keys move the choice, not Lab's cell
      pick.addEventListener("change", () => { model.set("selected", r.id); model.save_changes(); });
      if (pick.checked) focusMe = pick;
      const first = document.createElement("td");
      first.append(pick);
      tr.append(first, cell("td", r.title, "cs-title-cell"), cell("td", r.technique), cell("td", r.model),
                cell("td", r.parent), cell("td", r.tags), cell("td", r.created, "cc-note"));
      tr.addEventListener("click", (e) => { if (e.target !== pick && !pick.disabled) pick.click(); });
      body.append(tr);
    }
    table.hidden = !rows.length;
    empty.hidden = !!rows.length;
    if (focused && focusMe) focusMe.focus();
  }
  ["rows", "selected", "disabled"].forEach((k) => model.on(`change:${k}`, draw));
  draw();
  return () => ["rows", "selected", "disabled"].forEach((k) => model.off(`change:${k}`, draw));
}

export default { render };
