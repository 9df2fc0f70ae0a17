"""The public site: the campaign page, pledging, checkout return pages, the donor's account."""
from flask import Flask


def init_app(app: Flask) -> None:
    # in init_app, not at the top: each module of the package imports the package first, and so does the CLI
    from flask_babel import gettext as _
    from flask_wtf.csrf import CSRFError

    from filmfund.errors import error_response
    from filmfund.site import views

    app.register_blueprint(views.bp)
    from filmfund.site import texts

    # Templates mark texts with _(); Flask-Babel (the i18n component) installs its own over this.
    app.jinja_env.globals.setdefault("_", texts.gettext)
    app.jinja_env.globals.setdefault("site_brand", _site_brand)

    # The campaign's own texts in the reader's language (the campaign file gives them per language).
    from filmfund.rewards import texts as campaign_texts

    app.add_template_global(campaign_texts.campaign_title, "campaign_title")
    app.add_template_global(campaign_texts.partner_name, "partner_name")
    app.add_template_global(campaign_texts.tier_name, "tier_name")
    app.add_template_global(campaign_texts.reward_title, "reward_title")

    @app.errorhandler(CSRFError)
    def _csrf_failed(err: CSRFError):
        # Usually a page left open for long, or a form posted from another site: say what to do.
        return error_response(400, "csrf_failed",
                              _("This form has expired or did not come from this site. "
                                "Go back, reload the page and send it again; nothing was saved."))


def _site_brand() -> dict:
    """The top bar's brand on every page: the film's name and icon (filmfund only when the
    campaign cannot be read, e.g. an error page while the database is down)."""
    try:
        from filmfund.rewards.campaign import loaded_campaign
        from filmfund.site import page

        campaign = loaded_campaign()
        if campaign is None:
            return {"name": "filmfund", "icon": None}
        from filmfund.rewards.texts import campaign_title

        return {"name": page.brand(campaign_title(campaign)), "icon": page.artwork_url(campaign, "icon")}
    except Exception:
        return {"name": "filmfund", "icon": None}
