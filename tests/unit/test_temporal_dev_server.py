"""The dev server the tests and benches start reads its shard's transfer queue as a cluster does.

A dev server has one history shard, read at most 20 times a second by default: a bench
that signals and completes more than ~10 workflows a second is paced by that limit after
a few seconds (every signal's workflow task 25-50 ms late, hand-written or Tideflow's;
``bench/RESULTS.md``, issue 14, h14). Only timing shows the limit at work, so this checks
the command that lifts it.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.temporal import dev_server_command


def _dynamic_config(command: list[str]) -> dict[str, str]:
    values = [command[i + 1] for i, arg in enumerate(command) if arg == "--dynamic-config-value"]
    return dict(value.split("=", 1) for value in values)


def test_the_transfer_queue_reads_are_not_limited_to_a_shards_default() -> None:
    command = dev_server_command(Path("/bin/temporal"), 7233, 7234, 7235)
    config = _dynamic_config(command)
    assert int(config["history.transferProcessorMaxPollRPS"]) >= 1000  # the default is 20


def test_the_server_listens_where_it_is_told() -> None:
    command = dev_server_command(Path("/bin/temporal"), 7233, 7234, 7235)
    assert command[:4] == ["/bin/temporal", "server", "start-dev", "--headless"]
    for flag, port in (("--port", "7233"), ("--http-port", "7234"), ("--metrics-port", "7235")):
        assert command[command.index(flag) + 1] == port
    assert command[command.index("--ip") + 1] == "127.0.0.1"
