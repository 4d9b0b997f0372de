"""The scenario that once showed faces: two real browsers publish a zooming group photograph
under `face_mask`, a third real browser watches, and every frame it grabs is checked against
the real faces of the clip's frame it shows: for face detail shown, and by detectors that are
not MediaPipe."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from confidentiality.placeholder import PAUSED_REASON, placeholder_rgb
from confidentiality.transforms import _MASK_RGB, _SILHOUETTE_RGB
from tests.support.browser import chromium, grab_tile, until
from tests.support.corpus import FPS, clip
from tests.support.corpus_check import (
    ClipReport,
    FrameMatcher,
    as_sent,
    check_frame,
    detect_many,
)
from tests.support.detectors import detect_all
from tests.support.faces import write_y4m

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# matched grabs per publisher (~0.15 s apart): more than the 24 and 36 of the runs that once
# found faces, gathered for at most GRAB_S (a loaded machine sends placeholders for a while)
GRABS = 16
GRAB_S = 120.0
# a grab whose best match correlates less than this is not a frame of the clip (the
# placeholder card while the server's pipeline catches up: ~0.02; frames: 0.19 and up)
MATCHED = 0.1


@pytest.fixture(scope="module")
def group_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # five people on a staircase, slowly zooming: faces at several sizes, some cut by the edge
    return write_y4m(tmp_path_factory.mktemp("v") / "group.y4m", clip("group_zoom").frames, FPS)


def _mask_fill(img: np.ndarray) -> np.ndarray:
    """Where a picture is the masks' own flat fill (a bool map)."""
    pixels = img.astype(np.int16)
    flat = np.zeros(img.shape[:2], bool)
    for colour in (_MASK_RGB, _SILHOUETTE_RGB):
        flat |= np.abs(pixels - np.array(colour, np.int16)).max(axis=2) <= 8
    return flat


def _all_mask(img: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """True when a detector's box is (95 %+) the mask's own flat fill: Haar once took a
    corner of the grey masks for a face (99.7 % of its box one flat colour). Such a box holds
    no face to show; any box with more than a sliver of picture in it still counts."""
    x, y, w, h = box
    flat = _mask_fill(img[y:y + h, x:x + w])
    return bool(flat.size) and float(flat.mean()) >= 0.95


def _save(path: Path, img: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> None:
    """A grab as evidence, with the faces found on it outlined."""
    out = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    for x, y, w, h in boxes:
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 0, 255), 2)
    cv2.imwrite(str(path), out)
    print(f"\nevidence: {path}")


async def test_two_face_mask_publishers_of_a_group_show_no_face_to_a_third_browser(  # type: ignore[no-untyped-def]
    server, group_video: Path, tmp_path: Path
) -> None:
    c = clip("group_zoom")
    matcher = FrameMatcher(c.frames)
    async with (
        chromium(group_video) as a_browser,
        chromium(group_video) as b_browser,
        chromium(None) as view_browser,
    ):
        pages = [await a_browser.new_page(), await b_browser.new_page()]
        viewer = await view_browser.new_page()
        for i, page in enumerate(pages):
            await page.goto(server.link("grp", f"Member{i}", profile="face_mask"))
        await viewer.goto(server.link("grp", "Viewer"))
        pids = [
            await until(lambda p=p: p.evaluate("window.confide.me && window.confide.me.id"))
            for p in pages
        ]
        for pid in pids:

            async def shown(pid: str = pid) -> bool:
                return (await grab_tile(viewer, pid)) is not None

            await until(shown, 60)
        # every grab is kept: those that show a frame of the clip (by the whole picture, or
        # by the detail the masks leave) are checked against its faces, the others (the
        # placeholder card) by the detectors on the whole picture
        matched: dict[str, list[tuple[np.ndarray, int]]] = {pid: [] for pid in pids}
        other: dict[str, list[np.ndarray]] = {pid: [] for pid in pids}
        smaller = dict.fromkeys(pids, 0)
        masked = dict.fromkeys(pids, 0)
        deadline = time.monotonic() + GRAB_S
        while time.monotonic() < deadline and min(len(m) for m in matched.values()) < GRABS:
            for pid in pids:
                img = await grab_tile(viewer, pid)
                assert img is not None
                if img.shape != (480, 640, 3):
                    # a smaller gallery layer (the viewer's bandwidth estimate under load):
                    # checked at the clip's size; the detail check is weaker there (the
                    # layer lost fine detail), the detectors see faces as well as ever
                    smaller[pid] += 1
                    img = cv2.resize(img, (640, 480), interpolation=cv2.INTER_LINEAR)
                k, score = matcher.match(img)
                if score < MATCHED:
                    # masks over most of a close-up: match on the camera's detail between them
                    k, score = matcher.match_visible(img, _mask_fill(img))
                    masked[pid] += score >= MATCHED
                if score >= MATCHED:
                    matched[pid].append((img, k))
                else:
                    other[pid].append(img)
            await asyncio.sleep(0.15)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for n, pid in enumerate(pids):
            grabs = matched[pid]
            assert len(grabs) >= GRABS, (
                f"publisher {n}: {len(grabs)} grabs showed the clip in {GRAB_S:.0f} s "
                f"({len(other[pid])} did not)"
            )
            found = detect_many([(img, c.faces[k]) for img, k in grabs], pool)
            report = ClipReport(f"publisher {n}", frames=len(grabs))
            for j, ((img, k), f) in enumerate(zip(grabs, found, strict=True)):
                check = check_frame(img, as_sent(c.frames[k]), c.faces[k])
                # a box that is all the masks' own fill shows no face (see _all_mask), here
                # as on the grabs matched to no frame
                check.found = {name: [b for b in boxes if not _all_mask(img, b)]
                               for name, boxes in f.items()}
                report.add_output(j, check)
                if check.leaks():
                    _save(
                        tmp_path / f"publisher{n}-grab{j:02d}-frame{k:03d}.png",
                        img,
                        [b for _, b, _ in check.leaks()],
                    )
                    print(f"leak in grab {j} (clip frame {k}): {check.leaks()}")
            # a grab that is not the clip is the placeholder card (the pipeline missed its
            # deadline on a loaded machine, or the models were loading), nothing else
            card = placeholder_rgb(640, 480, f"Member{n}", PAUSED_REASON).astype(np.int16)
            unmatched = [
                img
                for img in other[pid]
                if float(np.abs(cv2.resize(img, (640, 480)).astype(np.int16) - card).mean()) > 12
            ]
            for j, img in enumerate(unmatched):
                _save(tmp_path / f"publisher{n}-other{j:02d}.png", img, [])
            print(
                f"\npublisher {n}: {len(grabs)} grabs matched to a clip frame, "
                f"{len(other[pid])} not (placeholder), {masked[pid]} matched by the detail between the "
                f"masks, {smaller[pid]} from a smaller layer; most of one face's detail shown "
                f"{report.detail_max:.0%}; detections on real faces {report.found_out}"
            )
            assert not report.leaks, f"a face reached the third browser: {report.leaks[:5]}"
            # a grab masked so heavily that it no longer correlates with its clip frame (most
            # of the picture grey silhouettes) cannot be checked face by face: the independent
            # detectors look at all of it instead, and must find nothing
            seen = [
                (j, name, found)
                for j, img in enumerate(cv2.resize(u, (640, 480)) for u in unmatched)
                for name, boxes in detect_all(img).items()
                if (found := [b for b in boxes if not _all_mask(img, b)])
            ]
            assert not seen, (
                f"publisher {n}: a detector found a face in a grab not matched to the clip: "
                f"{seen[:5]} (saved as publisher{n}-other*.png)"
            )
            # what was grabbed is the scene (blurred, masked), not a blank or a placeholder
            assert float(np.std(grabs[-1][0])) > 10
