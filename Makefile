# Moorage: one command to set up and start everything, one to set up and test everything.
#   make run    set up the host, then start redis, a Celery worker and daphne (Ctrl-C stops)
#   make test   set up the host, then run tests/unit, tests/kernel and tests/web (and
#               tests/web again on PostgreSQL)
#   make check  ruff, mypy and the import contract
# PYTEST_ARGS passes extra options to pytest: make test PYTEST_ARGS='-k network -x'

VENV := .venv/bin
# Kernel tests share this machine's namespaces, cgroups and links: run serially.
TEST_DIRS := $(wildcard tests/unit tests/kernel tests/web)
PYTEST_ARGS ?=

.PHONY: setup test test-web-postgres check run

setup:
	@scripts/setup-host

# pytest exits 5 when it collected no test: for this project that means a broken suite.
test: setup
	@rc=0; $(VENV)/pytest -q $(TEST_DIRS) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests ran; the suite is broken" >&2; exit 1; fi; \
	exit $$rc
	@$(MAKE) --no-print-directory test-web-postgres

# The web suite again on PostgreSQL, all of it: the test setup starts a private cluster
# (Debian postgresql) on a unix socket and removes it afterwards.
test-web-postgres:
	MOORAGE_TEST_DATABASE=postgresql $(VENV)/pytest -q tests/web $(PYTEST_ARGS)

check: setup
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/lint-imports --no-cache

run: setup
	@scripts/run-system
