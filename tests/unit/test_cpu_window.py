"""Where the pipeline benchmark starts counting the naive agent's CPU (``_cpu_window_start``)."""

import math

from stream.benchmarks.pipeline import _cpu_window_start


def test_counts_from_the_first_poll_that_saw_output() -> None:
    # Startup's 2.5 s of CPU is before the first output; 1,500 of 10,000 events came by then.
    polls = [(0, 1.0), (0, 2.5), (1_500, 2.8)]
    assert _cpu_window_start(polls, 10_000) == (1_500, 2.8)


def test_falls_back_to_the_last_poll_without_output_when_most_were_out() -> None:
    # Like the CI run that read 0.0 CPU (2,000 events at 4,242/s): the first output poll saw
    # nearly all of them and the rest cost less than a tick. The last empty poll keeps them in.
    polls = [(0, 1.0), (0, 2.5), (1_950, 2.9)]
    assert _cpu_window_start(polls, 2_000) == (0, 2.5)
    polls = [(0, 2.5), (2_000, 2.9)]
    assert _cpu_window_start(polls, 2_000) == (0, 2.5)


def test_exactly_half_out_still_counts_from_the_output_poll() -> None:
    assert _cpu_window_start([(0, 2.5), (1_000, 2.7)], 2_000) == (1_000, 2.7)


def test_no_empty_poll_to_fall_back_on_is_not_a_number() -> None:
    done, cpu = _cpu_window_start([(1_950, 2.9)], 2_000)
    assert done == 0
    assert math.isnan(cpu)
