"""Fuzz the REST API from its own OpenAPI schema (schemathesis) against a real control plane:
no 5xx, and every response matches the schema. Bounded, so it fits in the suite."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers import ControlPlane

QEMU_STANDIN_BIN = os.path.join(os.path.dirname(os.path.dirname(__file__)), "standins",
                                "qemu-bin")


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz") / "h"
    images = home.parent / "images"
    images.mkdir()
    home.mkdir()
    # Keep the fuzzer inside a sandbox: image paths only under images/, guestless stand-in VMMs.
    (home / "config.toml").write_text(f'image_roots = ["{images}"]\nstop_timeout = 1.0\n')
    path = os.environ["PATH"]
    os.environ["PATH"] = f"{QEMU_STANDIN_BIN}{os.pathsep}{path}"
    try:
        plane = ControlPlane(home)
    finally:
        os.environ["PATH"] = path
    yield schemathesis.openapi.from_url(f"{plane.url}/openapi.json")
    plane.stop()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.exclude(path="/events").parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_has_no_server_errors_and_keeps_its_schema(case):
    # What the issue asks: no 5xx, and every response as documented. (A schema-valid create may
    # still be refused, e.g. a UUID-shaped name or a duplicate: rules no JSON schema states.)
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance,
                                   content_type_conformance, response_schema_conformance,
                                   response_headers_conformance, allow_header_conformance])
