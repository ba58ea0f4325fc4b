"""The report stream against an in-process gRPC server on a free loopback port."""

import asyncio
import time
import unittest
from typing import Any

import grpc

from flota_worker import proto
from flota_worker.enroll import EnrollmentError, enroll
from flota_worker.grpc_link import Reporter
from flota_worker.log import Logger

pb, pb_grpc = proto.load()


class FakeMaster(pb_grpc.MasterServicer):
    """Accepts every result; refuses the chunks of task `refuse` (as for an attempt it does not hold)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.metadata: dict[str, str] = {}

    async def Connect(self, request_iterator: Any, context: Any) -> Any:  # noqa: N802 - the .proto's name
        self.metadata = dict(context.invocation_metadata())
        async for message in request_iterator:
            acks = []
            for report in message.reports:
                kind = report.WhichOneof("report")
                if kind == "chunk":
                    self.seen.append(("chunk", (report.chunk.task_id, report.chunk.seq, report.chunk.text)))
                    if report.chunk.task_id == "refuse":
                        acks.append(pb.TaskAck(accepted=False, reason="stale_lease", task_id="refuse", attempt=1))
                else:
                    self.seen.append(("result", report.result.task_id))
                    result = report.result
                    acks.append(pb.TaskAck(accepted=True, task_id=result.task_id, attempt=result.attempt, final=True))
            if acks:
                yield pb.MasterAcks(acks=acks)


    async def Enroll(self, request: Any, context: Any) -> Any:  # noqa: N802 - the .proto's name
        token = dict(context.invocation_metadata()).get("authorization", "")
        if token != "Bearer fjt1.w-.good":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "not a join token of this installation")
        return pb.EnrollReply(credential=f"fwt1.{request.worker_id}.x")


class ReporterTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.master = FakeMaster()
        self.server = grpc.aio.server()
        pb_grpc.add_MasterServicer_to_server(self.master, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        self.refused: list[str] = []
        log = Logger("w-1", "silent")
        address = f"127.0.0.1:{port}"
        self.reporter = Reporter(pb, pb_grpc, address, "w-1", "fwt1.w-1.x", log, on_refused=self.refused.append)

    async def asyncTearDown(self) -> None:
        await self.reporter.close()
        await self.server.stop(0)

    def deadline(self) -> int:
        return int(time.time() * 1000) + 10_000

    async def test_sends_chunks_in_order_then_the_result_with_its_credential(self) -> None:
        stream = self.reporter.open_stream("t-1", 1, "lease-1", self.deadline())
        for piece in ("echo", ": ", "hi"):
            stream.write(piece)
        ack = await stream.finish(pb.TaskResult(task_id="t-1", attempt=1, lease="lease-1", text="echo: hi"))
        self.assertTrue(ack.accepted)
        self.assertEqual(
            self.master.seen,
            [
                ("chunk", ("t-1", 0, "echo")),
                ("chunk", ("t-1", 1, ": ")),
                ("chunk", ("t-1", 2, "hi")),
                ("result", "t-1"),
            ],
        )
        self.assertEqual(self.master.metadata["authorization"], "Bearer fwt1.w-1.x")
        self.assertEqual(self.master.metadata["x-flota-worker-id"], "w-1")

    async def test_a_refused_chunk_is_final_for_its_attempt(self) -> None:
        stream = self.reporter.open_stream("refuse", 1, "lease-1", self.deadline())
        stream.write("first")
        for _ in range(100):
            if self.refused:
                break
            await asyncio.sleep(0.01)
        self.assertEqual(self.refused, ["refuse#1"])
        stream.write("more")
        ack = await stream.finish(pb.TaskResult(task_id="refuse", attempt=1, lease="lease-1"))
        self.assertEqual(ack.reason, "stale_lease")
        self.assertEqual(self.master.seen, [("chunk", ("refuse", 0, "first"))])


class EnrollTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.server = grpc.aio.server()
        pb_grpc.add_MasterServicer_to_server(FakeMaster(), self.server)
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        await self.server.start()

    async def asyncTearDown(self) -> None:
        await self.server.stop(0)

    async def test_trades_a_join_token_for_a_credential(self) -> None:
        credential = await enroll(pb, pb_grpc, self.address, "w-7", "fjt1.w-.good", Logger("w-7", "silent"))
        self.assertEqual(credential, "fwt1.w-7.x")

    async def test_stops_at_a_refusal(self) -> None:
        with self.assertRaisesRegex(EnrollmentError, "UNAUTHENTICATED"):
            await enroll(pb, pb_grpc, self.address, "w-7", "fjt1.other", Logger("w-7", "silent"))


if __name__ == "__main__":
    unittest.main()
