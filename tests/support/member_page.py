"""A member's page in a real browser: the group agreement, where they are today, and on to
the measures or the waiting room, the way a person would do it."""

from __future__ import annotations

from playwright.async_api import Page

DEFAULT_LOCATION = "At home, in the back bedroom"


async def agree(page: Page, *, location: str = DEFAULT_LOCATION, wait_for: str = "lobby",
                timeout_s: float = 20.0) -> None:
    """Confirm every agreement item, say where they are if the group asks, press the button;
    wait for the stage `wait_for` ("lobby", or "measures" when the group asks for some)."""
    for box in await page.locator("#checklist-items input[type=checkbox]").all():
        await box.check()
    # the page knows whether a location is asked once the group's forms have arrived
    await page.wait_for_function(
        "() => !document.getElementById('location-field').hidden"
        " || !document.getElementById('btn-agree').disabled",
        timeout=timeout_s * 1000,
    )
    if await page.is_visible("#location-field"):
        assert await page.is_disabled("#btn-agree"), "the agreement went on without a location"
        await page.fill("#prejoin-location", location)
    await page.click("#btn-agree")
    await page.wait_for_function(
        "(s) => window.confide && window.confide.stage === s", arg=wait_for,
        timeout=timeout_s * 1000,
    )
