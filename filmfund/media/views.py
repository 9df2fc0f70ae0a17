from flask import Blueprint, render_template
from filmfund.security import role_required

bp = Blueprint("media", __name__, url_prefix="/footage", template_folder="templates")


@bp.get("/")
@role_required("producer")
def board():
    return render_template("media/board.html")
