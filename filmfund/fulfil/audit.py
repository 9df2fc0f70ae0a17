"""Staff actions of fulfilment go to the audit log (trust-staff's filmfund.audit) once it exists."""
from __future__ import annotations


def record_audit(action: str, target: str = "", details: dict | None = None, actor=None) -> None:
    try:
        from filmfund.audit import record_audit as record
    except ImportError:  # the audit log has not landed in this checkout
        return
    record(action, target, details, actor=actor)
