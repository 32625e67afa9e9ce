"""The one loop behind the scheduler, the webhook sender, audio retention and the shared live calls."""

import threading
import time

from tickets.periodic import Periodic


def rounds_within(periodic: Periodic, seconds: float) -> None:
    periodic.start()
    time.sleep(seconds)
    periodic.stop()


def test_the_first_round_comes_after_one_interval_or_at_once():
    later, at_once = [], []
    rounds_within(Periodic("later", lambda: later.append(time.monotonic()), 10.0), 0.3)
    started = time.monotonic()
    rounds_within(Periodic("now", lambda: at_once.append(time.monotonic()), 10.0, first_round_at_once=True), 0.3)
    assert later == []
    assert len(at_once) == 1 and at_once[0] - started < 0.3


def test_a_failed_round_is_logged_and_the_next_one_still_comes(caplog):
    calls = []
    done = threading.Event()

    def job() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise ConnectionError("database away")
        done.set()

    periodic = Periodic("flaky", job, 0.05)
    periodic.start()
    assert done.wait(5)
    periodic.stop()
    assert calls[:2] == [0, 1]
    assert "flaky: round failed" in caplog.text and "database away" in caplog.text


def test_stop_ends_the_thread_between_rounds():
    periodic = Periodic("stopped", lambda: None, 3600.0)
    periodic.start()
    started = time.monotonic()
    periodic.stop()
    assert time.monotonic() - started < 1.0
    assert not any(thread.name == "stopped" for thread in threading.enumerate())
