"""Figures 1 and 2: console pipeline throughput through the real keeper, and keeper memory.

Throughput: a stand-in VMM (``standin_vmm.py emit``) writes N bytes of console text to its PTY
as fast as the PTY takes them. Side by side, alternating, in the same run:

- **raw PTY**: a bare reader of the PTY (``pty_reader.py``), the limit for one reader;
- **keeper, k clients**: ``python -S -m glidex_core.console.keeper SPEC`` started the way the
  supervisor starts it, with k = 0, 1, 4, 16 clients attached (``sink.py``) before the first byte.

Rate = N / (last byte in the log and at every client - stand-in's first write), both on
CLOCK_MONOTONIC. Every byte is accounted for: the log (with its rotated parts) and each client
must hold exactly N bytes with the CRC-32 of what was written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from dataclasses import asdict, fields
from pathlib import Path

import psutil

from bench.common import (
    PROCS,
    REPO_DIR,
    Row,
    Section,
    fresh_dir,
    median,
    memory,
    mib,
    standin_argv,
    start_ticks,
    wait_for,
)
from bench.standin_vmm import pattern_stream
from glidex_core.console.keeper import KeeperSpec
from glidex_core.console.launcher import keeper_env  # the supervisor's, exactly

CLIENT_COUNTS = (0, 1, 4, 16)
KEEPER_FLAGS = ("-S",)  # how the supervisor starts a keeper (glidex_core/supervisor.py)


def emit_argv(folder: Path, nbytes: int, rate: float = 0) -> list[str]:
    return standin_argv("emit", "--bytes", str(nbytes), "--rate", str(rate), "--wait-signal",
                        "--ready-file", str(folder / "standin.ready"),
                        "--report", str(folder / "standin.json"))


def fire(folder: Path, pid: int) -> dict:
    """Release the stand-in (it is attached-to and waiting) and return its report when done."""
    ready = folder / "standin.ready"
    wait_for(ready.exists, 10, "the stand-in to be ready")
    os.kill(pid, signal.SIGUSR1)
    report = folder / "standin.json"
    wait_for(report.exists, 120, "the stand-in to finish writing", interval=0.01)
    return json.loads(report.read_text())


class KeeperProcess:
    """A real console keeper on a stand-in VMM, started as the supervisor starts one."""

    def __init__(self, folder: Path, argv: list[str], *,
                 python_flags: tuple[str, ...] = KEEPER_FLAGS, **extra) -> None:
        known = {f.name for f in fields(KeeperSpec)}
        values = dict(
            vm_id=folder.name, argv=argv,
            log_path=str(folder / "console.log"), socket_path=str(folder / "console.sock"),
            pid_file=str(folder / "keeper.pid"), exit_file=str(folder / "exit.json"),
            vmm_stderr_path=str(folder / "vmm.log"), cwd=str(folder), **extra,
        )
        self.spec = KeeperSpec(**{k: v for k, v in values.items() if k in known})
        self.folder = folder
        with open(folder / "keeper.log", "ab") as err:
            self.process = PROCS.popen(
                [sys.executable, *python_flags, "-m", "glidex_core.console.keeper",
                 json.dumps(asdict(self.spec))],
                stdout=subprocess.PIPE, stderr=err, env=keeper_env(),
            )
        line = self.process.stdout.readline().decode().strip()
        if not line.startswith("ready"):
            raise RuntimeError(f"keeper did not start: {line!r}")
        self.vmm_pid = int(line.split()[1])
        PROCS.adopt(self.vmm_pid)

    @property
    def pid(self) -> int:
        return self.process.pid

    def clients(self) -> int:
        try:
            return json.loads(Path(self.spec.pid_file).read_text()).get("clients", 0)
        except (OSError, ValueError):
            return -1

    def log_files(self) -> list[Path]:
        """The console log and its rotated parts, oldest first."""
        base = Path(self.spec.log_path)
        rotated = sorted(base.parent.glob(base.name + ".*"),
                         key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else -1,
                         reverse=True)
        return [p for p in rotated if p.suffix[1:].isdigit()] + [base]

    def log_size(self) -> int:
        return sum(p.stat().st_size for p in self.log_files() if p.exists())

    def log_crc(self) -> int:
        crc = 0
        for path in self.log_files():
            with open(path, "rb") as f:
                while chunk := f.read(1 << 22):
                    crc = zlib.crc32(chunk, crc)
        return crc

    def stop(self) -> None:
        PROCS.end(self.vmm_pid, start_ticks(self.vmm_pid))
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def run_raw(work: Path, nbytes: int, expected_crc: int, index: int) -> float:
    folder = work / f"raw-{index}"
    folder.mkdir()
    spec = {"argv": emit_argv(folder, nbytes), "bytes": nbytes}
    reader = PROCS.popen([sys.executable, "-m", "bench.pty_reader", json.dumps(spec)],
                         stdout=subprocess.PIPE, cwd=REPO_DIR)
    line = reader.stdout.readline().decode().split()
    standin = int(line[1])
    PROCS.adopt(standin)
    report = fire(folder, standin)
    result = json.loads(reader.stdout.readline())
    PROCS.end(standin, start_ticks(standin))
    reader.wait(10)
    if result["bytes"] != nbytes or result["crc"] != expected_crc:
        raise AssertionError(f"raw PTY reader got {result['bytes']} of {nbytes} bytes "
                             f"(crc ok: {result['crc'] == expected_crc})")
    return nbytes / (result["end"] - report["start"])


def run_keeper(work: Path, nbytes: int, expected_crc: int, clients: int, index: int) -> dict:
    """One run through the keeper: bytes/s, keeper memory and CPU, client CPU."""
    folder = work / f"k{clients}-{index}"
    folder.mkdir()
    keeper = KeeperProcess(folder, emit_argv(folder, nbytes))
    sink = None
    sink_cpu = 0.0
    try:
        if clients:
            sink = PROCS.popen([sys.executable, "-m", "bench.sink", keeper.spec.socket_path,
                                str(clients), str(nbytes)], stdout=subprocess.PIPE, cwd=REPO_DIR)
            assert sink.stdout.readline().strip() == b"attached"
            wait_for(lambda: keeper.clients() == clients, 10, "the keeper to accept the clients")
        cpu_before = sum(psutil.Process(keeper.pid).cpu_times()[:2])
        report = fire(folder, keeper.vmm_pid)
        end = None
        lost = ""
        if sink is not None:
            result = json.loads(sink.stdout.readline())
            sink.wait(10)
            sink_cpu = result["cpu"]
            bad = [n for n, c in zip(result["counts"], result["crcs"], strict=True)
                   if n != nbytes or c != expected_crc]
            if bad:  # dropped by the keeper (fell 8 MiB behind): rate = the keeper's intake
                lost = (f"{len(bad)} of {clients} clients dropped after "
                        f"{mib(min(bad)):.0f}-{mib(max(bad)):.0f} MiB")
            else:
                end = result["end"]
        if end is None or keeper.log_size() != nbytes:
            wait_for(lambda: keeper.log_size() >= nbytes, 60, "the log to be complete",
                     interval=0.002)
            end = time.monotonic()
        process = psutil.Process(keeper.pid)
        keeper_cpu = sum(process.cpu_times()[:2]) - cpu_before
        mem = memory(keeper.pid)
        if keeper.log_size() != nbytes or keeper.log_crc() != expected_crc:
            raise AssertionError(f"log holds {keeper.log_size()} of {nbytes} bytes or differs")
        return {"rate": nbytes / (end - report["start"]), "mem": mem, "lost": lost,
                "keeper_cpu": keeper_cpu, "sink_cpu": sink_cpu}
    finally:
        keeper.stop()
        for path in keeper.log_files():  # up to 64 MiB per run: do not keep them
            path.unlink(missing_ok=True)


def throughput(quick: bool) -> tuple[Section, dict]:
    section = Section(1, "Console pipeline throughput: stand-in VMM -> PTY -> keeper -> log + "
                         "clients")
    work = fresh_dir("console")
    nbytes = (24 if quick else 64) << 20
    repeats = 3 if quick else 7
    expected_crc = zlib.crc32(pattern_stream(nbytes))
    raw: list[float] = []
    runs: dict[int, list[dict]] = {k: [] for k in CLIENT_COUNTS}
    for i in range(repeats):  # alternating rounds: raw, k0, k1, k4, k16, raw, ...
        raw.append(run_raw(work, nbytes, expected_crc, i))
        for k in CLIENT_COUNTS:
            runs[k].append(run_keeper(work, nbytes, expected_crc, k, i))
    raw_rate = median(raw)
    targets = {1: 0.5, 16: 0.25}
    cpu_notes = []
    lost_notes = []

    def row(key: str, name: str, k: int, these: list[dict]) -> Row:
        rates = [r["rate"] for r in these]
        ratio = median(r / b for r, b in zip(rates, raw, strict=True))
        target = targets.get(k)
        lost = [r["lost"] for r in these if r["lost"]]
        if lost:
            name += f" (BYTES LOST in {len(lost)}/{len(these)} runs)"
            lost_notes.append(f"{key}: " + "; ".join(lost))
        return Row(key, name, mib(median(rates)), "MiB/s", mib(raw_rate), "raw PTY reader",
                   target=f">= {target:.0%} of raw, every byte" if target else "",
                   met=(ratio >= target and not lost) if target else None, fmt="{:.1f}",
                   paired_ratio=ratio)

    for k in CLIENT_COUNTS:
        section.rows.append(row(f"1.{k}", f"keeper -> log + {k} client{'' if k == 1 else 's'}",
                                k, runs[k]))
        keeper_cpu = median(r["keeper_cpu"] for r in runs[k])
        sink_cpu = median(r["sink_cpu"] for r in runs[k])
        cpu_notes.append(f"{k} clients: keeper {keeper_cpu * 1e6 / (nbytes >> 10):.1f} µs CPU "
                         f"per KiB, clients {sink_cpu * 1e6 / (nbytes >> 10):.1f}")
    section.notes.append(
        f"{repeats} alternating rounds of {mib(nbytes):.0f} MiB per run; value = median rate, "
        "ratio = median of the per-round ratios to the raw PTY run of the same round. Raw PTY "
        "runs: " + ", ".join(f"{mib(r):.0f}" for r in raw) + " MiB/s. Keeper runs (1 client): "
        + ", ".join(f"{mib(r['rate']):.0f}" for r in runs[1]) + " MiB/s.")
    section.notes.append(
        "Every run: the log (with rotated parts) held exactly the bytes written (count and "
        "CRC-32), and so did every client, except: " + ("; ".join(lost_notes) if lost_notes
                                                         else "none (no client was dropped)")
        + ". A dropped client's run is timed to the log (the keeper's intake).")
    section.notes.append("CPU: " + "; ".join(cpu_notes) + ".")
    last = CLIENT_COUNTS[-1]
    return section, {"mem_after_burst": [r["mem"] for r in runs[last]]}


def keeper_memory(quick: bool, after_burst: list[dict]) -> Section:
    """Figure 2: memory of running keepers (idle), started as the supervisor starts them
    (``python -S``), side by side with bare Python interpreters (the floor for any Python
    process) and, for the notes, keepers started without ``-S`` (as before fix D)."""
    section = Section(2, "Console keeper memory per running VM (psutil memory_full_info)")
    work = fresh_dir("keeper-memory")
    count = 10
    keepers: list[KeeperProcess] = []
    with_site: list[KeeperProcess] = []
    bare = []
    try:
        for i in range(count):
            keepers.append(KeeperProcess(_folder(work, f"k{i}"), standin_argv("echo")))
            with_site.append(KeeperProcess(_folder(work, f"s{i}"), standin_argv("echo"),
                                           python_flags=()))
            bare.append(PROCS.popen([sys.executable, "-c", "import time; time.sleep(3600)"],
                                    env=keeper_env()))
        time.sleep(1.0)
        mem = [memory(k.pid) for k in keepers]
        mem_site = [memory(k.pid) for k in with_site]
        mem_bare = [memory(p.pid) for p in bare]
    finally:
        for k in keepers + with_site:
            k.stop()
        for p in bare:
            PROCS.end(p.pid, start_ticks(p.pid), group=True)
    pss, rss = median(m["pss"] for m in mem), median(m["rss"] for m in mem)
    bare_pss, bare_rss = median(m["pss"] for m in mem_bare), median(m["rss"] for m in mem_bare)
    section.rows.append(Row("2.1", f"keeper PSS ({count} running, idle)", pss, "MiB", bare_pss,
                            "bare python3 process", target="<= 10 MiB", met=pss <= 10,
                            fmt="{:.1f}"))
    section.rows.append(Row("2.2", "keeper RSS", rss, "MiB", bare_rss, "bare python3 process",
                            met=None, fmt="{:.1f}"))
    if after_burst:
        burst_pss = max(m["pss"] for m in after_burst)
        section.rows.append(Row("2.4", "keeper PSS right after a 16-client burst (max)",
                                burst_pss, "MiB", pss, "idle keeper", target="<= 10 MiB",
                                met=burst_pss <= 10, fmt="{:.1f}"))
    section.notes.append(
        f"Keepers are started as the supervisor starts them (python -S). Started without -S "
        f"(as before fix D): PSS {median(m['pss'] for m in mem_site):.1f} MiB, RSS "
        f"{median(m['rss'] for m in mem_site):.1f} MiB. USS: keeper "
        f"{median(m['uss'] for m in mem):.1f}, without -S "
        f"{median(m['uss'] for m in mem_site):.1f}, bare "
        f"{median(m['uss'] for m in mem_bare):.1f} MiB. {count} of each ran at once (PSS "
        "splits shared pages among them). Firecracker's own figure for comparison: <= 5 MiB "
        "per VMM (not measured here: no Firecracker binary).")
    return section


def _folder(work: Path, name: str) -> Path:
    folder = work / name
    folder.mkdir()
    return folder
