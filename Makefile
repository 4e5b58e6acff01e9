# botkit — two commands on a fresh machine: `make run` and `make test`.
# Every target sets up .venv from requirements/dev.lock on demand (once; a second run installs nothing).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
BOTKIT := $(VENV)/bin/botkit
STAMP := $(VENV)/.installed
export BENTOML_DO_NOT_TRACK := true
export BOTKIT_HOME ?= $(CURDIR)/.botkit
export BENTOML_HOME ?= $(BOTKIT_HOME)/bentoml
export PYTHONDONTWRITEBYTECODE := 1
# The container proof's Debian base image and layers outlive a clone (like pip's cache).
export BOTKIT_CONTAINER_CACHE ?= $(HOME)/.cache/botkit/container
# The machine's pip config names index folders that do not exist: hide that noise, keep real errors.
LINT_DIRS := $(wildcard botkit tests loadtests)
PIPQUIET := 2>&1 | { grep -v "Location 'file:" || true; }

.PHONY: help setup run test test-fast test-nbval lint lab notebooks bench profile container cluster clean lock sysdeps workshop slides openapi

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): requirements/dev.lock pyproject.toml
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing the locked packages (requirements/dev.lock, hashes checked) ..."
	@$(PY) -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/dev.lock $(PIPQUIET)
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . $(PIPQUIET)
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install the pinned set (idempotent)

workshop: $(STAMP) ## participants: .venv without root (no apt), then check the laptop (botkit workshop check)
	@$(BOTKIT) workshop check

slides: $(STAMP) ## render the workshop slides to reveal.js HTML (reports/slides/), offline
	@$(VENV)/bin/jupyter nbconvert --to slides workshops/slides/workshop_slides.ipynb --output-dir reports/slides \
	  2>&1 | { grep -v "Location 'file:" || true; }

sysdeps: ## Debian packages the integration tests need (installed only when missing)
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v haproxy >/dev/null || missing="$$missing haproxy"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v debootstrap >/dev/null || missing="$$missing debootstrap debian-archive-keyring"; \
	command -v buildah >/dev/null || missing="$$missing buildah"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

run: $(STAMP) ## the main job: train, evaluate, register, serve and load-test the default bot
	@$(BOTKIT) run

PYTEST := $(PY) -m pytest -q -p no:cacheprovider --timeout 900

test: $(STAMP) sysdeps ## the whole suite: lint, import floors, unit, behaviour, service, load, notebooks (papermill + nbval)
	@$(VENV)/bin/ruff check $(LINT_DIRS)
	@$(VENV)/bin/lint-imports --no-cache
	@$(PYTEST) tests
	@$(MAKE) --no-print-directory test-nbval

test-nbval: $(STAMP) ## replay the committed notebooks in strict mode (nbval, sanitized)
	@nbhome="$$(mktemp -d)"; trap 'rm -rf "$$nbhome"' EXIT; \
	 BOTKIT_NB_HOME="$$nbhome" PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 \
	 $(PYTEST) -p nbval -p pytest_timeout --nbval notebooks/ --nbval-sanitize-with notebooks/nbval_sanitize.cfg

test-fast: $(STAMP) ## the quick inner loop: lint + import floors + unit tests only
	@$(VENV)/bin/ruff check $(LINT_DIRS)
	@$(VENV)/bin/lint-imports --no-cache
	@$(PYTEST) tests/unit -x

lint: $(STAMP) ## ruff and the import contract of the floors (lint-imports, pyproject.toml)
	@$(VENV)/bin/ruff check $(LINT_DIRS)
	@$(VENV)/bin/lint-imports --no-cache

lab: $(STAMP) ## JupyterLab on the notebooks, bound to 127.0.0.1 (token printed)
	@$(VENV)/bin/jupyter lab --ip=127.0.0.1 --no-browser --notebook-dir=$(CURDIR) --ServerApp.allow_root=True

notebooks: $(STAMP) ## re-execute the notebooks with papermill and store them executed
	@$(BOTKIT) notebooks run notebooks --in-place --out reports/notebooks

bench: $(STAMP) ## botkit against its peers, same model and load; renders loadtests/RESULTS.md (BENCH_ARGS=--help)
	@$(BOTKIT) bench run $(BENCH_ARGS)

profile: $(STAMP) ## py-spy, GC pauses and CPU per request of the default under the bench load (PROFILE_ARGS=--help)
	@$(BOTKIT) bench profile $(PROFILE_ARGS)

cluster: $(STAMP) sysdeps ## N replicas behind HAProxy with Redis and Prometheus (CLUSTER_ARGS=--replicas 3); `botkit cluster down` stops it
	@$(BOTKIT) models show >/dev/null 2>&1 || $(BOTKIT) train --stage production
	@$(BOTKIT) cluster up $(CLUSTER_ARGS)
	@$(BOTKIT) cluster status

container: $(STAMP) sysdeps ## build the bento's image locally with buildah and prove it answers
	@$(BOTKIT) models show >/dev/null 2>&1 || $(BOTKIT) train --stage production
	@$(BOTKIT) container

LOCKFLAGS := --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
  --custom-compile-command "make lock" --quiet $(if $(UPGRADE),--upgrade,)

openapi: $(STAMP) ## refresh the API contract snapshot deploy/openapi.json (then review and commit the diff)
	@$(BOTKIT) openapi --write

lock: $(STAMP) ## compile requirements/dev.lock (.venv) and runtime.lock (the bento) with uv, hashed (UPGRADE=1)
	@$(VENV)/bin/uv pip compile requirements/requirements.in pyproject.toml --all-extras $(LOCKFLAGS) \
	  -o requirements/dev.lock
	@grep -E '^[A-Za-z0-9_.-]+==' requirements/dev.lock | cut -d' ' -f1 > $(VENV)/lock-constraints.txt
	@$(VENV)/bin/uv pip compile pyproject.toml -c $(VENV)/lock-constraints.txt $(LOCKFLAGS) -o requirements/runtime.lock
	@echo "requirements/dev.lock and requirements/runtime.lock updated (the runtime lock takes the dev lock's versions)"

clean: ## remove the venv, the model store, reports and caches
	rm -rf $(VENV) .botkit reports .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
