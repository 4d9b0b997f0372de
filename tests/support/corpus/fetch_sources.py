"""Rebuild the corpus source images from the registry packages they ship in.

The images in this folder are downscaled copies of photographs that ship inside packages on
PyPI and npm (see SOURCES.md). This script fetches those exact package versions with the
ordinary clients, checks their hashes, and writes the same downscaled JPEGs again, so anyone
can check that what is committed is what the packages ship. Tests never run it.

    python tests/support/corpus/fetch_sources.py [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
# the longest side of a committed image: faces stay 60-130 px, enough for a 640x480 clip that
# zooms in up to 2x, at a size a repository can carry
MAX_SIDE = 960
JPEG_QUALITY = 90

FACE_API = (
    "npm",
    "@vladmandic/face-api@1.7.15",
    "vladmandic-face-api-1.7.15.tgz",
    "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
)
FACE_RECOGNITION = (
    "pypi",
    "face_recognition==1.3.0",
    "face_recognition-1.3.0.tar.gz",
    "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
)

# committed name -> (package, member path inside the package archive)
IMAGES: dict[str, tuple[tuple[str, str, str, str], str]] = {
    **{f"group{i}.jpg": (FACE_API, f"package/demo/sample{i}.jpg") for i in range(1, 7)},
    "portrait_dark.jpg": (FACE_RECOGNITION, "face_recognition-1.3.0/tests/test_images/obama.jpg"),
    "portrait_bright.jpg": (FACE_RECOGNITION, "face_recognition-1.3.0/tests/test_images/biden.jpg"),
    "podium.jpg": (FACE_RECOGNITION, "face_recognition-1.3.0/tests/test_images/obama3.jpg"),
    "edge_cut.jpg": (
        FACE_RECOGNITION,
        "face_recognition-1.3.0/tests/test_images/obama_partial_face.jpg",
    ),
}


def _fetch(package: tuple[str, str, str, str], into: Path) -> Path:
    registry, spec, filename, sha256 = package
    if registry == "npm":
        subprocess.run(
            ["npm", "pack", spec, "--pack-destination", str(into)], check=True, capture_output=True
        )
    else:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                str(into),
                spec,
            ],
            check=True,
            capture_output=True,
        )
    path = into / filename
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise SystemExit(f"{filename}: sha256 {digest} differs from the recorded {sha256}")
    return path


def _downscaled(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w))
    if scale < 1.0:
        img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with the committed images instead of writing them",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archives: dict[str, tarfile.TarFile] = {}
        worst = 0.0
        for name, (package, member) in IMAGES.items():
            if package[1] not in archives:
                archives[package[1]] = tarfile.open(_fetch(package, Path(tmp)))
            extracted = archives[package[1]].extractfile(member)
            assert extracted is not None, member
            img = _downscaled(extracted.read())
            target = HERE / name
            if args.check:
                committed = cv2.imread(str(target))
                diff = float(np.abs(committed.astype(np.int16) - img.astype(np.int16)).mean())
                worst = max(worst, diff)
                print(f"{name}: mean difference {diff:.2f} (JPEG re-encoding only)")
            else:
                cv2.imwrite(str(target), img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                print(f"wrote {name} {img.shape[1]}x{img.shape[0]}")
        if args.check and worst > 3.0:
            raise SystemExit("a committed image differs from its package's image")


if __name__ == "__main__":
    main()
