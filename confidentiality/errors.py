"""Errors raised inside the confidentiality package (never out of PrivacyPipeline.process)."""

from __future__ import annotations


class ConfidentialityError(Exception):
    """Base class for confidentiality errors."""


class ModelLoadError(ConfidentialityError):
    """A bundled model is missing or could not be loaded."""


class TransformError(ConfidentialityError):
    """A privacy transform produced no usable frame."""


class PipelineClosedError(ConfidentialityError):
    """The pipeline was used after close()."""
