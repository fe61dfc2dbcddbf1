# The app's own gunicorn settings, for `gunicorn app:app` on a laptop. gunicorn reads
# ./gunicorn.conf.py by default: under systemd, daemon = True would fork away from the
# unit and this bind would compete with systemd's socket. deployer must not read it.
bind = "0.0.0.0:1"
daemon = True
workers = 9
pidfile = "/nonexistent/app.pid"
raw_env = ["FROM_APP_GUNICORN_CONF=read"]
