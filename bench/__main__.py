"""``python -m bench [--quick] [--only 1,4] [--no-write] [--update-readme]``

Runs every figure (see bench/README.md), prints the table and writes bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import traceback

from bench.common import PROCS, Section, machine_facts
from bench.report import print_table, update_readme, write_results


def _run_all(quick: bool, only: set[int]) -> list[Section]:
    from bench import api, console, dashboard, guest, start

    sections: dict[int, Section] = {}

    def step(numbers: tuple[int, ...], title: str, fn) -> None:
        if not only & set(numbers):
            return
        print(f"== {title} ...", flush=True)
        load_before = os.getloadavg()[0]
        begin = time.monotonic()
        try:
            for section in fn():
                if section.number in only:
                    sections[section.number] = section
        except Exception as exc:  # noqa: BLE001 - report it, go on with the other figures
            traceback.print_exc()
            for number in numbers:
                if number in only and number not in sections:
                    sections[number] = Section(number, title, error=f"{type(exc).__name__}: "
                                                                   f"{exc}")
        finally:
            PROCS.cleanup()
        elapsed = time.monotonic() - begin
        for number in numbers:
            if number in sections:
                sections[number].seconds += elapsed / len(numbers)
                sections[number].notes.append(
                    f"Load average (1 min) before/after: {load_before:.2f} / "
                    f"{os.getloadavg()[0]:.2f}.")
        print(f"   done in {elapsed:.0f} s", flush=True)

    burst_memory: list[dict] = []

    def figures_1_2():
        s1, extra = console.throughput(quick)
        burst_memory.extend(extra["mem_after_burst"])
        yield s1
        yield console.keeper_memory(quick, burst_memory)

    def figures_3_5():
        s3, s5 = start.run(quick)
        yield s3
        yield s5

    api_memory: dict[str, float] = {}

    def figure_4():
        s4, busy_rss, empty_rss = api.run(quick)
        api_memory.update(busy=busy_rss, empty=empty_rss)
        yield s4

    step((1, 2), "1-2 console throughput, keeper memory", figures_1_2)
    step((4,), "4 API latency", figure_4)
    step((3, 5), "3, 5 start overhead, adoption", figures_3_5)
    if 5 in sections and api_memory:
        sections[5].rows.insert(0, start.control_plane_memory(api_memory["busy"],
                                                              api_memory["empty"]))
    step((6,), "6 dashboard", lambda: [dashboard.run(quick)])
    step((7,), "7 real guest", lambda: [guest.run(quick)])
    return [sections[n] for n in sorted(sections)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run (< 5 min)")
    parser.add_argument("--only", help="comma-separated figure numbers (1-7)")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--update-readme", action="store_true",
                        help="also replace the table in README.md's Benchmarks section")
    args = parser.parse_args(argv)
    only = {int(n) for n in args.only.split(",")} if args.only else set(range(1, 8))
    os.environ.setdefault("GLIDEX_ACCEL", "tcg")

    def on_signal(signum, _frame):
        PROCS.cleanup()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    facts = machine_facts()
    facts["load"] = " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min, at start)"
    begin = time.monotonic()
    try:
        sections = _run_all(args.quick, only)
    finally:
        PROCS.cleanup()
        subprocess.run(["tmux", "-L", "glidex-bench", "kill-server"], capture_output=True)
    total = time.monotonic() - begin
    facts["mode"] = f"{'--quick' if args.quick else 'full'} run, {total:.0f} s"
    print_table(sections, facts)
    if not args.no_write and only == set(range(1, 8)):
        path = write_results(sections, facts)
        print(f"wrote {path}")
        if args.update_readme:
            print(f"updated {update_readme(sections, facts)}")
    return 1 if any(s.error for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
