from runtime.watermark import IDLE, SplitWatermarks, WatermarkStrategy, merge_min


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_min_over_splits_with_out_of_orderness():
    clock = Clock()
    wm = SplitWatermarks(WatermarkStrategy(out_of_orderness_ms=100, idle_timeout_s=10), clock)
    wm.on_batch("a", 1000)
    wm.on_batch("b", 5000)
    assert wm.advance() == 1000 - 100 - 1
    wm.on_batch("a", 9000)
    assert wm.advance() == 5000 - 101


def test_assigned_split_without_events_holds_back_until_idle():
    clock = Clock()
    wm = SplitWatermarks(WatermarkStrategy(0, idle_timeout_s=5), clock)
    wm.add_split("new")
    wm.on_batch("busy", 1000)
    assert wm.advance() is None
    clock.t = 6
    wm.on_batch("busy", 2000)
    assert wm.advance() == 1999


def test_idle_split_does_not_hold_back():
    clock = Clock()
    wm = SplitWatermarks(WatermarkStrategy(0, idle_timeout_s=5), clock)
    wm.on_batch("slow", 100)
    wm.on_batch("busy", 1000)
    assert wm.advance() == 99
    clock.t = 6
    wm.on_batch("busy", 2000)
    assert wm.advance() == 1999


def test_reader_without_splits_becomes_idle_once_then_active_again():
    clock = Clock()
    wm = SplitWatermarks(WatermarkStrategy(0, idle_timeout_s=5), clock)
    assert wm.advance() is None  # just started: a split may come any moment
    clock.t = 5
    assert wm.advance() is IDLE
    assert wm.advance() is None  # said once
    wm.add_split("late")
    wm.on_batch("late", 700)
    assert wm.advance() == 699


def test_never_goes_back_and_finished_split_is_dropped():
    clock = Clock()
    wm = SplitWatermarks(WatermarkStrategy(0, 0), clock)
    wm.on_batch("a", 500)
    assert wm.advance() == 499
    wm.on_batch("b", 100)
    assert wm.advance() is None  # min fell to 99: not emitted, watermarks don't regress
    wm.split_finished("b")
    wm.on_batch("a", 800)
    assert wm.advance() == 799


def test_merge_min():
    assert merge_min([5, 3, 9]) == 3
    assert merge_min([5, None]) is None
    assert merge_min([]) is None
    assert merge_min([5, IDLE, 7]) == 5
    assert merge_min([IDLE, IDLE]) is IDLE
    assert merge_min([None, IDLE]) is None
