"""The signed-in donor's own settings and data: `PATCH /api/v1/me`, `GET /api/v1/me/data`
(bearer tokens only, so exempt from CSRF). The use cases are in donors.py and donor_data.py."""
from __future__ import annotations

from flask import Blueprint, g, jsonify

from filmfund.api import bearer_required, json_body, operation
from filmfund.extensions import limiter
from filmfund.rewards import donor_data, donors, services

bp = Blueprint("donor_api", __name__, url_prefix="/api/v1")

SETTINGS_SCHEMA = {
    "type": "object", "required": ["credit_name", "anonymous", "rewards_opt_out"],
    "properties": {"credit_name": {"type": "string", "nullable": True, "maxLength": services.CREDIT_NAME_MAX},
                   "anonymous": {"type": "boolean"}, "rewards_opt_out": {"type": "boolean"}},
}
SETTINGS_REQUEST = {
    "type": "object", "additionalProperties": False, "minProperties": 1,
    "properties": SETTINGS_SCHEMA["properties"],
}
DATA_SCHEMA = {
    "type": "object", "required": ["account", "tables"],
    "properties": {"account": {"type": "object"},
                   "tables": {"type": "object", "description": "table name -> the donor's rows",
                              "additionalProperties": {"type": "array", "items": {"type": "object"}}}},
}


@bp.patch("/me")
@limiter.limit("30 per minute")
@operation("/api/v1/me", "patch", "Change the signed-in donor's credit name, anonymity or rewards opt-out "
           "(the only ways are this, the account page, or a link mailed to the donor)",
           roles=("donor",), request_schema=SETTINGS_REQUEST, response_schema=SETTINGS_SCHEMA)
@bearer_required("donor")
def update_me():
    from filmfund.errors import ValidationError

    body = json_body()
    if not body:
        raise ValidationError("Give at least one of credit_name, anonymous, rewards_opt_out.", code="missing_field")
    return jsonify(donors.update_donor_settings(g.api_user, via="api", **body))


@bp.get("/me/data")
@limiter.limit("10 per minute")
@operation("/api/v1/me/data", "get", "Everything held about the signed-in donor",
           roles=("donor",), response_schema=DATA_SCHEMA)
@bearer_required("donor")
def my_data():
    return jsonify(donor_data.donor_data(g.api_user))
