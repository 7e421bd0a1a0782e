"""The spec, the docs page and the health check: no API key needed."""

from __future__ import annotations

import html
import importlib.resources
from functools import cache
from typing import Any

import tinker_rest_models as m
import yaml
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

router = APIRouter()

# `make generate` puts a copy of spec/tinker-rest.yaml beside the models made from it.
SPEC_RESOURCE = importlib.resources.files("tinker_rest_models") / "tinker-rest.yaml"
METHODS = {"get", "post", "put", "delete", "head", "patch"}


@cache
def spec_text() -> str:
    """The source spec, ``spec/tinker-rest.yaml``, as text."""
    return SPEC_RESOURCE.read_text(encoding="utf-8")


@cache
def spec_document() -> dict[str, Any]:
    """The source spec parsed into JSON-compatible data."""
    document = yaml.safe_load(spec_text())
    assert isinstance(document, dict)
    return document


def docs_page() -> str:
    """A self-contained HTML page describing every operation of the spec (no CDN)."""
    spec = spec_document()
    info = spec.get("info", {})
    rows = []
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            statuses = ", ".join(str(code) for code in op.get("responses", {}))
            rows.append(
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td><b>{}</b><br>{}</td>"
                "<td>{}</td></tr>".format(
                    method.upper(),
                    html.escape(path),
                    html.escape(op.get("summary", "")),
                    html.escape(op.get("description", "")).replace("\n", "<br>"),
                    html.escape(statuses),
                )
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(info.get('title', 'API'))}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{vertical-align:top;padding:.4em;"
        "border-bottom:1px solid #ddd}</style></head><body>"
        f"<h1>{html.escape(info.get('title', ''))} {html.escape(str(info.get('version', '')))}</h1>"
        f"<p>{html.escape(info.get('summary', ''))}</p>"
        "<p>The machine-readable spec: <a href='openapi.yaml'>openapi.yaml</a>, "
        "<a href='openapi.json'>openapi.json</a>.</p>"
        f"<pre>{html.escape(info.get('description', ''))}</pre>"
        "<table><tr><th>Method</th><th>Path</th><th>What</th><th>Statuses</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )


@router.get("/openapi.yaml", include_in_schema=False)
def openapi_yaml() -> Response:
    """The source spec as YAML.
    ``GET /openapi.yaml``"""
    return PlainTextResponse(spec_text(), media_type="application/yaml")


@router.get("/openapi.json", include_in_schema=False)
def openapi_json() -> Response:
    """The source spec as JSON.
    ``GET /openapi.json``"""
    return JSONResponse(spec_document())


@router.get("/docs", include_in_schema=False)
def docs() -> Response:
    """A docs page generated from the source spec.
    ``GET /docs``"""
    return HTMLResponse(docs_page())


@router.get("/api/v1/healthz", response_model=m.HealthResponse)
def healthz() -> m.HealthResponse:
    """Answer while the service can serve requests.
    ``GET /api/v1/healthz``"""
    return m.HealthResponse(status="ok")
