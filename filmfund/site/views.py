from flask import Blueprint, render_template
from filmfund.security import role_required

bp = Blueprint("site", __name__, template_folder="templates")


@bp.get("/")
def campaign():
    return render_template("site/campaign.html")


@bp.get("/account")
@role_required("donor")
def account():
    return render_template("site/account.html")
