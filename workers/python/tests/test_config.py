import unittest

from flota_worker.config import default_worker_id, load_config
from flota_worker.errors import ConfigError

KIT_ENV = {
    "MQTT_URL": "mqtt://127.0.0.1:18830",
    "MASTER_GRPC": "127.0.0.1:50999",
    "WORKER_ID": "conformance-1",
    "WORKER_TOKEN": "fwt1.conformance-1.abc.def",
    "PROVIDER": "echo",
    "MODELS": "echo",
    "SLOTS": "2",
    "HEARTBEAT_MS": "300",
    "ECHO_DELAY_MS": "40",
    "ECHO_CHUNK_SIZE": "8",
    "SHUTDOWN_GRACE_MS": "5000",
    "LOG_LEVEL": "warn",
}


class LoadConfigTest(unittest.TestCase):
    def test_reads_what_the_conformance_kit_passes(self) -> None:
        config = load_config(KIT_ENV)
        self.assertEqual(config.worker_id, "conformance-1")
        self.assertEqual(config.mqtt_url, "mqtt://127.0.0.1:18830")
        self.assertEqual(config.master_grpc, "127.0.0.1:50999")
        self.assertEqual(config.models, ["echo"])
        self.assertEqual((config.slots, config.heartbeat_ms), (2, 300))
        self.assertEqual((config.echo_delay_ms, config.echo_chunk_size), (40, 8))
        self.assertEqual((config.shutdown_grace_ms, config.log_level), (5000, "warn"))

    def test_defaults_match_the_typescript_worker(self) -> None:
        config = load_config({"WORKER_TOKEN": "t"})
        self.assertEqual(config.mqtt_url, "mqtt://127.0.0.1:1883")
        self.assertEqual(config.mqtt_prefix, "flota/v1")
        self.assertEqual(config.master_grpc, "127.0.0.1:50051")
        self.assertEqual((config.provider, config.models, config.slots), ("echo", ["echo"], 2))
        self.assertEqual((config.heartbeat_ms, config.shutdown_grace_ms, config.echo_chunk_size), (1000, 10_000, 16))
        self.assertRegex(config.worker_id, r"^cpu-")

    def test_blank_values_count_as_unset(self) -> None:
        self.assertEqual(load_config({"WORKER_TOKEN": "t", "SLOTS": "  "}).slots, 2)

    def test_reports_every_problem_at_once_naming_each_variable(self) -> None:
        env = {**KIT_ENV, "SLOTS": "0", "HEARTBEAT_MS": "fast", "MQTT_URL": "http://x", "WORKER_ID": "-bad"}
        with self.assertRaises(ConfigError) as caught:
            load_config(env)
        message = str(caught.exception)
        for name in ("SLOTS:", "HEARTBEAT_MS:", "MQTT_URL:", "WORKER_ID:"):
            self.assertIn(name, message)

    def test_requires_a_credential_and_never_shows_a_secret(self) -> None:
        env = {k: v for k, v in KIT_ENV.items() if k != "WORKER_TOKEN"}
        with self.assertRaisesRegex(ConfigError, "WORKER_TOKEN or WORKER_JOIN_TOKEN: required"):
            load_config(env)
        with self.assertRaises(ConfigError) as caught:
            load_config({**KIT_ENV, "WORKER_TOKEN": "x" * 600})
        self.assertNotIn("xxxx", str(caught.exception))

    def test_a_join_token_stands_in_for_the_credential(self) -> None:
        env = {k: v for k, v in KIT_ENV.items() if k != "WORKER_TOKEN"} | {"WORKER_JOIN_TOKEN": "fjt1.cpu-.x.y"}
        config = load_config(env)
        self.assertEqual((config.worker_token, config.join_token), (None, "fjt1.cpu-.x.y"))

    def test_openai_needs_a_base_url_and_models(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            load_config({"WORKER_TOKEN": "t", "PROVIDER": "openai"})
        self.assertIn("OPENAI_BASE_URL: required", str(caught.exception))
        self.assertIn("MODELS: required", str(caught.exception))
        config = load_config(
            {"WORKER_TOKEN": "t", "PROVIDER": "openai", "OPENAI_BASE_URL": "http://h:11434/v1", "MODELS": "a, b"}
        )
        self.assertEqual(config.models, ["a", "b"])

    def test_names_providers_this_worker_does_not_run(self) -> None:
        with self.assertRaisesRegex(ConfigError, "PROVIDER: llama"):
            load_config({"WORKER_TOKEN": "t", "PROVIDER": "llama"})

    def test_labels(self) -> None:
        config = load_config({"WORKER_TOKEN": "t", "LABELS": "zone=eu, gpu=a10"})
        self.assertEqual(config.labels, {"zone": "eu", "gpu": "a10"})
        with self.assertRaisesRegex(ConfigError, "LABELS: expected k=v"):
            load_config({"WORKER_TOKEN": "t", "LABELS": "zone"})

    def test_default_worker_id_fits_a_topic_level(self) -> None:
        self.assertEqual(default_worker_id("cpu", "my host!", 42), "cpu-my-host--42")
        self.assertEqual(default_worker_id("gpu", "...", 7), "gpu-host-7")


if __name__ == "__main__":
    unittest.main()
