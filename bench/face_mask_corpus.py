"""Every frame of every corpus clip through a privacy profile, checked by detectors that are
not MediaPipe (Haar frontal and profile, dlib HOG); prints the per-clip table.

The unit tests check every 5th frame to stay quick; this checks them all. Exit status 1 when
any detector finds a face on a real face in the output.

    python bench/face_mask_corpus.py [--profile face_mask] [--step 1] [CLIP ...]
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
from tests.support.corpus_check import HEADER, check_clip, run_clip  # noqa: E402


def main() -> None:
    """Run the corpus, print the table, write JSON under bench/results/."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("clips", nargs="*", default=list(CLIPS))
    parser.add_argument("--profile", default="face_mask", choices=["face_mask", "avatar"])
    parser.add_argument("--step", type=int, default=1, help="check every STEP-th frame")
    args = parser.parse_args()
    rows = []
    leaks = 0
    print(HEADER, flush=True)
    started = time.monotonic()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for name in args.clips:
            c = clip(name)
            pipeline = PrivacyPipeline(
                profile=Profile(args.profile), display_name="Corpus", deadline_ms=5000
            )
            try:
                outputs = run_clip(pipeline.process, c)
            finally:
                pipeline.close()
            report = check_clip(c, outputs, step=args.step, pool=pool)
            print(report.row(), flush=True)
            for frame, detector, box in report.leaks:
                print(f"    LEAK frame {frame}: {detector} found a face at {box}", flush=True)
            leaks += len(report.leaks)
            rows.append(
                {
                    "clip": name,
                    "covers": c.covers,
                    "frames": report.frames,
                    "checked_in": report.checked_in,
                    "checked_out": report.checked,
                    "faces_in_view": report.faces_in_view,
                    "found_in": report.found_in,
                    "found_out": report.found_out,
                    "raw_out": report.raw_out,
                    "leaks": report.leaks,
                }
            )
    print(f"{leaks} face(s) found in the {args.profile} output; {time.monotonic() - started:.0f} s")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"corpus-{args.profile}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(
        json.dumps({"profile": args.profile, "step": args.step, "clips": rows}, indent=2)
    )
    print(f"written {path.relative_to(ROOT)}")
    sys.exit(1 if leaks else 0)


if __name__ == "__main__":
    main()
