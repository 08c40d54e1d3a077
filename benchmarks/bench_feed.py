"""Feed intake benchmark: events validated per second from a file replay as fast as possible.

The later mirror must apply 50,000 events/s (issue 11); the intake (parse + schema + every
check: duplicates, order, ...) runs before it, so it must be well above that. The feed is the
downtown garage's simulated week from `parktwin emit` (gate, plate, spot, heartbeat, counter
and payment events in their real mix), written to a temporary JSONL file and replayed:

  (a) schema only: ``EVENT.validate_json`` per line (pydantic-core, discriminated union);
  (b) the full intake: ``Intake().events(FileReplay(path))`` (file reading, the replay clock
      that stamps each line's receive time, every check: future and clock-skew too, counts);
  (c) (b) without the replay clock (``FileReplay(path, window=None)``: no receive times, so
      no future or clock-skew checks);
  (d) the intake fed payloads that already carry receive times (no file, no replay clock).

Each figure is the best of --repeat rounds (least disturbed by other load on the machine).
Speed is measured here, never by a timed test.

    python benchmarks/bench_feed.py [--days 7] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from parktwin.adapters.events import EVENT  # noqa: E402
from parktwin.adapters.sources import FileReplay, Intake, Raw  # noqa: E402
from twin import api  # noqa: E402
from twin.live.emit import emit  # noqa: E402

TARGET = 50_000


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=7.5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    scenario = api.load(ROOT / "scenarios" / "downtown_garage.yaml")
    feed = emit(scenario, days=args.days)
    lines = feed.lines
    n = len(lines)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "feed.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

        def schema_only() -> None:
            validate = EVENT.validate_json
            for line in lines:
                validate(line)

        def intake() -> None:
            with Intake() as i:
                for _ in i.events(FileReplay(path)):
                    pass
                assert i.applied == n

        def intake_unstamped() -> None:
            with Intake() as i:
                for _ in i.events(FileReplay(path, window=None)):
                    pass
                assert i.applied == n

        now = datetime(2030, 1, 1, tzinfo=UTC)
        raws = [Raw(line, now, "") for line in lines]

        def intake_received() -> None:
            with Intake() as i:
                for _ in i.events(raws):
                    pass

        rows = [
            ("schema only (validate_json)", best(schema_only, args.repeat)),
            ("intake from file (replay clock, all checks)", best(intake, args.repeat)),
            (
                "intake from file, no replay clock (window=None)",
                best(intake_unstamped, args.repeat),
            ),
            ("intake of payloads with receive times", best(intake_received, args.repeat)),
        ]
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(feed.counts.items()))
    print(f"downtown_garage, {args.days:g} days: {n:,} events ({kinds})")
    print()
    print("| path | events/s | µs/event | vs 50,000/s |")
    print("|---|---|---|---|")
    for name, secs in rows:
        rate = n / secs
        print(f"| {name} | {rate:,.0f} | {1e6 / rate:.2f} | {rate / TARGET:.1f}x |")


if __name__ == "__main__":
    main()
