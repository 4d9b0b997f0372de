// How each privacy profile is named to the person choosing it.

export const PROFILE_LABELS = {
  none: "As you are",
  blur: "Background blurred",
  face_mask: "Face masked, background blurred",
  avatar: "Avatar (no camera picture)",
  camera_off: "Camera off (name card)",
};

export function profileLabel(profile) {
  return PROFILE_LABELS[profile] || String(profile || "");
}

// fill a <select> with the allowed profiles (least to most private); those below `floor`
// (set by the host) are shown but cannot be chosen
export function fillProfileSelect(select, allowed, current, floor) {
  const list = Array.isArray(allowed) ? allowed : [];
  const floorAt = floor ? list.indexOf(floor) : -1;
  const same = select.options.length === list.length
    && list.every((p, i) => select.options[i].value === p);
  if (!same) {
    select.replaceChildren(...list.map((p) => {
      const opt = document.createElement("option");
      opt.value = p;
      opt.textContent = profileLabel(p);
      return opt;
    }));
  }
  list.forEach((p, i) => { select.options[i].disabled = floorAt > 0 && i < floorAt; });
  if (list.includes(current)) select.value = current;
}
