"""OpenAPI tweaks: camelCase field names on the wire, and the bearer-token security scheme.

Imported by AuditConfig.ready: drf-spectacular finds extensions by their import.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from audit.serializers import camel


def camelize_component_fields(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: rename schema properties as they appear on the wire."""
    for component in result.get("components", {}).get("schemas", {}).values():
        if "properties" in component:
            component["properties"] = {camel(name): spec for name, spec in component["properties"].items()}
        if "required" in component:
            component["required"] = [camel(name) for name in component["required"]]
    return result


class KubernetesTokenScheme(OpenApiAuthenticationExtension):
    """Documents the audit endpoints' `Authorization: Bearer <ServiceAccount token>` (AUTH_MODE=tokenreview)."""

    target_class = "kubernaut_storage.auth.KubernetesTokenAuthentication"
    name = "kubernetesServiceAccountToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A Kubernetes ServiceAccount token, verified with the TokenReview API; "
            "the account must be on the endpoint's allow-list (AUDIT_WRITERS).",
        }
