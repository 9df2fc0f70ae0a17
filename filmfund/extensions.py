"""Extensions, created unbound and bound to the app in create_app (Flask's app-factory pattern)."""
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from filmfund.db import Base

db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
# The client address is the socket's own: X-Forwarded-For is not trusted unless a proxy is
# configured (FILMFUND_TRUSTED_PROXIES), so a spoofed header cannot dodge a limit.
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)
