"""The OpenAPI 3 document, generated from the route table so it cannot miss a route."""

from __future__ import annotations

import re
from typing import Any

from .routes import Route

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
}


def document(routes: list[Route], *, prefix: str = "/api/v1") -> dict[str, Any]:
    """OpenAPI 3.0 description of `routes`."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        params = re.findall(r"{(\w+)}", route.path)
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": getattr(route.handler, "__name__", "op") + "_" + route.method.lower(),
            "tags": [route.tag],
            "x-access": list(route.access),
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ],
            "responses": {
                "200": {"description": "success", "content": {"application/json": {}}},
                "default": {
                    "description": "error",
                    "content": {"application/json": {"schema": _ERROR}},
                },
            },
        }
        if route.access != ("public",):
            op["security"] = [{"session": []}]
        if route.body:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {k: {"type": v} for k, v in route.body.items()},
                        }
                    }
                },
            }
        paths.setdefault(prefix + route.path, {})[route.method.lower()] = op
    paths.setdefault(prefix + "/openapi.json", {})["get"] = {
        "summary": "This document",
        "operationId": "openapi_get",
        "tags": ["meta"],
        "responses": {"200": {"description": "OpenAPI 3 document"}},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Confide control plane", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "confide_session",
                    "description": "plus the X-CSRF-Token header on POST/PATCH/DELETE",
                },
            }
        },
    }
