"""What changed between the last signed-off hazard log and the current file, hazard by hazard."""

from __future__ import annotations

from typing import Any

from session_rules.hazard_log import Hazard, HazardLog


def _controls(h: Hazard) -> list[str]:
    return [
        f"{c.text} [{c.type}; " + ", ".join(f"{e.kind}: {e.ref}" for e in c.evidence) + "]"
        for c in h.controls
    ]


def _view(h: Hazard) -> dict[str, str]:
    # compare what a reader sees: title, every field's value, each control with its evidence
    out = {"title": h.title, **{k: v for k, v in h.fields.items() if k != "additional controls"}}
    out["additional controls"] = "\n".join(_controls(h))
    return out


def diff_logs(old: HazardLog, new: HazardLog) -> dict[str, Any]:
    """Hazards added, removed and changed (field by field, before and after) from old to new."""
    before, after = old.by_id(), new.by_id()
    added = [{"id": i, "title": after[i].title} for i in after if i not in before]
    removed = [{"id": i, "title": before[i].title} for i in before if i not in after]
    changed = []
    for hid in after:
        if hid not in before:
            continue
        a, b = _view(before[hid]), _view(after[hid])
        fields = [
            {"field": name, "before": a.get(name), "after": b.get(name)}
            for name in [*a, *(k for k in b if k not in a)]
            if a.get(name) != b.get(name)
        ]
        if fields:
            changed.append({"id": hid, "title": after[hid].title, "fields": fields})
    metadata = [
        {"field": k, "before": old.metadata.get(k), "after": new.metadata.get(k)}
        for k in sorted(set(old.metadata) | set(new.metadata))
        if old.metadata.get(k) != new.metadata.get(k)
    ]
    return {"added": added, "removed": removed, "changed": changed, "metadata": metadata}
