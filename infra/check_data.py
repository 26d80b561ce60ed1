"""`make check-data`: the invariant checker over the table of a running `make run`.

Companies are listed without a Scan: the company registry (gsi2
``COMPANIES#<shard>``, written at sign-up) plus the activity index (gsi3
``ACTIVE#<day>``) of the last ``--days`` days for companies older than the
registry. Prints every violation, then one summary line; exits 1 on any.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from infra.local import LOCAL_ENV, ROOT, stack_file


def audit_line(days: int) -> tuple[str, list[str]]:
    """Run the checker over every reachable company: (summary line, violations)."""
    from chalicelib.services import integrity

    ids = integrity.registered_companies() + integrity.active_companies(days)
    audit = integrity.audit(ids)
    line = (
        f"check-data: companies={audit.companies} items={audit.items} "
        f"violations={len(audit.violations)}"
    )
    return line, audit.violations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000, help="the port `make run` serves on")
    parser.add_argument("--endpoint", help="a DynamoDB endpoint (default: that run's moto)")
    parser.add_argument("--table", help="table name (default: the local run's)")
    parser.add_argument(
        "--days", type=int, default=190, help="activity-index days to walk back (default 190)"
    )
    args = parser.parse_args(argv)
    endpoint, table = args.endpoint, args.table
    if not endpoint:
        stack = stack_file(args.port)
        if not stack.exists():
            print(f"check-data: no `make run` found on port {args.port} ({stack} missing)")
            return 2
        found = json.loads(stack.read_text())
        endpoint, table = found["endpoint"], table or found["table"]
    os.environ.update(LOCAL_ENV)
    os.environ["TABLE_NAME"] = table or LOCAL_ENV["TABLE_NAME"]
    os.environ["AWS_ENDPOINT_URL"] = os.environ["DYNAMODB_HOST"] = endpoint
    sys.path.insert(0, str(ROOT))
    line, violations = audit_line(args.days)
    for violation in violations:
        print(violation)
    print(line)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
