# The two set-up commands of the README: `make demo` and `make test`.
# Both build the project's own virtualenv from scratch on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev,redis]'
	touch $(STAMP)

.PHONY: install demo test lint bench browser redis
install: $(STAMP)

# The dashboard test drives Debian's Chromium headless. Installed when missing and
# we are root (CI, fresh machines); elsewhere that one test says what is missing.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; \
		else \
			echo "chromium/chromedriver missing and not root: the browser test will be skipped"; \
		fi; \
	fi

# The scale-out tests start their own Debian redis-server on loopback. Installed when
# missing and we are root; elsewhere those tests say what is missing and are skipped.
redis:
	@if ! command -v redis-server >/dev/null && [ ! -x /usr/bin/redis-server ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq --no-install-recommends redis-server >/dev/null; \
		else \
			echo "redis-server missing and not root: the Redis tests will be skipped"; \
		fi; \
	fi

demo: $(STAMP)
	$(VENV)/bin/openrouter-trio demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint browser redis
	$(PY) -m pytest -q

bench: $(STAMP) redis
	$(PY) bench/run_all.py
