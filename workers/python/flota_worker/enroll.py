"""
Trades a join token (WORKER_JOIN_TOKEN) for this worker's own credential
before it connects anywhere (docs/PROTOCOL.md § gRPC › Enroll): 10 s per
call; UNAVAILABLE, DEADLINE_EXCEEDED and ALREADY_EXISTS (a replaced replica
whose predecessor is not offline yet) are tried again after 250 ms, 500 ms,
1 s, 2 s, then every 5 s, for up to 120 s; any other status stops the worker.
"""

from __future__ import annotations

import asyncio
import time
from types import ModuleType

import grpc

from .errors import FlotaError
from .grpc_link import CHANNEL_OPTIONS
from .log import Logger

ENROLL_WAIT_S = 120.0
CALL_TIMEOUT_S = 10.0
TRANSIENT = frozenset((grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ALREADY_EXISTS))


class EnrollmentError(FlotaError):
    code = "enrollment_refused"


def retry_delay_s(attempt: int) -> float:
    return min(5.0, 0.25 * 2**attempt)


async def enroll(
    pb: ModuleType,
    pb_grpc: ModuleType,
    address: str,
    worker_id: str,
    join_token: str,
    log: Logger,
    credentials: grpc.ChannelCredentials | None = None,
    wait_s: float = ENROLL_WAIT_S,
) -> str:
    log = log.child(component="enroll")
    stop_at = time.monotonic() + wait_s
    attempt = 0
    while True:
        # A channel per call, so a new one after a timeout never gets a stuck connection back.
        channel = (
            grpc.aio.secure_channel(address, credentials, options=CHANNEL_OPTIONS)
            if credentials is not None
            else grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        )
        try:
            reply = await pb_grpc.MasterStub(channel).Enroll(
                pb.EnrollRequest(worker_id=worker_id),
                metadata=(("authorization", f"Bearer {join_token}"),),
                timeout=CALL_TIMEOUT_S,
            )
            if not 1 <= len(reply.credential) <= 512:
                raise EnrollmentError("the master's Enroll reply carries no valid credential")
            log.info("enrolled: the master issued this worker a credential", address=address)
            return str(reply.credential)
        except grpc.aio.AioRpcError as error:
            why = f"{error.code().name}: {error.details()}"
            if error.code() not in TRANSIENT:
                raise EnrollmentError(
                    f"the master at {address} refused to enroll worker {worker_id} ({why})"
                ) from error
            delay = retry_delay_s(attempt)
            if time.monotonic() + delay >= stop_at:
                raise EnrollmentError(
                    f"could not enroll worker {worker_id} with the master at {address} in time ({why})"
                ) from error
            (log.warn if attempt == 0 else log.debug)("enrollment failed; trying again", reason=why, delay=delay)
            attempt += 1
            await asyncio.sleep(delay)
        finally:
            await channel.close()
