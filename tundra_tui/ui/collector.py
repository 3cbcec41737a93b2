"""The garbage collector in `at tui`'s process, so that no collection pauses a key or a tab switch.

Measured with twenty agents streaming on a busy 2-core machine: start-up ran some 200
collections before the first frame, and once its tabs had been shown the process held
about 100k objects, which CPython's full collection walked every few seconds: 70-120 ms
of CPU, 200-450 ms on the clock, each time (the worst tab switches were these pauses).
So `at tui` (and only it: an app run by the tests leaves the collector alone):

- collects nothing until its first frame is up and the other tabs' modules are imported
  (`hold`), since what start-up makes lives as long as the app;
- then collects once and freezes what is left (`settle`): no later collection walks it;
- and from then on runs a full collection a hundred times less often (young collections
  stay as they are: a few ms at most, where larger young generations made 40 ms pauses);
- and runs a middle collection early (`spare`) when one is near and the moment is free:
  right after a typed key's echo is drawn, the next key is furthest away. A middle
  collection takes 5-12 ms with twenty agents streaming; coming at random, about one in
  a hundred keys waited behind one.
"""

from __future__ import annotations

import gc

THRESHOLDS = (700, 10, 1000)
"""Allocations (less deallocations) before a young collection; young collections before a
middle one; middle ones before a full one (CPython's defaults are 700, 10, 10). With twenty
agents streaming, a full collection comes every few minutes instead of every few seconds."""


SPARE_AT = 7
"""Young collections since the last middle one from which `spare` runs the middle one early
(CPython runs it after THRESHOLDS[1] of them)."""


class _State:
    held = False
    settled = False


def hold() -> None:
    """No collection until `settle`: called by `at tui` before it imports the app."""
    if gc.isenabled():
        gc.disable()
        _State.held = True


def settle() -> None:
    """Collect start-up's garbage, freeze the rest, and collect at THRESHOLDS from now on;
    nothing unless `hold` was called."""
    if not _State.held:
        return
    _State.held = False
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    gc.enable()
    _State.settled = True


def spare() -> bool:
    """A free moment: run the middle collection now if it is near (see the module). Only in
    `at tui` after `settle`; True if it ran."""
    if not _State.settled or not gc.isenabled() or gc.get_count()[1] < SPARE_AT:
        return False
    gc.collect(1)
    return True
