"""First-request latency of a classifier SavedModel, with and without
`toolkit.serving.export.warm_up`.

    python benchmarks/first_request.py --classifier runs/imdb_sentiment

Exports the run's model.keras with this checkout (as `serving.py` does),
then, in fresh processes (XLA's compilations live in a process):
- cold: load the SavedModel, time the first `serve` of one median-length
  review, then the second;
- warmed: load it, run `warm_up(served, batches=(1,))` (every length
  bucket at batch 1, timed), then time the first `serve` of the review.
Each is repeated `--repeats` times; medians are printed with the CPU.

This is a benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile

CHILD = """
import json, sys, time
import tensorflow as tf
from toolkit.serving import export
served = tf.saved_model.load(sys.argv[1])
review = tf.constant([sys.argv[2]])
result = {}
if sys.argv[3] == "warmed":
    result["warm_up_seconds"] = export.warm_up(served, batches=(1,))["seconds"]
for name in ("first_ms", "second_ms"):
    start = time.perf_counter()
    served.serve(review).numpy()
    result[name] = (time.perf_counter() - start) * 1e3
print(json.dumps(result))
"""


def main() -> None:
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from results_file import machine, write
    from serving import classifier_export, median_reviews

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", type=pathlib.Path, required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=pathlib.Path, help="write results")
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    reviews, _ = median_reviews(args.data_dir, count=2)
    review = reviews[0]
    results = {"cold": [], "warmed": []}
    with tempfile.TemporaryDirectory() as folder:
        export_dir = classifier_export(args.classifier, pathlib.Path(folder))
        for _ in range(args.repeats):
            for mode in results:
                output = subprocess.run(
                    [sys.executable, "-c", CHILD, export_dir, review, mode],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                results[mode].append(
                    json.loads(output.strip().splitlines()[-1])
                )
    summary = {}
    for mode, runs in results.items():
        summary[mode] = {
            key: statistics.median(run[key] for run in runs) for key in runs[0]
        }
    cold, warmed = summary["cold"], summary["warmed"]
    print(
        f"Cold: first request {cold['first_ms']:.0f} ms, second "
        f"{cold['second_ms']:.1f} ms\nWarmed (warm_up at batch 1 took "
        f"{warmed['warm_up_seconds']:.1f} s): first request "
        f"{warmed['first_ms']:.1f} ms (medians of {args.repeats} processes)"
    )
    if args.json:
        write(args.json, {"runs": results, "medians": summary})


if __name__ == "__main__":
    main()
