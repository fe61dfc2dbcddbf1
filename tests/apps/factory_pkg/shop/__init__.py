"""A factory in a package, building a Flask subclass; health at /healthcheck."""

from pathlib import Path

from shop.base import ShopApp
from shop.store import Store


def create_app() -> ShopApp:
    app = ShopApp(__name__, instance_relative_config=True)
    store = Store(Path(app.instance_path) / "shop.sqlite3")

    @app.route("/healthcheck")
    def healthcheck():
        return {"status": "up"}

    @app.route("/")
    def index():
        return f"{app.shop_name}: {store.count()} orders"

    @app.route("/hits", methods=["POST"])
    def order():
        return str(store.add())

    return app
