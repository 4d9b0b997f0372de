"""Shared helpers for tests: real faces, fake-camera files, independent detectors."""
