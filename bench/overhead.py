"""What does SEKS cost on top of bare mitmproxy?

One run measures small HTTPS requests (a ~200-byte JSON answer to ``GET /v1/models``):

  direct  curl -> local HTTPS upstream
  bare    curl -> mitmdump (plain, quiet) -> upstream
  seks    curl -> ``seks proxy`` (fake token swapped for the real key) -> upstream

and reports requests/s, p50/p99 latency and proxy CPU ms per request, read from the proxy
process's own /proc/<pid>/stat (utime+stime, children excluded) before and after each round.
curl is the load generator (``-Z --parallel-max 16``, keep-alive) because a Python client burns
more CPU per request than the proxy does. Rounds alternate bare/seks and seks/bare; the figures
to quote are the medians of the per-round ratios, because single rounds swing by ±20% here.

    .venv/bin/python bench/overhead.py            # 10 rounds x 600 requests
    .venv/bin/python bench/overhead.py --quick    # 2 rounds x 100 requests (smoke test)
    .venv/bin/python bench/overhead.py --aa       # A/A: a second bare mitmdump instead of seks
    .venv/bin/python bench/overhead.py --audit    # also seks with audit writes discarded

``--audit`` adds ``seks-noaudit``: a second ``seks proxy`` on the same vault, started with the
bench-only ``SEKS_BENCH_ONLY_DISCARD_AUDIT=1`` (audit rows dropped, nothing waits for a commit),
so one run gives what the durable, fail-closed, chained audit costs: seks / seks-noaudit.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGET_RATIO = 1.10
AUDIT_TARGET_RPS_RATIO = 0.90  # issue 5: durable audit costs at most 10% of requests/s
AUDIT_DISCARD_ENV = "SEKS_BENCH_ONLY_DISCARD_AUDIT"  # seks/store/audit_writer.py
READY_TIMEOUT = 60.0


class BenchError(RuntimeError):
    """Something in the set-up or a round went wrong; the run is worthless."""


# --------------------------------------------------------------------------- processes


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants: `seks proxy` has its audit writer as a child process
    (seks/store/audit_writer.py), and its CPU and memory are the proxy's too."""
    pids, i = [pid], 0
    while i < len(pids):
        try:
            tasks = list(Path(f"/proc/{pids[i]}/task").iterdir())
        except OSError:
            tasks = []  # gone meanwhile
        for task in tasks:
            with contextlib.suppress(OSError):
                pids += [int(c) for c in (task / "children").read_text().split()]
        i += 1
    return pids


def proc_cpu_seconds(pid: int) -> float:
    """utime+stime of a process (all its threads) and of its child processes, live (read from
    their own stat) or ended and reaped (the parent's cutime+cstime), in seconds."""
    total = 0
    for n, one in enumerate(process_tree(pid)):
        try:
            stat = Path(f"/proc/{one}/stat").read_text()
        except OSError:
            continue  # a child that ended meanwhile: reaped, it shows in its parent's cutime
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
        if n == 0:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime: 16 and 17
    return total / CLK_TCK


def proc_rss_mb(pid: int) -> float:
    """VmRSS of a process and its child processes, summed (pages they share count twice)."""
    kb = 0
    for one in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kb += int(line.split()[1])
    return kb / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without proxy variables, so nothing reroutes or bypasses our proxies."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(extra)
    return env


@dataclass
class Service:
    """A background process we started, with its log files."""

    name: str
    popen: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 25) -> str:
        out = []
        for path in (self.stdout, self.stderr):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            if text:
                out.append(f"--- {self.name} {path.name} (last {len(text)} lines)")
                out.extend(text)
        return "\n".join(out)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start_service(
    name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None
) -> Service:
    stdout, stderr = workdir / f"{name}.out", workdir / f"{name}.err"
    # Logs go to files, never to pipes we would have to drain with our own CPU.
    with stdout.open("wb") as out, stderr.open("wb") as err:
        popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env or clean_env()
        )
    return Service(name, popen, stdout, stderr)


def wait_for_line(svc: Service, prefix: str) -> str:
    """Wait until the service prints a stdout line starting with ``prefix``; return it."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        for line in svc.stdout.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                return line
        if svc.popen.poll() is not None:
            raise BenchError(f"{svc.name} exited with {svc.popen.returncode}\n{svc.log_tail()}")
        time.sleep(0.05)
    raise BenchError(f"{svc.name} printed no {prefix!r} line in {READY_TIMEOUT}s\n{svc.log_tail()}")


def wait_for_port(svc: Service, port: int, *files: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if svc.popen.poll() is not None:
            raise BenchError(f"{svc.name} exited with {svc.popen.returncode}\n{svc.log_tail()}")
        if all(f.exists() for f in files):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
        time.sleep(0.05)
    raise BenchError(f"{svc.name} not listening on {port} after {READY_TIMEOUT}s\n{svc.log_tail()}")


def run_checked(argv: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    res = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise BenchError(
            f"`{' '.join(argv)}` failed with {res.returncode}:\n{res.stderr.strip()}"
            f"\n{res.stdout.strip()}"
        )
    return res.stdout.strip()


def find_tool(name: str, given: str | None) -> str:
    if given:
        return given
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise BenchError(f"cannot find `{name}`: pass --{name} PATH")
    return found


# --------------------------------------------------------------------------- set-up


@dataclass
class Target:
    """One way of reaching the upstream: direct or through a proxy."""

    name: str
    url: str
    cacert: Path
    auth: str  # the whole Authorization header value the client sends
    proxy: str | None = None
    service: Service | None = None  # the proxy whose CPU we measure


def make_certs(workdir: Path) -> tuple[Path, Path, Path]:
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("api.openai.com", "127.0.0.1", "localhost")
    ca_pem, cert_pem, key_pem = workdir / "ca.pem", workdir / "leaf.pem", workdir / "leaf.key"
    ca.cert_pem.write_to_path(str(ca_pem))
    leaf.private_key_pem.write_to_path(str(key_pem))
    for i, blob in enumerate(leaf.cert_chain_pems):
        blob.write_to_path(str(cert_pem), append=i > 0)
    return ca_pem, cert_pem, key_pem


def start_upstream(workdir: Path, cert: Path, key: Path, real_key: str) -> tuple[Service, int]:
    argv = [sys.executable, str(HERE / "_upstream.py"), "--cert", str(cert), "--key", str(key)]
    svc = start_service("upstream", [*argv, "--expect-key", real_key], workdir)
    line = wait_for_line(svc, "upstream listening on ")
    return svc, int(line.rsplit(":", 1)[1])


def start_mitmdump(
    name: str, mitmdump: str, workdir: Path, upstream_ca: Path, extra: Sequence[str] = ()
) -> Target:
    """A bare mitmdump; ``extra`` arguments are appended to its command line."""
    confdir = workdir / f"{name}-confdir"
    confdir.mkdir()
    port = free_port()
    argv = [
        mitmdump,
        "-q",  # flow_detail=0 and termlog_verbosity=error: no per-flow or per-connection output
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(port),
        "--set",
        f"confdir={confdir}",
        "--set",
        "connection_strategy=lazy",
        "--set",
        f"ssl_verify_upstream_trusted_ca={upstream_ca}",
        *extra,
    ]
    svc = start_service(name, argv, workdir)
    ca = confdir / "mitmproxy-ca-cert.pem"
    wait_for_port(svc, port, ca)
    return Target(name, "", ca, "", proxy=f"http://127.0.0.1:{port}", service=svc)


def start_seks(
    seks: str, workdir: Path, upstream_port: int, upstream_ca: Path, real_key: str
) -> Target:
    home = workdir / "seks-home"
    env = clean_env(SEKS_HOME=str(home))
    env.pop("SEKS_MASTER_KEY", None)
    run_checked([seks, "init"], env)
    run_checked([seks, "secret", "add", "oa", "--provider", "openai"], env, stdin=real_key)
    run_checked([seks, "agent", "create", "bench"], env)
    token = run_checked([seks, "token", "issue", "--agent", "bench", "--provider", "openai"], env)
    if not token.startswith("seks_") or real_key in token:
        raise BenchError(f"`seks token issue` printed something unexpected: {token[:12]}…")
    ca = Path(run_checked([seks, "ca", "path"], env))
    config = workdir / "seks-bench.yaml"
    config.write_text(
        "providers:\n"
        "  openai:\n"
        f'    upstream: "https://127.0.0.1:{upstream_port}"\n'
        f'    upstream_ca: "{upstream_ca}"\n'
    )
    argv = [seks, "proxy", "--config", str(config), "--listen", "127.0.0.1:0"]
    svc = start_service("seks", argv, workdir, env=env)
    line = wait_for_line(svc, "seks proxy listening on ")
    port = int(line.rsplit(":", 1)[1].strip().rstrip("."))
    return Target(
        "seks",
        "https://api.openai.com/v1/models",
        ca,
        f"Bearer {token}",
        proxy=f"http://127.0.0.1:{port}",
        service=svc,
    )


def start_seks_without_audit(seks: Target, workdir: Path) -> Target:
    """A second `seks proxy` on the same vault and token, its audit rows discarded."""
    env = clean_env(SEKS_HOME=str(workdir / "seks-home"), **{AUDIT_DISCARD_ENV: "1"})
    env.pop("SEKS_MASTER_KEY", None)
    argv = [*seks_proxy_argv(seks), "--listen", "127.0.0.1:0"]
    svc = start_service("seks-noaudit", argv, workdir, env=env)
    line = wait_for_line(svc, "seks proxy listening on ")
    if "AUDIT ROWS ARE DISCARDED" not in svc.stderr.read_text(errors="replace"):
        raise BenchError(f"seks-noaudit did not say that it discards audit rows\n{svc.log_tail()}")
    port = int(line.rsplit(":", 1)[1].strip().rstrip("."))
    return Target("seks-noaudit", seks.url, seks.cacert, seks.auth, f"http://127.0.0.1:{port}", svc)


def seks_proxy_argv(seks: Target) -> list[str]:
    assert seks.service is not None
    argv = list(seks.service.popen.args)  # type: ignore[arg-type]
    return argv[: argv.index("--listen")]


def audit_rows_verified(seks_exe: str, workdir: Path) -> int:
    """`seks audit verify` on the bench vault: the durable proxy's rows are all there, chained."""
    env = clean_env(SEKS_HOME=str(workdir / "seks-home"))
    env.pop("SEKS_MASTER_KEY", None)
    out = run_checked([seks_exe, "audit", "verify", "--json"], env)
    return int(json.loads(out)["the audit trail"]["rows"])


# --------------------------------------------------------------------------- rounds


@dataclass
class RoundResult:
    target: str
    phase: str  # "warmup", "load" (parallel, the measured rounds) or "idle" (sequential)
    round: int
    requests: int
    wall_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    connects: int
    proxy_cpu_ms_per_req: float | None
    upstream_cpu_ms_per_req: float
    client_cpu_ms_per_req: float
    proxy_rss_mb: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def curl_config(target: Target, n: int, workdir: Path) -> Path:
    path = workdir / f"curl-{target.name}-{n}.cfg"
    if not path.exists():
        entry = f'url = "{target.url}"\noutput = "/dev/null"\n'
        path.write_text(entry * n)
    return path


def run_round(
    target: Target,
    n: int,
    phase: str,
    index: int,
    args: argparse.Namespace,
    upstream: Service,
    workdir: Path,
) -> RoundResult:
    """One curl invocation of ``n`` requests; checks that every one of them got a 200.

    "idle" runs the requests one after the other on one keep-alive connection (latency without
    queueing); the other phases run ``--parallel-max`` transfers at a time (throughput and CPU).
    """
    argv = [args.curl, "--silent", "--show-error", "--no-progress-meter"]
    if phase != "idle":
        argv += ["--parallel", "--parallel-max", str(args.parallel)]
    argv += [
        "--http1.1",
        "--cacert",
        str(target.cacert),
        "-H",
        f"Authorization: {target.auth}",
        "--write-out",
        "%{http_code} %{time_total} %{num_connects}\\n",
        "--config",
        str(curl_config(target, n, workdir)),
    ]
    if target.proxy:
        # --noproxy '' overrides any NO_PROXY that would send 127.0.0.1 around the proxy.
        argv += ["--proxy", target.proxy, "--noproxy", ""]
    else:
        argv += ["--noproxy", "*"]

    pid = target.service.pid if target.service else None
    up0 = proc_cpu_seconds(upstream.pid)
    cpu0 = proc_cpu_seconds(pid) if pid else 0.0
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), check=False)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1 = proc_cpu_seconds(pid) if pid else 0.0
    up1 = proc_cpu_seconds(upstream.pid)

    lines = res.stdout.split("\n")[:-1]
    statuses = Counter(line.split(" ", 1)[0] for line in lines)
    if res.returncode != 0 or len(lines) != n or statuses != Counter({"200": n}):
        detail = target.service.log_tail() if target.service else ""
        raise BenchError(
            f"{target.name} {phase} round {index}: curl exit {res.returncode}, "
            f"{len(lines)}/{n} results, "
            f"statuses {dict(statuses)}\n{res.stderr.strip()[:2000]}\n{detail}"
        )
    if pid and cpu1 == cpu0:
        raise BenchError(
            f"{target.name} {phase} round {index}: the proxy used no measurable CPU "
            f"(one tick is {1000 / CLK_TCK:.0f} ms): did the requests bypass it? Raise --requests."
        )
    times = sorted(float(line.split()[1]) * 1000 for line in lines)
    client_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return RoundResult(
        target=target.name,
        phase=phase,
        round=index,
        requests=n,
        wall_s=wall,
        rps=n / wall,
        p50_ms=percentile(times, 50),
        p99_ms=percentile(times, 99),
        mean_ms=statistics.fmean(times),
        connects=sum(int(line.split()[2]) for line in lines),
        proxy_cpu_ms_per_req=(cpu1 - cpu0) * 1000 / n if pid else None,
        upstream_cpu_ms_per_req=(up1 - up0) * 1000 / n,
        client_cpu_ms_per_req=client_cpu * 1000 / n,
        proxy_rss_mb=proc_rss_mb(pid) if pid else None,
        statuses=dict(statuses),
    )


# --------------------------------------------------------------------------- report


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def round_line(r: RoundResult) -> str:
    return (
        f"  {r.target:<12} {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  "
        f"proxy CPU {fmt(r.proxy_cpu_ms_per_req, '5.3f')} ms/req  "
        f"(upstream {r.upstream_cpu_ms_per_req:.3f}, curl {r.client_cpu_ms_per_req:.3f}, "
        f"{r.connects} conns)"
    )


def summarize(results: list[RoundResult], names: list[str], cand: str) -> dict[str, object]:
    by: dict[str, list[RoundResult]] = {name: [] for name in names}
    idle: dict[str, RoundResult] = {}
    for r in results:
        if r.phase == "load":
            by[r.target].append(r)
        elif r.phase == "idle":
            idle[r.target] = r

    def med(name: str, attr: str) -> float | None:
        values = [getattr(r, attr) for r in by[name]]
        return statistics.median(values) if values and values[0] is not None else None

    summary: dict[str, object] = {
        name: {
            attr: med(name, attr)
            for attr in (
                "rps",
                "p50_ms",
                "p99_ms",
                "proxy_cpu_ms_per_req",
                "upstream_cpu_ms_per_req",
                "client_cpu_ms_per_req",
                "proxy_rss_mb",
            )
        }
        for name in names
    }
    for name, r in idle.items():
        entry = summary[name]
        assert isinstance(entry, dict)
        entry["idle_p50_ms"], entry["idle_p99_ms"] = r.p50_ms, r.p99_ms
        entry["idle_proxy_cpu_ms_per_req"] = r.proxy_cpu_ms_per_req
    if cand in by and "bare" in by:
        pairs = list(zip(by["bare"], by[cand], strict=True))
        ratios = {
            "proxy_cpu_ms_per_req": [
                c.proxy_cpu_ms_per_req / b.proxy_cpu_ms_per_req for b, c in pairs
            ],
            "rps": [c.rps / b.rps for b, c in pairs],
            "p50_ms": [c.p50_ms / b.p50_ms for b, c in pairs],
            "p99_ms": [c.p99_ms / b.p99_ms for b, c in pairs],
        }
        summary["ratios_per_round"] = ratios
        summary["ratio_medians"] = {k: statistics.median(v) for k, v in ratios.items()}
    if "seks" in by and "seks-noaudit" in by:
        pairs = list(zip(by["seks-noaudit"], by["seks"], strict=True))
        audit = {
            "rps": [c.rps / b.rps for b, c in pairs],
            "proxy_cpu_ms_per_req": [
                c.proxy_cpu_ms_per_req / b.proxy_cpu_ms_per_req for b, c in pairs
            ],
            "p50_ms": [c.p50_ms / b.p50_ms for b, c in pairs],
            "p99_ms": [c.p99_ms / b.p99_ms for b, c in pairs],
        }
        summary["audit_ratios_per_round"] = audit
        summary["audit_ratio_medians"] = {k: statistics.median(v) for k, v in audit.items()}
    return summary


def print_report(summary: dict[str, object], names: list[str], cand: str, rounds: int) -> None:
    medians = summary.get("ratio_medians", {})
    assert isinstance(medians, dict)
    ratio_keys = ("proxy_cpu_ms_per_req", "rps", "p50_ms", "p99_ms")
    cols = [
        ("", "", 12),
        ("req/s", "", 8),
        ("p50", "ms", 7),
        ("p99", "ms", 7),
        ("proxy CPU", "ms/req", 10),
        ("CPU", "ratio", 6),
        ("req/s", "ratio", 6),
        ("p50", "ratio", 6),
        ("p99", "ratio", 6),
        ("idle p50", "ms", 9),
        ("idle p99", "ms", 9),
    ]
    print()
    print(f"Under load: medians over {rounds} rounds; ratios: median of per-round {cand}/bare.")
    print("idle: sequential requests on one keep-alive connection (no queueing).")
    for row in (0, 1):
        print(
            " ".join(
                f"{c[row]:<{w}}" if i == 0 else f"{c[row]:>{w}}" for i, (*c, w) in enumerate(cols)
            )
        )
    print("-" * (sum(c[2] for c in cols) + len(cols) - 1))
    for name in names:
        s = summary[name]
        assert isinstance(s, dict)
        if name == "bare":
            ratios = ["1.00"] * 4
        elif name == cand and medians:
            ratios = [f"{medians[k]:.2f}" for k in ratio_keys]
        else:
            ratios = ["-"] * 4
        cells = [
            name,
            f"{s['rps']:.0f}",
            f"{s['p50_ms']:.2f}",
            f"{s['p99_ms']:.2f}",
            fmt(s["proxy_cpu_ms_per_req"], ".3f"),
            *ratios,
            fmt(s.get("idle_p50_ms")),
            fmt(s.get("idle_p99_ms")),
        ]
        print(
            " ".join(
                f"{v:<{w}}" if i == 0 else f"{v:>{w}}"
                for i, (v, (*_, w)) in enumerate(zip(cells, cols, strict=True))
            )
        )
    if medians:
        per_round = summary["ratios_per_round"]
        assert isinstance(per_round, dict)
        cpu = per_round["proxy_cpu_ms_per_req"]
        verdict = "met" if medians["proxy_cpu_ms_per_req"] <= TARGET_RATIO else "NOT met"
        print()
        print(f"{cand}/bare CPU per request, per round: " + " ".join(f"{x:.2f}" for x in cpu))
        print(
            f"{cand}/bare CPU per request: median {medians['proxy_cpu_ms_per_req']:.3f}x "
            f"(rounds {min(cpu):.2f}-{max(cpu):.2f}); target <= {TARGET_RATIO:.2f}x: {verdict}"
        )
    audit = summary.get("audit_ratio_medians")
    if isinstance(audit, dict):
        per_round = summary["audit_ratios_per_round"]
        assert isinstance(per_round, dict)
        rps, cpu = per_round["rps"], per_round["proxy_cpu_ms_per_req"]
        verdict = "met" if audit["rps"] >= AUDIT_TARGET_RPS_RATIO else "NOT met"
        print()
        print("durable audit: seks / seks-noaudit (audit rows discarded), same run")
        print("  req/s ratio per round: " + " ".join(f"{x:.2f}" for x in rps))
        print("  CPU ratio per round:   " + " ".join(f"{x:.2f}" for x in cpu))
        print(
            f"  req/s: median {audit['rps']:.3f}x (rounds {min(rps):.2f}-{max(rps):.2f}); "
            f"target >= {AUDIT_TARGET_RPS_RATIO:.2f}x: {verdict}"
        )
        print(
            f"  CPU per request: median {audit['proxy_cpu_ms_per_req']:.3f}x; "
            f"p50 {audit['p50_ms']:.2f}x, p99 {audit['p99_ms']:.2f}x"
        )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Proxy overhead of SEKS against bare mitmproxy (see bench/README.md).",
    )
    p.add_argument("--rounds", type=int, default=10, help="measured rounds (default 10)")
    p.add_argument("--requests", type=int, default=600, help="requests per round (default 600)")
    p.add_argument("--parallel", type=int, default=16, help="curl --parallel-max (default 16)")
    p.add_argument("--warmup", type=int, default=100, help="warm-up requests per target")
    p.add_argument(
        "--idle-requests",
        type=int,
        default=300,
        help="sequential requests per target for the unloaded latency (default 300; 0: skip)",
    )
    p.add_argument("--quick", action="store_true", help="smoke test: 2 rounds x 100 requests")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--aa", action="store_true", help="A/A control: a second bare mitmdump instead of seks"
    )
    mode.add_argument("--no-seks", action="store_true", help="only direct and bare mitmproxy")
    p.add_argument(
        "--audit",
        action="store_true",
        help="also run seks with audit writes discarded (bench-only switch) to price the audit",
    )
    p.add_argument("--json", metavar="FILE", help="also write all results as JSON ('-': stdout)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    p.add_argument("--seks", help="seks executable (default: beside this Python, or PATH)")
    p.add_argument("--mitmdump", help="mitmdump executable (default: beside this Python, or PATH)")
    p.add_argument("--curl", help="curl executable (default: from PATH)")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.requests, args.warmup, args.idle_requests = 2, 100, 50, 50
    if args.rounds < 1 or args.requests < 1 or args.parallel < 1:
        p.error("--rounds, --requests and --parallel must be positive")
    return args


def start_targets(
    args: argparse.Namespace, workdir: Path, services: list[Service]
) -> tuple[list[Target], Service, str]:
    """Start the upstream and the proxies; return the targets, the upstream and the candidate."""
    mitmdump = find_tool("mitmdump", args.mitmdump)
    real_key = "sk-bench-" + secrets.token_hex(20)
    ca_pem, cert_pem, key_pem = make_certs(workdir)
    upstream, up_port = start_upstream(workdir, cert_pem, key_pem, real_key)
    services.append(upstream)
    up_url = f"https://127.0.0.1:{up_port}/v1/models"
    real_auth = f"Bearer {real_key}"

    targets = [Target("direct", up_url, ca_pem, real_auth)]
    cand = "bare2" if args.aa else "seks"
    names = ["bare", cand] if args.aa else ["bare"]
    for name in names:
        t = start_mitmdump(name, mitmdump, workdir, ca_pem)
        t.url, t.auth = up_url, real_auth
        targets.append(t)
    if not (args.aa or args.no_seks):
        seks = find_tool("seks", args.seks)
        targets.append(start_seks(seks, workdir, up_port, ca_pem, real_key))
        if args.audit:
            targets.append(start_seks_without_audit(targets[-1], workdir))
    services.extend(t.service for t in targets if t.service)
    return targets, upstream, cand


def measure(
    args: argparse.Namespace, targets: list[Target], upstream: Service, cand: str, workdir: Path
) -> list[RoundResult]:
    results: list[RoundResult] = []

    def one(t: Target, n: int, phase: str, i: int) -> RoundResult:
        r = run_round(t, n, phase, i, args, upstream, workdir)
        results.append(r)
        print(round_line(r), flush=True)
        return r

    if args.warmup:
        print(f"warm-up ({args.warmup} requests each, not counted)")
        for t in targets:
            one(t, args.warmup, "warmup", 0)

    direct, proxies = targets[0], targets[1:]
    for i in range(args.rounds):
        # direct first, then the proxies in alternating order (bare/seks, seks/bare, ...),
        # so slow drift of the machine hits both sides alike.
        print(f"round {i + 1}/{args.rounds}")
        one(direct, args.requests, "load", i)
        current = {t.name: one(t, args.requests, "load", i) for t in proxies[:: 1 - 2 * (i % 2)]}
        if cand in current:
            b, c = current["bare"].proxy_cpu_ms_per_req, current[cand].proxy_cpu_ms_per_req
            assert b and c is not None
            print(f"  {cand}/bare CPU ratio {c / b:.3f}")

    if args.idle_requests:
        print(f"idle latency: {args.idle_requests} sequential requests, one connection")
        for t in targets:
            one(t, args.idle_requests, "idle", 0)
    return results


def write_json(
    args: argparse.Namespace, summary: dict[str, object], results: list[RoundResult], cand: str
) -> None:
    doc = {
        "config": {
            "rounds": args.rounds,
            "requests": args.requests,
            "parallel": args.parallel,
            "warmup": args.warmup,
            "idle_requests": args.idle_requests,
            "candidate": cand,
            "python": platform.python_version(),
            "mitmproxy": importlib.metadata.version("mitmproxy"),
            "cpus": os.cpu_count(),
            "clk_tck": CLK_TCK,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "summary": summary,
        "rounds": [asdict(r) for r in results],
    }
    text = json.dumps(doc, indent=2)
    if args.json == "-":
        print(text)
    else:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        print(f"results written to {args.json}")


def run(args: argparse.Namespace, workdir: Path) -> int:
    services: list[Service] = []
    try:
        targets, upstream, cand = start_targets(args, workdir, services)
        names = [t.name for t in targets]
        print(
            f"Python {platform.python_version()}, mitmproxy "
            f"{importlib.metadata.version('mitmproxy')}, {os.cpu_count()} CPUs; "
            f"curl -Z --parallel-max {args.parallel} --http1.1; "
            f"{args.rounds} rounds x {args.requests} requests"
        )
        print(f"targets: {', '.join(names)}")
        results = measure(args, targets, upstream, cand, workdir)
        summary = summarize(results, names, cand)
        print_report(summary, names, cand, args.rounds)
        if args.audit:
            rows = audit_rows_verified(find_tool("seks", args.seks), workdir)
            served = sum(r.requests for r in results if r.target == "seks")
            if rows < served:
                raise BenchError(f"only {rows} audit rows for {served} requests through seks")
            print(f"  seks audit verify: OK, {rows} chained rows for {served} requests via seks")
        if args.json:
            write_json(args, summary, results, cand)
        return 0
    finally:
        for svc in reversed(services):
            svc.stop()


def run_in_workdir(
    run: Callable[[argparse.Namespace, Path], int], args: argparse.Namespace, prefix: str
) -> int:
    """``run(args, workdir)`` in a new temporary directory, removed afterwards unless
    ``args.keep``; a BenchError is reported and makes the exit status 1."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return run(args, workdir)
    except BenchError as exc:
        print(f"\nbenchmark FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.curl = find_tool("curl", args.curl)
    return run_in_workdir(run, args, "seks-bench-")


if __name__ == "__main__":
    sys.exit(main())
