# Two commands do all set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet -c constraints.txt

.PHONY: demo test install install-test browser bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Stamps re-run the install only when pyproject.toml or the constraints change.
$(VENV)/.core: $(PY) pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(VENV)/.test: $(PY) pyproject.toml constraints.txt
	$(PIP) torch==2.14.1 torchvision==0.29.1
	$(PIP) -e ".[local,train,lmeval,dev]"
	touch $(VENV)/.core $@

install: $(VENV)/.core
install-test: $(VENV)/.test browser

demo: $(VENV)/.core
	$(VENV)/bin/wafersage demo

# The leaderboard test drives Debian's Chromium; install it where we may (root), else the test skips with a reason.
browser:
	@if ! command -v chromedriver >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "could not install chromium; browser tests will skip"; fi

test: install-test
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

bench: $(VENV)/.core
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
