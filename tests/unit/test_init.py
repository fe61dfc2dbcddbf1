"""``deployer init``: what it finds in small Flask app trees, and the inventory it writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from deployer.cli import main
from deployer.errors import InventoryError
from deployer.config.inventory import load_inventory
from deployer.init.reads import requirement_names
from deployer.init.scan import InitError, app_name, inspect_app
from deployer.init.writer import starter_inventory
from tests.factories import EXAMPLE_APP

REQUIREMENTS = "Flask==3.1.3\ngunicorn==27.0.1\n"


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_module_level_app_object(tmp_path: Path) -> None:
    root = tree(tmp_path / "shop", {
        "app.py": "from flask import Flask\napp = Flask(__name__)\n\n@app.get('/healthz')\ndef h():\n    return 'ok'\n",
        "requirements.txt": REQUIREMENTS, "static/site.css": "",
    })
    found = inspect_app(root)
    assert (found.name, found.entry.wsgi, found.entry.line) == ("shop", "app:app", 2)
    assert found.requirements == "requirements.txt"
    assert found.static == ("/static", "static")
    assert found.health == "/healthz" and found.instance is None and found.notes == []


def test_factory_in_a_package_with_instance_config(tmp_path: Path) -> None:
    root = tree(tmp_path / "Blog_App", {
        "blog/__init__.py": ("import flask\n\ndef create_app(test_config=None):\n"
                             "    app = flask.Flask(__name__, instance_relative_config=True)\n"
                             "    @app.route('/health')\n    def health():\n        return 'ok'\n    return app\n"),
        "blog/static/x.js": "", "requirements.txt": REQUIREMENTS,
    })
    found = inspect_app(root)
    assert (found.name, found.entry.wsgi) == ("blog-app", "blog:create_app()")
    assert found.static == ("/static", "blog/static")  # beside the module: Flask's root_path
    assert found.instance == "instance_relative_config=True"
    assert found.health == "/health"


def test_wsgi_module_calling_the_factory_wins_over_the_factory(tmp_path: Path) -> None:
    root = tree(tmp_path / "site", {
        "site_pkg/__init__.py": "from flask import Flask\n\ndef create_app():\n    return Flask(__name__)\n",
        "wsgi.py": "from site_pkg import create_app\n\napplication = create_app()\n",
        "requirements.txt": REQUIREMENTS,
    })
    found = inspect_app(root)
    assert found.entry.wsgi == "wsgi:application"
    assert [e.wsgi for e in found.others] == ["site_pkg:create_app()"]


def test_example_app_and_its_instance_path() -> None:
    found = inspect_app(EXAMPLE_APP)
    assert found.entry.wsgi == "app:app" and found.instance == "the code uses app.instance_path"
    assert found.static == ("/static", "static") and found.health == "/healthz" and found.notes == []


def test_code_is_read_never_run(tmp_path: Path) -> None:
    root = tree(tmp_path / "app", {
        "app.py": "raise SystemExit('executed')\nfrom flask import Flask\napp: Flask = Flask(__name__, static_folder=None)\n",
        "requirements.txt": REQUIREMENTS,
    })
    found = inspect_app(root)
    assert found.entry.wsgi == "app:app" and found.static is None


def test_custom_static_folder_and_url(tmp_path: Path) -> None:
    root = tree(tmp_path / "app", {
        "main.py": "from flask import Flask\napp = Flask(__name__, static_folder='assets', static_url_path='/a')\n",
        "assets/app.css": "", "requirements.txt": REQUIREMENTS,
    })
    assert inspect_app(root).static == ("/a", "assets")


def test_missing_requirements_and_servers_are_said(tmp_path: Path) -> None:
    root = tree(tmp_path / "app", {"app.py": "from flask import Flask\napp = Flask(__name__)\n"})
    found = inspect_app(root)
    assert found.requirements is None
    assert any("no requirements.txt" in note for note in found.notes)
    assert any("/healthz" in note for note in found.notes)
    tree(root, {"requirements.txt": "flask\n"})
    assert any("does not list gunicorn: deployer adds gunicorn 27.0.1" in note for note in inspect_app(root).notes)
    assert not any("gunicorn.conf.py" in note for note in inspect_app(root).notes)
    tree(root, {"requirements.txt": "flask\nGunicorn==23.0.0\n", "gunicorn.conf.py": "daemon = True\n"})
    notes = inspect_app(root).notes
    assert not any("does not list" in note for note in notes)
    assert any(note.startswith("gunicorn.conf.py is not read") and "app.server_config: gunicorn.conf.py" in note
               for note in notes), notes


def test_factory_that_needs_arguments_is_not_a_target(tmp_path: Path) -> None:
    root = tree(tmp_path / "app", {"app.py": "from flask import Flask\ndef create_app(config):\n    return Flask(__name__)\n"})
    with pytest.raises(InitError, match="no Flask app found"):
        inspect_app(root)


def test_nothing_found_is_a_clear_error(tmp_path: Path) -> None:
    root = tree(tmp_path / "app", {"app.py": "print('hi')\n", "broken.py": "def (:\n"})
    with pytest.raises(InitError, match=r"no Flask app found \(could not parse: broken.py\).*create_app"):
        inspect_app(root)


def test_inventory_needs_only_an_address(tmp_path: Path) -> None:
    root = tree(tmp_path / "shop", {"app.py": "from flask import Flask\napp = Flask(__name__)\n",
                                    "requirements.txt": REQUIREMENTS, "static/a.css": ""})
    path = tmp_path / "inv" / "shop.yml"
    path.parent.mkdir()
    path.write_text(starter_inventory(inspect_app(root), "../shop"))
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    assert [p.path for p in err.value.problems] == ["hosts/web1/address"]
    path.write_text(path.read_text().replace("    address:", "    address: 203.0.113.7"))
    inventory = load_inventory(path)
    assert inventory.app.source == root.resolve() and inventory.app.static.dir == "static"
    assert inventory.hosts[0].address == "203.0.113.7"


def test_cli_writes_once_and_refuses_to_overwrite(tmp_path: Path) -> None:
    root = tree(tmp_path / "shop", {"app.py": "from flask import Flask\napp = Flask(__name__)\n",
                                    "requirements.txt": REQUIREMENTS})
    first = CliRunner().invoke(main, ["init", str(root)])
    assert first.exit_code == 0, first.output
    assert "app:app" in first.output and "hosts/web1/address" in first.output
    text = (root / "deploy.yml").read_text()
    again = CliRunner().invoke(main, ["init", str(root)])
    assert again.exit_code == 2 and "already exists" in again.output
    assert (root / "deploy.yml").read_text() == text
    other = CliRunner().invoke(main, ["init", str(root), "-o", str(tmp_path / "prod.yml")])
    assert other.exit_code == 0 and "source: shop" in (tmp_path / "prod.yml").read_text()


def test_cli_nothing_found_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 2 and "no Flask app found" in result.output
    assert not (tmp_path / "deploy.yml").exists()


@pytest.mark.parametrize(("directory", "name"), [("hello", "hello"), ("My_Shop 2", "my-shop-2"), ("2fa", "fa"), ("___", "app")])
def test_app_name_from_directory(tmp_path: Path, directory: str, name: str) -> None:
    assert app_name(tmp_path / directory) == name


def test_requirement_names() -> None:
    text = "# c\n-r base.txt\nFlask[async]>=3 ; python_version>'3'\nzope.interface==6\n--hash=x\ngunicorn  # server\n"
    assert requirement_names(text) == {"flask", "zope-interface", "gunicorn"}


# -- apps nobody here wrote: pyproject, src/, subclasses, blueprints, health, env ---------------

PYPROJECT = '[project]\nname = "Flask_Shop.API"\ndependencies = ["Flask>=3", "gunicorn"]\n'


def test_src_layout_pyproject_name_and_subclass(tmp_path: Path) -> None:
    root = tree(tmp_path / "checkout", {
        "pyproject.toml": PYPROJECT,
        "src/shop/__init__.py": ("from shop.base import ShopApp\n\ndef create_app():\n"
                                 "    app = ShopApp(__name__)\n    return app\n"),
        "src/shop/base.py": "import flask\nclass Base(flask.Flask):\n    pass\nclass ShopApp(Base):\n    pass\n",
        "src/shop/static/a.css": "",
    })
    found = inspect_app(root)
    assert found.name == "flask-shop-api"  # pyproject's name, not the folder's
    assert found.entry.wsgi == "shop:create_app()"
    assert found.static == ("/static", "src/shop/static")
    assert found.requirements is None and found.pyproject
    assert not any("requirements" in n or "does not list" in n for n in found.notes), found.notes


def test_blueprint_static_folders_are_listed(tmp_path: Path) -> None:
    root = tree(tmp_path / "app", {
        "app.py": "from flask import Flask\nfrom admin import bp\napp = Flask(__name__)\napp.register_blueprint(bp)\n",
        "admin/__init__.py": "from flask import Blueprint\nbp = Blueprint('admin', __name__, static_folder='assets')\n",
        "admin/assets/x.js": "", "static/y.css": "", "requirements.txt": REQUIREMENTS,
    })
    found = inspect_app(root)
    assert found.static == ("/static", "static")
    assert found.blueprint_static == [("admin", "admin/assets")]
    assert "#   blueprint admin: admin/assets/" in starter_inventory(found, "app")


@pytest.mark.parametrize(("views", "health", "hint"), [
    ("@app.get('/')\ndef i():\n    return redirect('/login')\n", "/healthz", "/ at app.py:4 redirects"),
    ("@app.get('/')\n@login_required\ndef i():\n    return 'x'\n", "/healthz", "redirects or needs a login"),
    ("@app.get('/')\ndef i():\n    return 'x'\n", "/", "a cheap /healthz route is better"),
    ("@app.get('/')\ndef i():\n    return redirect('/login')\n@app.route('/healthcheck')\ndef h():\n    return 'ok'\n",
     "/healthcheck", None),
    ("@app.route('/health', methods=['POST'])\ndef h():\n    return 'ok'\n", "/healthz", "no health route found"),
    ("bp = Blueprint('api', __name__, url_prefix='/api/')\n@bp.get('/ping')\ndef p():\n    return 'pong'\n",
     "/api/ping", None),
])
def test_health_route_answers_without_redirect_or_login(tmp_path: Path, views: str, health: str, hint: str | None) -> None:
    head = "from flask import Flask, Blueprint, redirect\nfrom auth import login_required\napp = Flask(__name__)\n"
    root = tree(tmp_path / "app", {"app.py": head + views, "requirements.txt": REQUIREMENTS})
    found = inspect_app(root)
    assert found.health == health
    if hint:
        assert any(hint in note for note in found.notes), found.notes
    else:
        assert not any("health" in note for note in found.notes), found.notes


def test_env_vars_the_code_reads_become_commented_entries(tmp_path: Path) -> None:
    root = tree(tmp_path / "app", {
        "app.py": ("import os\nfrom os import environ, getenv\nfrom flask import Flask\napp = Flask(__name__)\n"
                   "app.config['SECRET_KEY'] = os.environ['SECRET_KEY']\n"
                   "DB = os.environ.get('DATABASE_URL', 'sqlite:///x.db')\n"
                   "MODE = getenv('APP_MODE', 'dev')\nLEVEL = environ.get('LOG_LEVEL')\nP = os.getenv('PATH')\n"
                   "app.config.from_prefixed_env()\napp.config.from_pyfile('config.py', silent=True)\n"),
        "requirements.txt": REQUIREMENTS, ".flaskenv": "FLASK_APP=app:app\nFLASK_DEBUG=1\nGREETING='Grüß Gott'\n",
    })
    found = inspect_app(root)
    assert [(r.name, r.secret) for r in found.env] == [
        ("APP_MODE", False), ("DATABASE_URL", True), ("LOG_LEVEL", False), ("SECRET_KEY", True)]
    text = starter_inventory(found, "app")
    assert "#   APP_MODE: dev" in text and "#   LOG_LEVEL: FILL_IN" in text
    assert '#   GREETING: "Gr\\u00fc\\u00df Gott"' in text  # from .flaskenv, quoted
    assert "#   SECRET_KEY=..." in text and "DATABASE_URL=..." in text and "sqlite" not in text
    assert any("FLASK_*" in n for n in found.notes) and any("config.py (from_pyfile)" in n for n in found.notes)
    assert any("FLASK_DEBUG" in n for n in found.notes)
    assert "PATH" not in {r.name for r in found.env}


def test_flaskenv_picks_the_entry(tmp_path: Path) -> None:
    root = tree(tmp_path / "app", {
        "app.py": "from flask import Flask\napp = Flask(__name__)\n",
        "other.py": "from flask import Flask\ndef create_app():\n    return Flask(__name__)\n",
        ".flaskenv": "export FLASK_APP=other:create_app\n", "requirements.txt": REQUIREMENTS,
    })
    assert inspect_app(root).entry.wsgi == "other:create_app()"


def test_an_inventory_with_env_reads_still_needs_only_an_address(tmp_path: Path) -> None:
    root = tree(tmp_path / "shop", {"app.py": ("import os\nfrom flask import Flask\napp = Flask(__name__)\n"
                                               "X = os.getenv('SHOP_TOKEN')\nY = os.getenv('SHOP_COLOR', '01234')\n"),
                                    "requirements.txt": REQUIREMENTS})
    path = tmp_path / "deploy.yml"
    path.write_text(starter_inventory(inspect_app(root), "shop"))
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    assert [p.path for p in err.value.problems] == ["hosts/web1/address"]
    assert '#   SHOP_COLOR: "01234"' in path.read_text()  # quoted: YAML would read 01234 as a number
