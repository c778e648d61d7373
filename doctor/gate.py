"""``python -m doctor.gate --stage prod``: the banner and the account check ``make deploy`` / ``make diff`` run first.

Prints the stage, its account and region and the caller, then refuses (exit 2) when the caller's credentials are
for another account than the stage file names, or cannot be used. A stage without ``account:`` (only dev may
omit it) deploys to the caller's account, said in the banner.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from config import ConfigError, load_config
from doctor.aws import Aws, explain
from doctor.checks.identity import whoami
from doctor.model import ClientSource

OK, REFUSED = 0, 2


def main(argv: Sequence[str] | None = None, *, aws: ClientSource | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m doctor.gate", description=__doc__.splitlines()[0])
    parser.add_argument("--stage")
    parser.add_argument("--config", metavar="PATH")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.stage, path=args.config)
    except ConfigError as error:
        print(f"cannot deploy: {error.source} has {len(error.problems)} problem(s):", file=sys.stderr)
        for line in error.problems:
            print(f"  {line}", file=sys.stderr)
        return REFUSED
    try:
        identity = whoami(aws if aws is not None else Aws(), config.region)
    except Exception as error:  # no / expired credentials, no network: one line
        print(f"cannot deploy {config.app}-{config.stage}: [local-credentials] {explain(error)}", file=sys.stderr)
        return REFUSED
    account = config.account or f"{identity.account} (the caller's: the stage file names none)"
    print(
        f"==> stage {config.stage} of {config.app}: account {account}, region {config.region}\n"
        f"==> caller {identity.arn}",
        file=sys.stderr,
    )
    if config.account and config.account != identity.account:
        print(
            f"cannot deploy {config.app}-{config.stage}: [region-mismatch] account: {identity.account} — the "
            f"credentials are for account {identity.account}, the stage file pins {config.account}; switch profile "
            "(AWS_PROFILE=... or aws sso login) to that account",
            file=sys.stderr,
        )
        return REFUSED
    return OK


if __name__ == "__main__":
    sys.exit(main())
