# The two entry points of the README. Each installs what it needs first (deploy/setup.sh is idempotent).
.PHONY: setup run test

setup:
	./deploy/setup.sh

run: setup
	.venv/bin/python server.py $(if $(CONFIG),--config $(CONFIG),)

# The suite runs on one pytest worker per core (TEST_WORKERS=0: in this process, one test at a time); a test file
# stays on one worker, so its module fixtures (a node, a browser, a cluster) are built once.
TEST_WORKERS ?= auto

test: setup
	.venv/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
