"""Every frame of every corpus clip through face_mask, checked against the real faces of each
frame: for face detail shown, and by detectors that are not MediaPipe (Haar frontal and
profile, dlib HOG) on every output frame and every input frame. Prints the per-clip table.

The unit tests check detail on every frame too, but run the detectors on every 20th output
frame only, to stay quick; this runs them on all. Exit status 1 when any face is shown.

    python bench/face_mask_corpus.py [--step 1] [CLIP ...]

Columns: frames; faces in view (summed over frames); the most of one face's detail shown;
input/output frames the detectors looked at; of the faces wholly in view and >= 40 px in the
input, how many at least one detector found; per detector, faces found in the input / on real
faces in the output; leaks (faces shown: detail over the limit, or a detection on a face).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from confidentiality.pipeline import PrivacyPipeline  # noqa: E402
from confidentiality.profiles import Profile  # noqa: E402
from tests.support.corpus import CLIPS, clip  # noqa: E402
from tests.support.corpus_check import (  # noqa: E402
    HEADER,
    SHOWN_LIMIT,
    ClipReport,
    check_frame,
    detect_many,
    run_clip,
    source_as_sent,
)


def main() -> None:
    """Run the corpus, print the table, write JSON under bench/results/."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("clips", nargs="*", default=list(CLIPS))
    parser.add_argument("--step", type=int, default=1, help="detectors on every STEP-th frame")
    args = parser.parse_args()
    rows = []
    leaks = 0
    print(
        f"face detail shown over {SHOWN_LIMIT:.0%} of a face, or any detection on a face, "
        "is a leak\n" + HEADER,
        flush=True,
    )
    started = time.monotonic()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for name in args.clips:
            c = clip(name)
            pipeline = PrivacyPipeline(
                profile=Profile.FACE_MASK, display_name="Corpus", deadline_ms=5000
            )
            try:
                outputs = run_clip(pipeline.process, c)
            finally:
                pipeline.close()
            assert outputs is not None
            report = ClipReport(name, frames=len(outputs))
            idx = list(range(0, len(outputs), args.step))
            found_out = detect_many([(outputs[i], c.faces[i]) for i in idx], pool)
            found_in = detect_many([(c.frames[i], c.faces[i]) for i in idx], pool)
            for i, out in enumerate(outputs):
                check = check_frame(out, source_as_sent(c, i), c.faces[i])
                if i in idx:
                    check.found = found_out[idx.index(i)]
                report.add_output(i, check)
            for i, found in zip(idx, found_in, strict=True):
                report.add_input(c.faces[i], found)
            print(report.row(), flush=True)
            for frame, kind, box, share in report.leaks:
                print(f"    LEAK frame {frame}: {kind} at {box} ({share:.0%})", flush=True)
            leaks += len(report.leaks)
            rows.append(
                {
                    "clip": name,
                    "covers": c.covers,
                    "frames": report.frames,
                    "faces_in_view": report.faces,
                    "detail_max": round(report.detail_max, 3),
                    "checked_in": report.checked_in,
                    "checked_out": report.checked_out,
                    "whole_in": report.whole_in,
                    "found_any_in": report.found_any_in,
                    "found_in": report.found_in,
                    "found_out": report.found_out,
                    "leaks": [(f, k, list(b), s) for f, k, b, s in report.leaks],
                }
            )
    print(f"{leaks} face(s) shown in the face_mask output; {time.monotonic() - started:.0f} s")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"corpus-face_mask-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"step": args.step, "clips": rows}, indent=2))
    print(f"written {path.relative_to(ROOT)}")
    sys.exit(1 if leaks else 0)


if __name__ == "__main__":
    main()
