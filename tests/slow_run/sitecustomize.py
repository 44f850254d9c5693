"""Loaded by every Python process of a test run (launcher and Beam worker processes) whose
PYTHONPATH holds this folder: slows de-identification and commits down, and flushes the
ledger after every entry, so that tests/test_collection.py can interrupt a run of a few
dozen instances in the middle. Test instrumentation only; never installed."""

import os
import time

if os.environ.get("DEID_TEST_SLOW"):
    delay = float(os.environ["DEID_TEST_SLOW"])
    import deid.beam.deidentify as deidentify
    import deid.beam.ledger as ledger
    import deid.beam.write as write

    ledger.FLUSH_ENTRIES = 1

    def slowed(process):
        def wrapper(self, element):
            time.sleep(delay)
            yield from process(self, element)
        return wrapper

    deidentify.DeidentifyFn.process = slowed(deidentify.DeidentifyFn.process)
    write.CommitFn.process = slowed(write.CommitFn.process)
