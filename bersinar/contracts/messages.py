"""Field errors in Indonesian: marshmallow's own messages are English. Every input shape
(``StrictSchema``) puts each of its fields, the fields inside lists and mappings, and
their validators through :func:`indonesian` when it is made, so the same rule answers
with the same words wherever it is checked (the gateway and the service that owns the
data read the same contracts). A message a field states itself is left as it is."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

# marshmallow's templates (fields' ``default_error_messages``), placeholders kept
FIELD_MESSAGES = {
    "Missing data for required field.": "Wajib diisi.",
    "Field may not be null.": "Tidak boleh null.",
    "Invalid value.": "Nilai tidak sah.",
    "Invalid type.": "Jenis nilai tidak sah.",
    "Not a valid string.": "Harus berupa teks.",
    "Not a valid utf-8 string.": "Harus berupa teks UTF-8.",
    "Not a valid integer.": "Harus bilangan bulat.",
    "Not a valid number.": "Harus berupa angka.",
    "Number too large.": "Angka terlalu besar.",
    "Special numeric values (nan or infinity) are not permitted.": (
        "Nilai khusus (NaN atau tak hingga) tidak diperbolehkan."
    ),
    "Not a valid boolean.": "Harus true atau false.",
    "Not a valid list.": "Harus berupa daftar (array JSON).",
    "Not a valid tuple.": "Harus berupa daftar (array JSON).",
    "Not a valid mapping type.": "Harus berupa objek JSON.",
    "Not a valid date.": "Tanggal tidak sah; tulis YYYY-MM-DD.",
    "Not a valid {obj_type}.": "Nilai waktu tidak sah.",
    "Not a valid {awareness} {obj_type}.": "Waktu harus memuat zona waktu.",
    "Not a valid email address.": "Alamat email tidak sah.",
    "Not a valid URL.": "Alamat URL tidak sah.",
    "Not a valid UUID.": "UUID tidak sah.",
    "Must be one of: {choices}.": "Harus salah satu dari: {choices}.",
}
# validators that keep one message in ``error`` (their ``default_message``)
VALIDATOR_MESSAGES = {
    "Must be one of: {choices}.": "Harus salah satu dari: {choices}.",
    "String does not match expected pattern.": "Bentuknya tidak sesuai pola yang diminta.",
    "Not a valid email address.": "Alamat email tidak sah.",
    "Not a valid URL.": "Alamat URL tidak sah.",
    "Must be equal to {other}.": "Harus sama dengan {other}.",
    "Invalid input.": "Nilai tidak sah.",
    "One or more of the choices you made was in: {values}.": (
        "Ada pilihan yang tidak diperbolehkan: {values}."
    ),
    "One or more of the choices you made was not in: {choices}.": (
        "Ada pilihan di luar: {choices}."
    ),
}
# a schema's own: a field it does not know, input that is not an object
SCHEMA_MESSAGES = {
    "unknown": "Isian tidak dikenal.",
    "type": "Harus berupa objek JSON.",
}


def _range_words(validator: validate.Range) -> None:
    low = "paling sedikit" if validator.min_inclusive else "lebih dari"
    high = "paling banyak" if validator.max_inclusive else "kurang dari"
    validator.message_min = f"Harus {low} {{min}}."
    validator.message_max = f"Harus {high} {{max}}."
    validator.message_all = f"Harus {low} {{min}} dan {high} {{max}}."


def _length_words(validator: validate.Length) -> None:
    validator.message_min = "Panjang paling sedikit {min}."
    validator.message_max = "Panjang paling banyak {max}."
    validator.message_all = "Panjang harus antara {min} dan {max}."
    validator.message_equal = "Panjang harus tepat {equal}."


def _validator(validator: Any) -> None:
    if isinstance(validator, validate.Range) and validator.error is None:
        _range_words(validator)
    elif isinstance(validator, validate.Length) and validator.error is None:
        _length_words(validator)
    elif isinstance(getattr(validator, "error", None), str):
        validator.error = VALIDATOR_MESSAGES.get(validator.error, validator.error)


def indonesian(field: fields.Field) -> None:
    """Put one field (and what it holds) into Indonesian, in place."""
    field.error_messages = {
        key: FIELD_MESSAGES.get(message, message) if isinstance(message, str) else message
        for key, message in field.error_messages.items()
    }
    for validator in field.validators:
        _validator(validator)
    inner: list[fields.Field | None] = [
        getattr(field, "inner", None),  # List
        getattr(field, "key_field", None),  # Dict, Mapping
        getattr(field, "value_field", None),
        *getattr(field, "tuple_fields", ()),  # Tuple
    ]
    for each in inner:
        if each is not None:
            indonesian(each)
