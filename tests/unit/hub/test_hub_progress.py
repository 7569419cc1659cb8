"""The progress display on a terminal: a log line printed between two redraws stays visible."""
import io
import logging

from hub.progress import ProgressDisplay, render
from runtime.metrics import PipelineMetrics


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_line_between_redraws_is_not_overwritten():
    out = _Tty()
    display = ProgressDisplay(PipelineMetrics(1), "p", out=out)
    handler = logging.StreamHandler(out)
    display.attach(handler)
    log = logging.getLogger("test.progress")
    log.addHandler(handler)
    log.propagate = False
    try:
        display.draw()
        drawn = len(render(PipelineMetrics(1), {}, "p"))
        log.warning("binlog: connection lost")
        display.draw()
    finally:
        log.removeHandler(handler)
    text = out.getvalue()
    # the block is erased before the log line, and the redraw after it starts below the line
    # (it must not move the cursor up over it)
    before, after = text.split("binlog: connection lost\n")
    assert before.endswith(f"\x1b[{drawn}F\x1b[J")
    assert "\x1b[" not in after.split("\n")[0]
    assert "\x1bF" not in after


def test_not_a_terminal_prints_one_line_per_draw():
    out = io.StringIO()
    display = ProgressDisplay(PipelineMetrics(1), "p", out=out)
    display.draw()
    display.draw()
    assert len(out.getvalue().splitlines()) == 2
    assert "\x1b" not in out.getvalue()


def test_dead_lettered_records_are_shown():
    metrics = PipelineMetrics(1)
    assert "dead letters" not in "\n".join(render(metrics, {}, "p"))
    metrics.dead_letters = 3
    assert "dead letters 3" in "\n".join(render(metrics, {}, "p"))
