"""The audit trail's vocabularies: the record kinds, the phases, and the closed sets of signal and
target types. Declared once here, for the models, the serializers and the admin's filters alike."""

from django.db import models


class AuditKind(models.TextChoices):
    REMEDIATION = "remediation", "Remediation request"
    AI_ANALYSIS = "aianalysis", "AI analysis"
    WORKFLOW = "workflow", "Workflow execution"
    EXECUTION = "execution", "Kubernetes execution"


class Phase(models.TextChoices):
    PENDING = "Pending"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"


#: What raised the alert a remediation answers.
SIGNAL_TYPES = ["prometheus", "kubernetes-event"]

#: The Kubernetes resource kinds a remediation may act on (lower-case kind names).
TARGET_TYPES = [
    "deployment",
    "statefulset",
    "daemonset",
    "replicaset",
    "pod",
    "node",
    "job",
    "cronjob",
    "horizontalpodautoscaler",
    "persistentvolumeclaim",
    "service",
    "configmap",
]
