# Two commands do everything on a fresh clone (README):
#   make demo   install, fit the sample data, write its HTML report, serve JupyterHub on http://127.0.0.1:8000
#   make test   install what the tests need and run the whole suite
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
# pytensor compiles C once per model shape; keep it with the project so tests and demo reuse it.
export PYTENSOR_FLAGS ?= base_compiledir=$(ROOT)/.cache/pytensor
export XLA_FLAGS ?= --xla_force_host_platform_device_count=2
export MMM_HOME ?= $(ROOT)/mmm_home
export PIP_DISABLE_PIP_VERSION_CHECK := 1
DEMO_CLIENT := sample
DEMO_RUN := $(MMM_HOME)/clients/$(DEMO_CLIENT)/runs/demo

# First Python >= 3.12 found: python3.12/3.13 on PATH, pyenv's versions, then python3.
define FIND_PYTHON
for c in python3.12 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3 2>/dev/null) \
         python3.13 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3 2>/dev/null) python3; do \
  if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
    echo $$c; exit 0; fi; \
done; exit 1
endef

.PHONY: help demo test test-fast venv meridian js chp chromium lint fit-sample report-sample hub voila benchmarks clean

help:
	@echo "make demo   — install, fit the sample data, write the HTML report, serve JupyterHub on http://127.0.0.1:8000"
	@echo "make test   — install and run the whole test suite"
	@echo "make test-fast — the tests that fit no model and start no server, in under a minute (edit-test loop)"

$(VENV)/.installed: pyproject.toml constraints.txt
	@py=$$($(FIND_PYTHON)) || { echo "No Python >= 3.12 found (tried python3.12, python3.13, pyenv versions, python3). Install one, e.g. 'pyenv install 3.12'." >&2; exit 1; }; \
	 echo "Using $$py ($$($$py --version))"; \
	 if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then rm -rf $(VENV); $$py -m venv $(VENV); fi
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	@touch $@

venv: $(VENV)/.installed

# Google Meridian in its own venv (its tensorflow/tfp/arviz pins conflict with ours): `mmm import meridian` runs its
# converter there (mmmlib/meridian_convert.py) and reads back a neutral exchange file. Nothing else imports it.
MERIDIAN_VENV := $(ROOT)/.venv-meridian
$(MERIDIAN_VENV)/.installed: meridian-constraints.txt
	@py=$$($(FIND_PYTHON)) || { echo "No Python >= 3.12 found for Meridian's environment." >&2; exit 1; }; \
	 rm -rf $(MERIDIAN_VENV); $$py -m venv $(MERIDIAN_VENV)
	$(MERIDIAN_VENV)/bin/python -m pip install -q --upgrade "pip>=24"
	$(MERIDIAN_VENV)/bin/python -m pip install -q -c meridian-constraints.txt "google-meridian[schema]"
	@touch $@

meridian: $(MERIDIAN_VENV)/.installed

# npm packages into a private folder of .cache/ (no global install), marked done by .installed.
define npm_into
mkdir -p $(1)
cd $(1) && echo '{"private": true}' > package.json && npm install --no-audit --no-fund --loglevel=error $(2)
touch $(1)/.installed
endef

# JavaScript the offline HTML report inlines (require.js, the widget renderer), from the npm registry.
JS := $(ROOT)/.cache/js
$(JS)/.installed: Makefile
	$(call npm_into,$(JS),requirejs@2.3.8 @jupyter-widgets/html-manager@1.0.15)

js: $(JS)/.installed

# configurable-http-proxy, JupyterHub's proxy, from the npm registry (the hub finds it in .cache/chp).
CHP := $(ROOT)/.cache/chp
$(CHP)/.installed: Makefile
	$(call npm_into,$(CHP),configurable-http-proxy@5.3.0)

chp: $(CHP)/.installed

# Debian's Chromium for the browser tests (Playwright cannot download browsers here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi; }

lint: venv
	$(VENV)/bin/ruff check mmmlib tests benchmarks

# Two pytest-xdist workers: much of a test is one thread (imports, compiling, a kernel or hub starting, a browser
# waiting), so two share the 2 cores well. Each test file runs on one worker (its module's fits, hubs and browsers
# are built once); the fits several files share are built once for both (tests/conftest.py).
TEST_WORKERS ?= 2
test: venv meridian js chp chromium
	$(VENV)/bin/python -m pytest -q --durations=30 -n $(TEST_WORKERS) --dist loadfile tests

# The edit-test loop: all but the tests marked slow (fits, several seconds) or server (hubs, Voilà, kernels, browsers)
# in pyproject.toml; needs only the venv. nbval and zarr's pytest plugins are left unloaded: seconds of imports
# nothing here uses. CI runs `make test`.
test-fast: venv
	$(VENV)/bin/python -m pytest -q -p no:nbval -p no:zarr -m "not slow and not server" tests

$(DEMO_RUN)/summary.json: $(VENV)/.installed $(JS)/.installed sample_data/sample_weekly.csv sample_data/sample_config.yaml
	$(VENV)/bin/mmm fit sample_data/sample_weekly.csv --config sample_data/sample_config.yaml --out $(DEMO_RUN) --mode quick

fit-sample: $(DEMO_RUN)/summary.json

report-sample: fit-sample
	$(VENV)/bin/mmm report $(DEMO_RUN) --format html --out $(DEMO_RUN)/report.html
	@# the client's latest published report, which the hub's gallery serves to the client's users
	mkdir -p $(MMM_HOME)/clients/$(DEMO_CLIENT)/reports
	cp $(DEMO_RUN)/report.html $(MMM_HOME)/clients/$(DEMO_CLIENT)/reports/latest.html

# JupyterHub on http://127.0.0.1:8000: demo users (password printed once, kept in $(MMM_HOME)/demo_credentials.txt
# or MMM_DEMO_PASSWORD), executives land on their dashboards, analysts in JupyterLab; scheduler as a service.
hub: venv chp report-sample
	cd $(MMM_HOME) && MMM_HUB_SCHEDULES=$(ROOT)/sample_data/schedules.yaml $(VENV)/bin/jupyterhub -f $(ROOT)/hub_config/jupyterhub_config.py

# One dashboard straight from Voilà, without the hub (no login).
voila: report-sample
	@echo "Serving the executive dashboard on http://127.0.0.1:8000 (Ctrl-C to stop); report: $(DEMO_RUN)/report.html"
	cd dashboards && MMM_RUN=$(DEMO_RUN) $(VENV)/bin/voila executive.ipynb --no-browser --Voila.ip=127.0.0.1 --port=8000 \
	  --preheat_kernel=True --pool_size=1

demo: hub

# Whole-process benchmarks; results land in benchmarks/results/ and docs/benchmarks.md. The recovery suite (24 + 12 worlds,
# ours and the peer) takes hours on 2 cores and resumes where it stopped (benchmarks/results/recovery_suite.json).
benchmarks: venv fit-sample
	$(VENV)/bin/python benchmarks/validation_speed.py
	$(VENV)/bin/python benchmarks/input_limits.py
	$(VENV)/bin/python benchmarks/optimizer_speed.py $(DEMO_RUN) | tee benchmarks/results/optimizer.md
	$(VENV)/bin/python benchmarks/samplers.py
	$(VENV)/bin/python benchmarks/recovery.py
	$(VENV)/bin/python benchmarks/recovery.py --suite --modes quick
	$(VENV)/bin/python benchmarks/interval_forms.py   # where the suite's intervals miss (reads its runs)
	$(VENV)/bin/python benchmarks/calibration.py
	$(VENV)/bin/python benchmarks/sbc.py --sims 100   # hours on 2 cores: resumes per commit

clean:
	rm -rf $(VENV) .cache mmm_home
