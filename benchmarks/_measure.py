"""One measurement in a fresh process; prints one JSON line.

``python -m benchmarks._measure SIDE OPT BATCH DTYPE N EPOCHS``, with SIDE one
of :data:`benchmarks.sides.SIDES` or ``gemm``. Libraries are imported and the
data is made before the clock starts and before the memory baseline is read,
so ``peak_added_mib`` is what training adds to the peak over the loaded data.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

IMPORTS = {"funnet": "funnet", "torch": "torch", "sklearn": "sklearn.neural_network"}


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv: list[str]) -> None:
    side, opt, batch, dtype, n, epochs = argv
    batch, n, epochs = int(batch), int(n), int(epochs)
    if side in IMPORTS:
        __import__(IMPORTS[side])
    from benchmarks import sides

    if side == "gemm":
        rate = sides.gemm_rate(batch, 784, dtype)
        print(json.dumps({"samples_per_s": rate}))
        return
    X, y = sides.make_data(n, 784, dtype)
    base_peak, base_rss = _peak_bytes(), sides.rss_bytes()
    start = time.perf_counter()
    rss, loss = sides.SIDES[side](X, y, batch, opt, epochs)
    seconds = time.perf_counter() - start
    mib = 2.0**20
    print(
        json.dumps(
            {
                "samples_per_s": n * epochs / seconds,
                "train_s": seconds,
                "peak_added_mib": (_peak_bytes() - base_peak) / mib,
                "rss_added_mib": [(r - base_rss) / mib for r in rss],
                "loss": loss,
                "load_avg_1min": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
