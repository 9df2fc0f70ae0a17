"""The public site: the campaign page, pledging, checkout return pages, the donor's account."""
from flask import Flask


def init_app(app: Flask) -> None:
    from flask_wtf.csrf import CSRFError

    from filmfund.errors import error_response
    from filmfund.site import views
    from filmfund.site.money import format_money

    app.register_blueprint(views.bp)
    app.add_template_filter(format_money, "money")

    @app.errorhandler(CSRFError)
    def _csrf_failed(err: CSRFError):
        # Usually a page left open for long, or a form posted from another site: say what to do.
        return error_response(400, "csrf_failed",
                              "This form has expired or did not come from this site. "
                              "Go back, reload the page and send it again; nothing was saved.")
