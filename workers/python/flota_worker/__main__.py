"""`python3 -m flota_worker`: configuration from the environment, then the worker until it stops."""

from __future__ import annotations

import asyncio
import sys

from .agent import Agent
from .config import load_config
from .enroll import EnrollmentError
from .errors import ConfigError
from .log import Logger
from .proto import ProtoUnavailable


def main() -> int:
    try:
        config = load_config()
    except ConfigError as error:
        print(f"flota worker: {error}", file=sys.stderr)
        return 1
    log = Logger(source=config.worker_id, level=config.log_level)
    try:
        return asyncio.run(Agent(config, log).run())
    except (ProtoUnavailable, EnrollmentError) as error:
        print(f"flota worker: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
