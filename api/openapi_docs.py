"""OpenAPI for routes that read their bodies themselves (the fast lead routes parse the raw
bytes with pydantic in one step): their request schema is declared here, so /openapi.json
still describes every body and partners can generate clients (and fuzzers drive every route)."""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

_REF = "#/components/schemas/{model}"


def json_body(model: type[BaseModel], description: str = "") -> dict:
    """openapi_extra declaring a required JSON body of this model."""
    return {"requestBody": {"required": True, "description": description or model.__doc__ or "",
                            "content": {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}},
            "x-body-model": model.__name__}


def install_openapi(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Generate the description once, with these models' schemas among the components."""
    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, routes=app.routes, description=app.description)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            schema = model.model_json_schema(ref_template=_REF)
            for name, sub in schema.pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            schemas[model.__name__] = schema
        for path in spec.get("paths", {}).values():
            for op in path.values():
                op.pop("x-body-model", None)
        app.openapi_schema = spec
        return spec
    app.openapi = openapi
