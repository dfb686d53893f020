"""OpenAPI tweaks: our serializers declare snake_case fields but speak camelCase JSON."""

from __future__ import annotations

from typing import Any

from audit.serializers import camel


def camelize_component_fields(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: rename schema properties as they appear on the wire."""
    for component in result.get("components", {}).get("schemas", {}).values():
        if "properties" in component:
            component["properties"] = {camel(name): spec for name, spec in component["properties"].items()}
        if "required" in component:
            component["required"] = [camel(name) for name in component["required"]]
    return result
