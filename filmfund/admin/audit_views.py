"""The audit log page: producers read who did what and when (nobody edits it)."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from filmfund import audit
from filmfund.auth import audit_people
from filmfund.rewards import ledger_check
from filmfund.security import role_required

bp = Blueprint("audit", __name__, url_prefix="/admin/audit", template_folder="templates")

PAGE = 100


@bp.get("")
@role_required("producer")
def log():
    action = (request.args.get("action") or "").strip()[:audit.ACTION_MAX] or None
    before = request.args.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) <= 18 else None
    who = (request.args.get("who") or "").strip()[:254]
    entries = audit.list_audit(action=action, before_id=before_id, limit=PAGE,
                               refs=audit_people.refs_for(who) if who else None)
    older = entries[-1].id if len(entries) == PAGE else None
    return render_template("admin/audit.html", entries=entries, action=action or "", who=who,
                           actions=audit.audit_actions(), older=older, people=audit_people.people_of(entries),
                           check=ledger_check.last_check())
