"""axe-core (the npm package, pinned in scripts/setup.sh) run inside a real page.

The pages' CSP rightly forbids inline scripts, so contexts that run axe are made with
`bypass_csp=True`; the script is added by Playwright, never served by Confide.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.async_api import Page

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / ".node" / "node_modules" / "axe-core" / "axe.min.js"
# what people review after a run: axe findings per page, phone screenshots
ARTIFACTS = ROOT / "var" / "test-artifacts"
BLOCKING = ("serious", "critical")

RUN_AXE = """
async () => {
  const r = await axe.run(document, { resultTypes: ["violations"],
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa",
                                     "best-practice"] } });
  return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.length, targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
}
"""


def axe_available() -> bool:
    return AXE_JS.is_file()


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (WCAG 2.2 A/AA and best practice)."""
    if not AXE_JS.is_file():
        raise RuntimeError("axe-core is not installed: run scripts/setup.sh --test")
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.add_script_tag(path=str(AXE_JS))
    found = await page.evaluate(RUN_AXE)
    return list(found)


def blocking(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v["impact"] in BLOCKING]


def save_report(name: str, results: dict[str, list[dict[str, Any]]]) -> Path:
    """Write the findings per page where a person can read them after the run."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return path
