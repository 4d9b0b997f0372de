// Pre-join: the group agreement as a checklist, the profile choice and the device check.

const $ = (id) => document.getElementById(id);

// render the agreement once; ticks survive later updates of the same items
export function renderChecklist(items, onChange) {
  const box = $("checklist-items");
  const ids = (items || []).map((i) => i.id).join("|");
  if (box.dataset.items === ids) return;
  box.dataset.items = ids;
  box.replaceChildren(...(items || []).map((item) => {
    const row = document.createElement("div");
    row.className = "check-item";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.id = `agree-${item.id}`;
    input.value = item.id;
    input.name = "agreement";
    input.addEventListener("change", onChange);
    const label = document.createElement("label");
    label.htmlFor = input.id;
    // textContent: the agreement is shown as text, never as markup
    label.textContent = item.text;
    row.append(input, label);
    return row;
  }));
  onChange();
}

export function checklistAnswers() {
  return [...document.querySelectorAll("#checklist-items input[type=checkbox]")]
    .filter((i) => i.checked).map((i) => i.value);
}

export function checklistComplete() {
  const boxes = [...document.querySelectorAll("#checklist-items input[type=checkbox]")];
  return boxes.length > 0 && boxes.every((i) => i.checked);
}
