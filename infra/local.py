"""`make run`: moto server + resources from infra/ + the Chalice app, one process.

Everything lives in memory for as long as this process runs: stop it and the
data is gone. The local outbox (/dev/outbox) shows what SES "sent".
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL_ENV = {
    "STAGE": "local",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "TABLE_NAME": "checkos-local",
    "BUCKET_NAME": "checkos-local-files",
    "MAIL_SENDER": "no-reply@checkos.example",
    "MAIL_CONFIGURATION_SET": "checkos-local-mail",
    # Created in the moto server from infra/resources.yaml's AppSecret, as deployed.
    "SIGNING_SECRET_ARN": "checkos-local-signing-keys",
    "OUTBOX_ENABLED": "1",
    "SECURE_COOKIES": "0",
}


def stack_file(port: int) -> Path:
    """Where a running `make run` on ``port`` leaves its moto endpoint (`make check-data`)."""
    import tempfile

    return Path(tempfile.gettempdir()) / f"checkos-local-{port}.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--demo", action="store_true", help="seed a demo company and orders")
    args = parser.parse_args(argv)

    import logging

    from infra import moto_patches
    from infra.moto_server import SerialMotoServer

    moto_patches.apply()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log
    moto = SerialMotoServer()
    moto.start()
    endpoint = moto.endpoint
    if moto.realism.enabled:  # DDB_REALISM=1: DynamoDB as it behaves under load
        print(f"DynamoDB realism: {moto.realism.describe()}", flush=True)
    os.environ.update(LOCAL_ENV)
    os.environ.setdefault("BASE_URL", f"http://{args.host}:{args.port}")
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ["DYNAMODB_HOST"] = endpoint

    import boto3

    from infra.provision import provision

    provision(
        boto3.session.Session(),
        table_name=LOCAL_ENV["TABLE_NAME"],
        bucket_name=LOCAL_ENV["BUCKET_NAME"],
        sender=LOCAL_ENV["MAIL_SENDER"],
        configuration_set=LOCAL_ENV["MAIL_CONFIGURATION_SET"],
        signing_secret=LOCAL_ENV["SIGNING_SECRET_ARN"],
    )
    sys.path.insert(0, str(ROOT))
    from chalice.config import Config
    from chalice.local import create_local_server

    from app import app

    if args.demo:
        from infra.demo import seed_demo

        print(seed_demo(), flush=True)
    server = create_local_server(app, Config.create(chalice_stage="dev"), args.host, args.port)
    # moto listens on a random port: tell `make check-data` where this run's table is.
    stack = stack_file(args.port)
    stack.write_text(f'{{"endpoint": "{endpoint}", "table": "{LOCAL_ENV["TABLE_NAME"]}"}}\n')
    print(f"CheckOS is running at http://{args.host}:{args.port}  (Ctrl+C stops it;", flush=True)
    print("data lives in memory and is gone when it stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stack.unlink(missing_ok=True)
        moto.stop()


if __name__ == "__main__":
    main()
