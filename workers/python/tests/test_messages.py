import json
import unittest

from flota_worker.errors import ValidationError
from flota_worker.log import redact
from flota_worker.messages import (
    Cancel,
    Configure,
    Drain,
    Shutdown,
    compact,
    decode_json,
    parse_assignment,
    parse_control,
)

ASSIGNMENT = {
    "taskId": "any.echo.38357c905cb740fd9f9ded2f0ef1d511",
    "attempt": 1,
    "lease": "WeJ8DzcpwesUwwiG.c9d64d52-4658-44d9-a6e6-3ca992a209db",
    "model": "echo",
    "prompt": "hi",
    "params": {"temperature": 0.2},
    "deadline": 1795315692812,
    "queuedAt": 1795315572812,
}


class AssignmentTest(unittest.TestCase):
    def test_parses_the_documented_example(self) -> None:
        a = parse_assignment(decode_json(compact(ASSIGNMENT), 1 << 20))
        self.assertEqual((a.task_id, a.attempt, a.model, a.prompt), (ASSIGNMENT["taskId"], 1, "echo", "hi"))
        self.assertEqual(a.params.temperature, 0.2)
        self.assertEqual(a.key, f"{ASSIGNMENT['taskId']}#1")
        self.assertIsNone(a.continue_from)

    def test_params_default_to_empty_and_unknown_top_level_fields_are_ignored(self) -> None:
        a = parse_assignment({k: v for k, v in ASSIGNMENT.items() if k != "params"} | {"future": 1})
        self.assertIsNone(a.params.max_tokens)

    def test_refuses_what_the_conformance_kit_sends_as_malformed(self) -> None:
        bad = [
            [],
            {},
            {"taskId": "any.echo.0", "attempt": "one", "lease": "x", "model": "echo", "prompt": "hi"},
            {"taskId": "", "attempt": 0, "lease": "", "model": "echo", "prompt": "hi", "deadline": "soon"},
            ASSIGNMENT | {"attempt": True},
            ASSIGNMENT | {"attempt": 0},
            ASSIGNMENT | {"lease": "x" * 129},
            ASSIGNMENT | {"params": {"temperature": 3}},
            ASSIGNMENT | {"params": {"top_p": 1}},
            ASSIGNMENT | {"messages": [{"role": "robot", "content": "x"}]},
            ASSIGNMENT | {"continueFrom": ""},
            ASSIGNMENT | {"model": "a\u0000b"},
        ]
        for value in bad:
            with self.subTest(value=value), self.assertRaises(ValidationError):
                parse_assignment(value)

    def test_checks_size_before_parsing(self) -> None:
        with self.assertRaisesRegex(ValidationError, "empty payload"):
            decode_json(b"", 10)
        with self.assertRaisesRegex(ValidationError, "over the bound"):
            decode_json(b"{}" * 10, 10)
        with self.assertRaisesRegex(ValidationError, "not JSON"):
            decode_json(b"not json", 100)


class ControlTest(unittest.TestCase):
    def test_parses_all_five(self) -> None:
        self.assertEqual(parse_control({"type": "cancel", "taskId": "t", "attempt": 2}), Cancel("t", 2))
        self.assertEqual(parse_control({"type": "cancel", "taskId": "t"}), Cancel("t", None))
        self.assertEqual(parse_control({"type": "drain", "id": "c1"}), Drain("c1"))
        self.assertEqual(parse_control({"type": "resume"}).type, "resume")
        self.assertEqual(parse_control({"type": "shutdown", "restart": True}), Shutdown(None, True))
        configured = parse_control({"type": "config", "id": "c2", "config": {"slots": 3, "models": ["echo"]}})
        self.assertIsInstance(configured, Configure)

    def test_refuses_malformed_controls(self) -> None:
        bad = [
            {"type": "explode"},
            {"type": "cancel"},
            {"type": "drain", "id": ""},
            {"type": "config", "config": {"slots": 2}},
            {"type": "config", "id": "c", "config": {}},
            {"type": "config", "id": "c", "config": {"slots": 0}},
            {"type": "config", "id": "c", "config": {"labels": {"__proto__": "x"}}},
            "not an object",
        ]
        for value in bad:
            with self.subTest(value=value), self.assertRaises(ValidationError):
                parse_control(value)


class RedactTest(unittest.TestCase):
    def test_redacts_secrets_at_any_depth(self) -> None:
        line = redact({"apiKey": "sk", "nested": [{"lease": "l", "ok": 1}], "sessionId": "s_12345678"})
        self.assertEqual(line["apiKey"], "[redacted]")
        self.assertEqual(line["nested"], [{"lease": "[redacted]", "ok": 1}])
        self.assertRegex(line["sessionId"], r"^#[0-9a-f]{10}$")
        self.assertEqual(redact({"url": "mqtt://u:pw@h:1"})["url"], "mqtt://u:***@h:1")

    def test_compact_json(self) -> None:
        value = {"a": [1, "é"]}
        self.assertEqual(compact(value), json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


if __name__ == "__main__":
    unittest.main()
