"""The size of every bounded audit field, declared once.

The models size their columns from these, the serializers validate with them, and the OpenAPI
document states them (it is generated from the serializers): a value the contract allows is a
value the column holds. Lengths count characters (Unicode code points), as PostgreSQL's
`varchar(n)` and JSON Schema's `maxLength` both do.
"""

from __future__ import annotations

#: A Kubernetes object name (DNS-1123 subdomain), and the references to one.
K8S_NAME_LENGTH = 253
#: A Kubernetes namespace (DNS-1123 label).
K8S_NAMESPACE_LENGTH = 63
#: Free single-line names: a signal, a workflow, a step, an LLM model, a recommended action.
NAME_TEXT_LENGTH = 253
CORRELATION_ID_LENGTH = 255
INVESTIGATION_ID_LENGTH = 255
#: A provider id such as `openai` (`llmProvider`).
PROVIDER_ID_LENGTH = 64
#: An action id such as `scale_deployment` (`actionType`).
ACTION_TYPE_LENGTH = 253
#: The `Idempotency-Key` header.
IDEMPOTENCY_KEY_LENGTH = 255
#: A SHA-256 in lowercase hex.
FINGERPRINT_LENGTH = 64
#: Kubernetes resourceVersions as the executor reports them.
RESOURCE_VERSION_LENGTH = 64

#: Multi-line prose kept in `text` columns or in the payload only.
MESSAGE_LENGTH = 10 * 1024
RESULT_TEXT_LENGTH = 10 * 1024
REASON_LENGTH = 4096
STEP_MESSAGE_LENGTH = 4096
VALIDATION_WARNING_LENGTH = 1024
VALIDATION_WARNINGS_MAX_ITEMS = 100
#: `originalPayload`, base64 as sent.
ORIGINAL_PAYLOAD_LENGTH = 512 * 1024

#: `labels`: what the Kubernetes API server itself accepts.
LABELS_MAX_ENTRIES = 64
LABEL_KEY_LENGTH = K8S_NAME_LENGTH + 1 + 63
LABEL_VALUE_LENGTH = 63

#: `actionData`.
ACTION_DATA_MAX_ENTRIES = 64
ACTION_DATA_KEY_LENGTH = 253
ACTION_DATA_VALUE_LENGTH = 4096

#: `signalContext`, a free-form JSON object.
SIGNAL_CONTEXT_MAX_DEPTH = 6
#: Keys of one object, or items of one array, at any depth.
SIGNAL_CONTEXT_MAX_ITEMS = 512
SIGNAL_CONTEXT_STRING_LENGTH = 8192

#: Steps of one workflow, and the counts and indexes over them.
WORKFLOW_MAX_STEPS = 1000
STEP_MAX_RETRIES = 1000
MAX_TOKENS_USED = 100_000_000
MAX_INVESTIGATION_SECONDS = 7 * 24 * 3600
