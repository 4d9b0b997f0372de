"""MediaPipe's bundled models (segmentation, face detection, face mesh), one set per pipeline."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from confidentiality.errors import ModelLoadError

log = logging.getLogger(__name__)

# the model files the solutions below read; checked before any graph is built so a broken
# install fails closed with a clear error instead of a C++ abort half-way through a session
REQUIRED_MODEL_FILES = (
    "selfie_segmentation/selfie_segmentation_landscape.tflite",
    "face_detection/face_detection_short_range.tflite",
    "face_detection/face_detection_full_range_sparse.tflite",
    "face_landmark/face_landmark.tflite",
)


def bundled_model_dir() -> Path:
    """The `modules` directory inside the installed mediapipe wheel (models ship there)."""
    import mediapipe

    return Path(mediapipe.__file__).resolve().parent / "modules"


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A detected face in relative coordinates (0..1 of the image it was found in)."""

    x: float
    y: float
    w: float
    h: float
    score: float


class Models:
    """The three MediaPipe graphs; not thread-safe: build and use them in one thread."""

    def __init__(self, model_dir: Path | None = None) -> None:
        directory = model_dir if model_dir is not None else bundled_model_dir()
        for rel in REQUIRED_MODEL_FILES:
            path = directory / rel
            if not path.is_file() or path.stat().st_size == 0:
                raise ModelLoadError(f'model file "{rel}" missing under the model directory')
        try:
            import mediapipe as mp

            solutions: Any = mp.solutions
            # landscape model: 256x144 input, ~3 ms; a video call is landscape anyway
            self._segmenter = solutions.selfie_segmentation.SelfieSegmentation(model_selection=1)
            # short range: faces within ~2 m of the camera, which is a video call
            self._detector = solutions.face_detection.FaceDetection(
                model_selection=0, min_detection_confidence=0.5
            )
            # full range: smaller faces further back (bystanders), ~3x the cost, run less often
            self._far_detector = solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=0.5
            )
            self._mesh = solutions.face_mesh.FaceMesh(
                static_image_mode=False,
                max_num_faces=1,
                refine_landmarks=False,
                min_detection_confidence=0.5,
                min_tracking_confidence=0.5,
            )
        except Exception as exc:  # noqa: BLE001 - any failure here means no usable model
            raise ModelLoadError(f"cannot build MediaPipe graphs: {type(exc).__name__}") from exc

    def person_mask(self, rgb: np.ndarray) -> np.ndarray:
        """Person probability (float32 HxW, 0..1) for a small RGB image."""
        result = self._segmenter.process(rgb)
        mask = result.segmentation_mask
        if mask is None:
            return np.zeros(rgb.shape[:2], np.float32)
        return np.asarray(mask, np.float32)

    def faces(self, rgb: np.ndarray, *, far: bool = False) -> list[FaceBox]:
        """Faces in a small RGB image, relative coordinates (far: the full-range model)."""
        detector = self._far_detector if far else self._detector
        result = detector.process(rgb)
        boxes = []
        for det in result.detections or []:
            b = det.location_data.relative_bounding_box
            boxes.append(FaceBox(b.xmin, b.ymin, b.width, b.height, float(det.score[0])))
        return boxes

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        """468 face-mesh landmarks (x, y relative; z) of the main face, or None."""
        result = self._mesh.process(rgb)
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0].landmark
        return np.array([(p.x, p.y, p.z) for p in lm], np.float32)

    def warm(self) -> None:
        """Run each graph once on a blank picture: a graph's first run sets it up (tens of
        ms, far more on a busy node), which should happen before a member's first frame is
        due rather than make that frame miss its deadline."""
        blank = np.zeros((144, 256, 3), np.uint8)
        self.person_mask(blank)
        self.faces(blank)
        self.faces(blank, far=True)
        self.landmarks(blank)

    def close(self) -> None:
        """Release the graphs (safe twice)."""
        for name in ("_segmenter", "_detector", "_far_detector", "_mesh"):
            graph = getattr(self, name, None)
            if graph is not None:
                try:
                    graph.close()
                except Exception:  # noqa: BLE001 - closing must not raise
                    log.debug("closing %s failed", name, exc_info=True)
                setattr(self, name, None)
