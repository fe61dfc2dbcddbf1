# make demo: boot lab hosts, deploy examples/hello to them, verify (as root on Debian 12)
# make test: the whole suite, integration tests on the lab included
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
LAB_HOSTS ?= 3

.PHONY: demo test unit deps lab-down bench clean

$(BIN)/deployer: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

deps:
	./scripts/install-system-deps

demo: deps $(BIN)/deployer
	$(BIN)/python examples/demo.py

test: deps $(BIN)/deployer
	$(BIN)/pytest -ra

unit: $(BIN)/deployer
	$(BIN)/pytest -ra tests/unit

lab-down: $(BIN)/deployer
	$(BIN)/deployer lab down

bench: deps $(BIN)/deployer
	$(BIN)/python bench/deploy.py

clean:
	rm -rf $(VENV) build dist *.egg-info
