"""Per-frame cost of each privacy profile at 640x480 against its irreducible stages.

Irreducible = VP8 decode + the model inference the profile needs (at the rates the pipeline
runs it) + VP8 encode, all measured in this same run. Run: python bench/bench_profiles.py
(--clip static: a person sitting still, where the person mask is reused every other frame;
--stages: where the transform's own time goes, per frame, from a profile of the transform;
--before REF: also run this benchmark as it stands at git REF, e.g. main, in a temporary
worktree in the same invocation, and print face_mask before and after side by side).
"""

from __future__ import annotations

import argparse
import cProfile
import fractions
import json
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from confidentiality.models import Models  # noqa: E402
from confidentiality.pipeline import PrivacyPipeline  # noqa: E402
from confidentiality.profiles import Profile  # noqa: E402
from confidentiality.transforms import MediaPipeTransform  # noqa: E402
from tests.support.faces import ClipKind, astronaut_frames, to_video_frame  # noqa: E402

SIZE = (640, 480)


def _encoder() -> av.video.codeccontext.VideoCodecContext:
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
    enc.bit_rate = 500_000
    enc.framerate = 15  # type: ignore[assignment]
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    return enc  # type: ignore[return-value]


def _encode_clip(frames: list[np.ndarray]) -> list[av.Packet]:
    enc = _encoder()
    packets: list[av.Packet] = []
    for i, rgb in enumerate(frames):
        packets.extend(enc.encode(to_video_frame(rgb, i)))
    packets.extend(enc.encode(None))
    return packets


def _ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def _model_cost(profile: Profile, frames: list[np.ndarray], models: Models) -> list[float]:
    """Inference alone, on the same small images, at the rates the pipeline uses.

    Segmentation is counted every third frame (the best case: a still picture, or `blur` in
    moderate motion); a picture that moves more is segmented more often, which shows up as
    process time above this figure.
    """
    det = [cv2.resize(f, (320, 240), interpolation=cv2.INTER_AREA) for f in frames]
    calls: list[Callable[[int], object]] = []
    if profile in (Profile.BLUR, Profile.FACE_MASK):
        calls.append(lambda i: models.person_mask(det[i]) if i % 3 == 0 else None)
    if profile is Profile.FACE_MASK:
        # both detectors on every frame (fail closed per head)
        calls.append(lambda i: models.faces(det[i]))
        calls.append(lambda i: models.faces(det[i], far=True))
    if profile in (Profile.BLUR, Profile.AVATAR):
        # the bystander count: both detectors every 4th frame
        calls.append(lambda i: models.faces(det[i]) if i % 4 == 0 else None)
        calls.append(lambda i: models.faces(det[i], far=True) if i % 4 == 0 else None)
    if profile is Profile.AVATAR:
        calls.append(lambda i: models.landmarks(det[i]))
    out = []
    for i in range(len(frames)):
        t = time.perf_counter()
        for call in calls:
            call(i)
        out.append(time.perf_counter() - t)
    return out


def _stages(clip: ClipKind, n_frames: int) -> dict[str, dict[str, float]]:
    """Per-frame ms of the transform's main calls (cProfile, cumulative), for each profile."""
    i420 = [cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420) for f in astronaut_frames(clip, n_frames, SIZE)]
    out: dict[str, dict[str, float]] = {}
    for profile in (Profile.BLUR, Profile.FACE_MASK, Profile.AVATAR):
        transform = MediaPipeTransform()
        for i, image in enumerate(i420[:5]):  # graphs warm up on the first frames
            transform.apply_i420(image, profile, i / 15)
        prof = cProfile.Profile()
        prof.enable()
        for i, image in enumerate(i420):
            transform.apply_i420(image, profile, 1 + i / 15)
        prof.disable()
        transform.close()
        wanted = {
            "apply_i420": "total",
            "person_mask": "segmentation",
            "faces": "face detection",
            "landmarks": "face mesh",
            "small_rgb": "I420 -> small RGB",
            "blur_planes_into": "background blur",
            "_composite": "blur + composite",
            "_hide_unvouched": "hide unvouched person",
            "fill_rounded_rect": "face masks",
            "draw_avatar": "draw avatar",
        }
        stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
        row: dict[str, float] = {}
        for (_, _, name), (_, _, _, cumulative, _) in stats.items():
            if name in wanted:
                row[wanted[name]] = row.get(wanted[name], 0.0) + 1000 * cumulative / len(i420)
        out[str(profile)] = row
    return out


def run(n_frames: int, clip: ClipKind = "pan") -> dict[str, object]:
    """Measure every profile; returns the results as a dict."""
    frames = astronaut_frames(clip, n_frames, SIZE)
    packets = _encode_clip(frames)
    models = Models()
    rows: dict[str, dict[str, float]] = {}
    for profile in Profile:
        dec = av.CodecContext.create("libvpx", "r")
        enc = _encoder()
        pipeline = PrivacyPipeline(profile=profile, display_name="Bench", deadline_ms=5000)
        t_dec, t_proc, t_enc = [], [], []
        for i, packet in enumerate(packets):
            t0 = time.perf_counter()
            decoded = dec.decode(packet)  # type: ignore[attr-defined]
            t1 = time.perf_counter()
            for frame in decoded:
                frame.pts, frame.time_base = i * 6000, fractions.Fraction(1, 90000)
                out = pipeline.process(frame)
                t2 = time.perf_counter()
                enc.encode(out)
                t3 = time.perf_counter()
                t_dec.append(t1 - t0)
                t_proc.append(t2 - t1)
                t_enc.append(t3 - t2)
        pipeline.close()
        warm = slice(5, None)  # model graphs are built on the first frames
        model = _model_cost(profile, frames, models)[warm] if profile.needs_pixels else [0.0]
        row = {
            "decode_ms": _ms(t_dec[warm]),
            "process_ms": _ms(t_proc[warm]),
            # mean too: with work that recurs every few frames (segmentation every third, the
            # face count every eighth) the median sits on one side; the mean is what a core
            # actually spends, so the models and the total are compared as means
            "process_mean_ms": 1000 * statistics.fmean(t_proc[warm]),
            "encode_ms": _ms(t_enc[warm]),
            "models_ms": 1000 * statistics.fmean(model)
            if profile is not Profile.CAMERA_OFF
            else 0.0,
        }
        row["total_ms"] = row["decode_ms"] + row["process_mean_ms"] + row["encode_ms"]
        row["irreducible_ms"] = row["decode_ms"] + row["models_ms"] + row["encode_ms"]
        row["ratio"] = row["total_ms"] / row["irreducible_ms"]
        rows[str(profile)] = row
    models.close()
    return {
        "size": list(SIZE),
        "clip": clip,
        "frames": n_frames,
        "profiles": rows,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _before(ref: str, frames: int, clip: str) -> dict[str, dict[str, float]]:
    """The per-profile rows this benchmark gives at git `ref` (its own code, this venv)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref],
            check=True,
            capture_output=True,
        )
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    str(tree / "bench" / "bench_profiles.py"),
                    "--frames",
                    str(frames),
                    "--clip",
                    clip,
                ],
                check=True,
                capture_output=True,
                text=True,
                cwd=tree,
            )
            written = re.search(r"written (\S+)", done.stdout)
            assert written, done.stdout
            data = json.loads((tree / written.group(1)).read_text())
            return data["profiles"]  # type: ignore[no-any-return]
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                check=False,
                capture_output=True,
            )


def main() -> None:
    """Run the benchmark, print a table and write JSON under bench/results/."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--clip", choices=["pan", "static", "zoom"], default="pan")
    parser.add_argument("--stages", action="store_true", help="also profile the transform")
    parser.add_argument("--before", metavar="REF", help="also measure the code at git REF")
    args = parser.parse_args()
    before = _before(args.before, args.frames, args.clip) if args.before else None
    result = run(args.frames, args.clip)
    print(
        f"{'profile':<11} {'decode':>7} {'process':>8} {'(mean)':>7} {'encode':>7} {'total':>7} "
        f"{'models':>7} {'irreducible':>11} {'ratio':>6}   (ms/frame; median, but (mean), models and "
        f"total (decode + process mean + encode) from means; clip {args.clip})"
    )
    for name, r in result["profiles"].items():  # type: ignore[attr-defined]
        print(
            f"{name:<11} {r['decode_ms']:7.2f} {r['process_ms']:8.2f} {r['process_mean_ms']:7.2f} "
            f"{r['encode_ms']:7.2f} {r['total_ms']:7.2f} {r['models_ms']:7.2f} "
            f"{r['irreducible_ms']:11.2f} {r['ratio']:6.2f}"
        )
    if before is not None:
        result["before"] = {"ref": args.before, "profiles": before}
        print(
            f"\n{'profile':<11} {'process ms (mean)':>22} {'ratio to kernel sum':>22}"
            f"   (before = {args.before}, after = this tree; same invocation, same frames;"
            " each ratio against its own run's decode + models + encode)"
        )
        for name, r in result["profiles"].items():  # type: ignore[attr-defined]
            if name not in before:
                continue
            b = before[name]
            print(
                f"{name:<11} {b['process_mean_ms']:>9.2f} -> {r['process_mean_ms']:<9.2f}"
                f" {b['ratio']:>10.2f} -> {r['ratio']:<9.2f}"
            )
    if args.stages:
        result["stages"] = _stages(args.clip, args.frames)
        print("\ntransform stages (ms/frame, mean, cumulative; stages nest)")
        for name, row in result["stages"].items():  # type: ignore[attr-defined]
            parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(row.items(), key=lambda kv: -kv[1]))
            print(f"{name:<11} {parts}")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"profiles-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
