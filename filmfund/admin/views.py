from flask import Blueprint, render_template
from filmfund.security import role_required

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


@bp.get("/")
@role_required("producer")
def dashboard():
    return render_template("admin/dashboard.html")


@bp.get("/partner")
@role_required("partner", "producer")
def partner():
    return render_template("admin/partner.html")
