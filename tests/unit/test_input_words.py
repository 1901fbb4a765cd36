"""Input shapes answer in Indonesian and read query strings strictly: every StrictSchema
of the shared contracts and of the gateway, made to fail every way a field can, names no
English message of marshmallow's; numbers and yes/no in a query take one spelling."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from marshmallow import ValidationError

import bersinar.contracts
from bersinar.contracts import QueryBoolean, QueryInteger, StrictSchema
from bersinar.contracts.messages import FIELD_MESSAGES, SCHEMA_MESSAGES, VALIDATOR_MESSAGES
from bersinar.contracts.referrals import ReferralFilter

ENGLISH = {*FIELD_MESSAGES, *VALIDATOR_MESSAGES, "Unknown field.", "Invalid input type."}
ENGLISH_WORDS = ("Must be", "Not a valid", "Missing data", "Shorter than", "Longer than")


def input_shapes() -> list[type[StrictSchema]]:
    modules = [importlib.import_module("gateway.schemas")]
    for info in pkgutil.iter_modules(bersinar.contracts.__path__):
        modules.append(importlib.import_module(f"bersinar.contracts.{info.name}"))
    found = {
        shape
        for module in modules
        for _, shape in inspect.getmembers(module, inspect.isclass)
        if issubclass(shape, StrictSchema) and shape is not StrictSchema
    }
    return sorted(found, key=lambda shape: f"{shape.__module__}.{shape.__name__}")


def messages(errors) -> list[str]:
    if isinstance(errors, dict):
        return [m for inner in errors.values() for m in messages(inner)]
    if isinstance(errors, list):
        return [m for inner in errors for m in messages(inner)]
    return [str(errors)]


# each field given what it cannot take: nothing at all, null, a value of every wrong
# kind, text far too long, numbers far out of range
WRONG = [None, True, 10**12, -(10**12), 1.5, "x" * 6000, "", [], {}, [{}], {"x": 1}]


@pytest.mark.parametrize("shape", input_shapes(), ids=lambda s: s.__name__)
def test_every_input_shape_refuses_in_indonesian(shape):
    said: list[str] = []
    attempts = [{}, [], "teks", {"tidak_dikenal": 1}]
    for name in shape().fields:
        attempts += [{name: value} for value in WRONG]
    for attempt in attempts:
        try:
            shape().load(attempt)
        except ValidationError as refused:
            said += messages(refused.normalized_messages())
    assert said, "nothing refused"
    english = sorted({m for m in said if m in ENGLISH or m.startswith(ENGLISH_WORDS)})
    assert english == []


def test_the_schema_s_own_messages_are_indonesian():
    with pytest.raises(ValidationError) as refused:
        ReferralFilter().load({"halaman": "2"})
    assert refused.value.messages == {"halaman": [SCHEMA_MESSAGES["unknown"]]}


@pytest.mark.parametrize("spelt", ["+5", " 5", "5 ", "1_0", "٥", "５", "0x5", "5.0", ""])
def test_a_number_in_a_query_is_ascii_digits_only(spelt):
    with pytest.raises(ValidationError) as refused:
        ReferralFilter().load({"limit": spelt})
    assert refused.value.messages == {"limit": ["Harus bilangan bulat, ditulis dengan angka 0-9."]}


def test_a_number_in_a_query_reads_as_its_digits():
    assert ReferralFilter().load({"limit": "25"})["limit"] == 25
    assert QueryInteger().deserialize(7) == 7  # over RPC it may already be a number
    with pytest.raises(ValidationError):
        QueryInteger().deserialize(True)


@pytest.mark.parametrize("spelt", ["yes", "no", "1", "0", "True", "on", "t", ""])
def test_yes_or_no_in_a_query_is_true_or_false_only(spelt):
    with pytest.raises(ValidationError):
        QueryBoolean().deserialize(spelt)


def test_true_and_false_read_as_booleans():
    assert QueryBoolean().deserialize("true") is True
    assert QueryBoolean().deserialize("false") is False
