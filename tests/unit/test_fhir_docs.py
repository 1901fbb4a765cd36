"""docs/fhir.md tells integrators the truth: every JSON example in it validates against
FHIR R4 4.0.1, and its table of referral states is the mapping the interface uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fhir.resources import construct_fhir_element

from bersinar import codes
from gateway.fhir import resources as fhir
from gateway.fhir import terms

PAGE = (Path(__file__).parents[2] / "docs" / "fhir.md").read_text()
EXAMPLES = re.findall(r"```json\n(.*?)```", PAGE, re.DOTALL)


def test_the_page_has_examples():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: json.loads(e)["resourceType"])
def test_every_example_validates_against_fhir_r4(example):
    resource = json.loads(example)
    construct_fhir_element(resource["resourceType"], resource)
    for url in re.findall(r"https://bersinar\.bnn\.go\.id/fhir/(\w+)/([\w-]+)", example):
        kind, ident = url
        if kind == "CodeSystem":
            assert ident in terms.CODE_SYSTEMS
        elif kind == "StructureDefinition":
            assert ident in terms.EXTENSIONS


def test_the_state_table_is_the_mapping():
    for state in codes.REFERRAL_STATUSES:
        row = f"| `{state}` | `{fhir.TASK_STATUS[state]}` | `{fhir.REQUEST_STATUS[state]}` |"
        assert row in PAGE


def test_every_code_system_and_extension_is_named():
    for name in [*terms.CODE_SYSTEMS, *terms.EXTENSIONS]:
        assert f"`{name}`" in PAGE
    for code in codes.INDICATORS:
        assert f"| `{code}` | `{fhir.fhir_id(code)}` |" in PAGE
