"""The public site: the campaign page, pledging, checkout return pages, the donor's account."""
from flask import Flask


def init_app(app: Flask) -> None:
    from flask_wtf.csrf import CSRFError

    from filmfund.errors import error_response
    from filmfund.site import views
    from filmfund.site.money import format_money

    app.register_blueprint(views.bp)
    app.add_template_filter(format_money, "money")
    from filmfund.site import texts

    # Templates mark texts with _(); Flask-Babel (the i18n component) installs its own over this.
    app.jinja_env.globals.setdefault("_", texts.gettext)
    app.jinja_env.globals.setdefault("site_brand", _site_brand)

    @app.errorhandler(CSRFError)
    def _csrf_failed(err: CSRFError):
        # Usually a page left open for long, or a form posted from another site: say what to do.
        return error_response(400, "csrf_failed",
                              "This form has expired or did not come from this site. "
                              "Go back, reload the page and send it again; nothing was saved.")


def _site_brand() -> dict:
    """The top bar's brand on every page: the film's name and icon (filmfund only when the
    campaign cannot be read, e.g. an error page while the database is down)."""
    try:
        from filmfund.rewards.campaign import loaded_campaign
        from filmfund.site import page

        campaign = loaded_campaign()
        if campaign is None:
            return {"name": "filmfund", "icon": None}
        return {"name": page.brand(campaign.title), "icon": page.artwork_url(campaign, "icon")}
    except Exception:
        return {"name": "filmfund", "icon": None}
