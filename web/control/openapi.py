"""The OpenAPI 3.1 document, made from the route table and its models.

Every route's access, request body and answer come from the same `Route` the router binds
(see routes.py), and their schemas from the same pydantic models that parse the bodies and
hold the answers: the document cannot describe an API other than the one that runs.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .routes import ANY, MEMBER, MEMBER_HEADER, PUBLIC, Route
from .schemas import ErrorAnswer

_REF = "#/components/schemas/{model}"


def document(routes: list[Route], *, prefix: str = "/api/v1") -> dict[str, Any]:
    """OpenAPI 3.1 description of `routes`."""
    models: dict[type[BaseModel], None] = {ErrorAnswer: None}
    for route in routes:
        for model in (route.body, route.response):
            if model is not None:
                models[model] = None
    # requests are described as the server validates them, answers as it sends them
    keyed: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((m, "validation") for m in models), *((m, "serialization") for m in models)
    ]
    refs, defs = models_json_schema(keyed, ref_template=_REF, by_alias=True)
    schemas = defs.get("$defs", {})
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
                str(route.status): _answer(route, refs),
                "default": {
                    "description": "error",
                    "content": {"application/json": {
                        "schema": refs[(ErrorAnswer, "serialization")]}},
                },
            },
        }
        if route.access == MEMBER:
            op["security"] = [{"member_link": []}]
        elif route.access != PUBLIC:
            op["security"] = [{"session": []}]
            if route.access != ANY:
                op["description"] = "Roles: " + ", ".join(route.access) + "."
        if route.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
            }
        paths.setdefault(prefix + route.path, {})[route.method.lower()] = op
    paths.setdefault(prefix + "/openapi.json", {})["get"] = {
        "summary": "This document",
        "operationId": "openapi_get",
        "tags": ["meta"],
        "responses": {"200": {"description": "OpenAPI 3 document"}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Confide control plane", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "confide_session",
                    "description": "plus the X-CSRF-Token header on POST/PUT/PATCH/DELETE",
                },
                "member_link": {
                    "type": "apiKey",
                    "in": "header",
                    "name": MEMBER_HEADER,
                    "description": "the secret a member's page got on redeeming their link",
                },
            },
        },
    }


def _answer(route: Route, refs: dict[Any, Any]) -> dict[str, Any]:
    if route.response is not None:
        return {"description": "success", "content": {
            "application/json": {"schema": refs[(route.response, "serialization")]}}}
    return {"description": "success", "content": {route.media_type: {
        "schema": {"type": "string"}}}}
