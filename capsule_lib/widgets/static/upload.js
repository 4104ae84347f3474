// "Import a MIDI file" (anywidget ES module): a labelled native file input.  A file over the
// size limit is refused here, before its bytes travel; others go to the kernel, which reads them.
function render({ model, el }) {
  const label = document.createElement("label");
  label.className = "capsule-ui cc-btn cs-upload";
  const input = document.createElement("input");
  input.type = "file";
  input.accept = ".mid,.midi,audio/midi,audio/x-midi";
  input.className = "cc-visually-hidden";
  input.setAttribute("data-testid", "import-midi");
  input.setAttribute("data-lm-suppress-shortcuts", "true");
  const text = document.createElement("span");
  label.append(input, text);
  el.append(label);

  const draw = () => {
    text.textContent = model.get("label");
    input.disabled = model.get("disabled");
    label.classList.toggle("cs-disabled", model.get("disabled"));
  };
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    input.value = "";  // the same file can be chosen again
    if (!file) return;
    if (file.size > model.get("max_bytes")) {
      model.send({ op: "too-large", name: file.name, size: file.size });
      return;
    }
    const data = await file.arrayBuffer();
    model.send({ op: "file", name: file.name, size: file.size }, undefined, [data]);
  });
  model.on("change:label", draw);
  model.on("change:disabled", draw);
  draw();
  return () => { model.off("change:label", draw); model.off("change:disabled", draw); };
}

export default { render };
