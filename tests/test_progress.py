"""What a run says: the time left for the whole run, right after a resume too, and where it
resumes from (progress.RunProgress, on a fake clock: nothing trains here)."""
import pytest

from lth_utils import progress
from lth_utils.progress import RunProgress, clock, logged_speed


@pytest.fixture
def fake_clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    return now


def train(bar, iterations, seconds_each, now):
    for _ in range(iterations):
        now[0] += seconds_each
        bar.update(1)


def test_the_eta_covers_every_planned_group_and_skips_resumed_iterations(fake_clock, capsys):
    # 10 networks planned, 4 finished; left: a group of 2 x 100 iterations, then 4 x 100.
    bar = RunProgress("lenet mnist paper", planned=10, done=4, work=2 * 100 + 4 * 100,
                      enabled=True)
    bar.group("round 3 (Pm 51.3%): 2 networks", k=2, start=0, iterations=100)
    assert bar.eta() is None  # no speed known yet, none logged
    bar.begin(40, "lenet_x2_abcd.state.pt")  # resumed: 40 of the group's iterations done
    assert capsys.readouterr().out.splitlines()[-1] == (
        "resuming from lenet_x2_abcd.state.pt: round 3 (Pm 51.3%): 2 networks, iteration 40 "
        "of 100")
    assert bar.left == 2 * 60 + 400
    train(bar, 21, 0.5, fake_clock)  # 2 networks x 1 iteration each 0.5 s: 4 network-its/s
    assert bar.left == 2 * 39 + 400
    assert bar.eta() == pytest.approx((2 * 39 + 400) / 4)  # not sped up by the resumed 40
    bar.close()


def test_before_measuring_the_logged_speed_is_used(fake_clock):
    events = [{"event": "start"}, {"event": "group", "units": ["a", "b"], "seconds": 50.0}]
    speed = logged_speed(events, iterations=100)  # 2 networks x 100 iterations in 50 s
    assert speed == 4.0 and logged_speed([{"event": "start"}], 100) is None
    bar = RunProgress("x", planned=3, done=0, work=300, enabled=False, speed=speed)
    bar.group("round 0", k=1, start=0, iterations=100)
    train(bar, 5, 1.0, fake_clock)  # 1 network-it/s, but measured for under 10 s
    assert bar.eta() == pytest.approx(295 / 4.0)
    train(bar, 10, 1.0, fake_clock)  # now measured: 14 network-iterations in 14 s
    assert bar.eta() == pytest.approx(285 / 1.0)
    bar.close()


def test_clock():
    assert clock(0) == "0:00:00" and clock(3725.4) == "1:02:05" and clock(90061) == "25:01:01"
