"""The OpenAPI document describes the batch body as a union of the four record kinds on `kind`."""

from __future__ import annotations

from drf_spectacular.generators import SchemaGenerator

from audit.models import AuditKind


def _component(schema, ref):
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_the_batch_body_is_a_list_of_records_discriminated_by_kind():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/audit/batch"]["post"]
    body = _component(schema, operation["requestBody"]["content"]["application/json"]["schema"]["$ref"])
    assert body["required"] == ["records"]
    union = _component(schema, body["properties"]["records"]["items"]["$ref"])

    assert union["discriminator"]["propertyName"] == "kind"
    mapping = union["discriminator"]["mapping"]
    assert set(mapping) == {kind.value for kind in AuditKind}
    assert sorted(item["$ref"] for item in union["oneOf"]) == sorted(mapping.values())
    single = {
        kind: schema["paths"][f"/api/v1/audit/{kind.value}"]["post"]["requestBody"]["content"]["application/json"]
        for kind in AuditKind
    }
    for kind in AuditKind:
        variant = _component(schema, mapping[kind.value])
        assert set(variant["required"]) == {"kind", "record"}
        assert _component(schema, variant["properties"]["kind"]["$ref"])["enum"] == [kind.value]
        # Each record is exactly the body its own endpoint takes.
        assert variant["properties"]["record"]["$ref"] == single[kind]["schema"]["$ref"]


def test_the_batch_answer_lists_one_single_write_answer_per_record():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    responses = schema["paths"]["/api/v1/audit/batch"]["post"]["responses"]
    created = _component(schema, responses["201"]["content"]["application/json"]["schema"]["$ref"])
    single = schema["paths"]["/api/v1/audit/remediation"]["post"]["responses"]["201"]
    assert created["properties"]["results"]["items"]["$ref"] == single["content"]["application/json"]["schema"]["$ref"]
    assert {"400", "403", "413", "422", "503"} <= set(responses)
