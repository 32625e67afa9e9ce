# The two entry points of the README. Each installs what it needs first (deploy/setup.sh is idempotent).
.PHONY: setup run test

setup:
	./deploy/setup.sh

run: setup
	.venv/bin/python server.py $(if $(CONFIG),--config $(CONFIG),)

test: setup
	.venv/bin/python -m pytest $(PYTEST_ARGS)
