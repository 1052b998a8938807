"""What does SEKS cost on S3 uploads, against bare mitmproxy? (issue 3, "Benchmark")

One run, two parts, three ways to the same local S3-like HTTPS upstream (bench/_s3_upstream.py,
which counts and drops the bytes):

  direct  boto3 -> upstream (https://127.0.0.1:PORT)
  bare    boto3 -> mitmdump (streaming request bodies, AWS names rerouted) -> upstream
  seks    boto3 -> ``seks proxy`` (fake seks_aws_ key; re-signed with the real one) -> upstream

1. **Throughput**: ``--puts`` put_object calls of 1 MiB from 4 threads (boto3 in the agent's
   venv, one process per round), rounds alternating bare/seks and seks/bare, ``direct`` first.
   Reported: MiB/s per round, the proxy's CPU per put (its own /proc/<pid>/stat), and the
   medians of the per-round seks/bare ratios.
2. **Peak RSS**: one ``--upload-mib`` (1 GiB) object per proxy, made on the fly by the client,
   as one put_object with a streamed body and as a multipart upload (boto3's transfer manager),
   while a thread reads the proxy's VmRSS from /proc/<pid>/status every 50 ms; VmHWM (reset
   through /proc/<pid>/clear_refs before each upload) is the peak.

Targets (issue 3): the proxy's RSS stays under 150 MB, and put throughput within 1.2x of bare
mitmproxy (bare MiB/s / seks MiB/s <= 1.2).

    .venv/bin/python bench/aws.py            # 5 rounds x 200 puts, 1 GiB uploads, ~1 minute
    .venv/bin/python bench/aws.py --quick    # smoke run: 2 rounds x 20 puts, 64 MiB, ~15 s
    .venv/bin/python bench/aws.py --bare-stream off --upload-mib 256   # bare mitmdump buffering
    .venv/bin/python bench/aws.py --audit    # also seks-noaudit: what the durable audit costs
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import json
import os
import platform
import random
import resource
import secrets
import ssl
import statistics
import string
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from overhead import (
    AUDIT_DISCARD_ENV,
    CLK_TCK,
    BenchError,
    Service,
    clean_env,
    find_tool,
    make_certs,
    percentile,
    proc_cpu_seconds,
    process_tree,
    run_checked,
    run_in_workdir,
    start_mitmdump,
    start_service,
    wait_for_line,
)

HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024
TARGET_RSS_MB = 150.0  # issue 3: the proxy's peak RSS during a 1 GiB streamed upload
TARGET_SLOWDOWN = 1.20  # issue 3: put throughput within 1.2x of bare mitmproxy
ENDPOINT = "https://s3.us-east-1.amazonaws.com"  # path style; both proxies route it locally
PLACEHOLDER_SECRET = "seks-placeholder-secret-key-not-a-credential"  # what `seks env` gives


# --------------------------------------------------------------------------- processes


def proc_status_kb(pid: int) -> dict[str, int]:
    """The Vm* lines of /proc/<pid>/status, in kB (KiB). VmRSS and VmHWM also count the
    process's children (`seks proxy`'s audit writer) by their private memory, what they add
    to the proxy's own: the pages they share with it (libpython, libsqlite3, libcrypto) are in
    its RSS already. :func:`children_rss_kb` gives their whole RSS."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Vm"):
            name, value = line.split(":", 1)
            out[name] = int(value.split()[0])
    extra = sum(private_kb(child) for child in process_tree(pid)[1:])
    for name in ("VmRSS", "VmHWM"):
        out[name] += extra
    return out


def private_kb(pid: int) -> int:
    """Memory only this process maps (Private_Clean + Private_Dirty, proc(5) smaps_rollup)."""
    kb = 0
    with contextlib.suppress(OSError):  # ended meanwhile
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                kb += int(line.split()[1])
    return kb


def children_rss_kb(pid: int) -> int:
    """The whole VmRSS of the process's children, shared pages included."""
    kb = 0
    for child in process_tree(pid)[1:]:
        with contextlib.suppress(OSError, StopIteration):
            status = Path(f"/proc/{child}/status").read_text().splitlines()
            kb += int(next(line for line in status if line.startswith("VmRSS:")).split()[1])
    return kb


def mb(kb: int) -> float:
    """kB (KiB) as /proc counts them, in MB (10^6 bytes), the unit of the target."""
    return kb * 1024 / 1e6


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (proc(5), clear_refs "5", Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def wait_quiet(svc: Service, timeout: float = 30.0) -> None:
    """Until the process used no CPU for half a second: seks loads botocore's models in a
    thread at start (~3 s of CPU) and that must not land in a measured round."""
    deadline = time.monotonic() + timeout
    last = proc_cpu_seconds(svc.pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = proc_cpu_seconds(svc.pid)
        if now - last < 1.5 / CLK_TCK:
            return
        last = now
    raise BenchError(f"{svc.name} kept using CPU for {timeout:.0f}s while idle\n{svc.log_tail()}")


class RssSampler(threading.Thread):
    """Reads a process's VmRSS every ``interval`` seconds until stopped."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(name=f"rss-{pid}", daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []  # (seconds since start, kB)
        self.halt = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        while True:
            try:
                rss = proc_status_kb(self.pid)["VmRSS"]
            except (OSError, KeyError):
                return
            self.samples.append((time.monotonic() - t0, rss))
            if self.halt.wait(self.interval):
                return

    def stop(self) -> None:
        self.halt.set()
        self.join()

    @property
    def max_kb(self) -> int:
        return max((kb for _, kb in self.samples), default=0)


# --------------------------------------------------------------------------- set-up


@dataclass
class Route:
    """One way for the S3 client to reach the upstream: direct or through a proxy."""

    name: str
    endpoint: str
    ca: Path  # what the client trusts (AWS_CA_BUNDLE)
    key_id: str
    secret_key: str
    proxy: str | None = None
    service: Service | None = None  # the proxy whose CPU and RSS we measure

    def client_env(self, workdir: Path) -> dict[str, str]:
        """An agent's environment: the key pair, the proxy and its CA, no AWS config files."""
        env = {k: v for k, v in clean_env().items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=self.key_id,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_CA_BUNDLE=str(self.ca),
            AWS_CONFIG_FILE=str(workdir / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(workdir / "no-aws-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
        )
        if self.proxy:
            env["HTTPS_PROXY"] = self.proxy
        return env


@dataclass
class Upstream:
    service: Service
    port: int
    ca: Path

    def stats(self) -> dict[str, Any]:
        """What the upstream counted so far (GET /_bench/stats)."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        try:
            conn.request("GET", "/_bench/stats")
            body = conn.getresponse().read()
        finally:
            conn.close()
        return json.loads(body)  # type: ignore[no-any-return]


def fake_aws_key() -> tuple[str, str]:
    """An access key pair shaped like AWS's (the upstream checks no signature)."""
    rng = random.SystemRandom()
    key_id = "AKIA" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=16))
    return key_id, secrets.token_urlsafe(30)[:40]


def start_s3_upstream(workdir: Path, ca: Path, cert: Path, key: Path) -> Upstream:
    argv = [sys.executable, str(HERE / "_s3_upstream.py"), "--cert", str(cert), "--key", str(key)]
    svc = start_service("s3-upstream", argv, workdir)
    line = wait_for_line(svc, "s3 upstream listening on ")
    return Upstream(svc, int(line.rsplit(":", 1)[1]), ca)


def start_bare(
    mitmdump: str, workdir: Path, upstream: Upstream, stream: str, real: tuple[str, str]
) -> Route:
    route_to = f"bench_upstream=127.0.0.1:{upstream.port}"
    extra = ["-s", str(HERE / "_aws_reroute.py"), "--set", route_to]
    if stream != "off":
        # Without it mitmproxy holds every request body whole before sending it on.
        extra += ["--set", f"stream_large_bodies={stream}"]
    t = start_mitmdump("bare", mitmdump, workdir, upstream.ca, extra)
    return Route("bare", ENDPOINT, t.cacert, *real, proxy=t.proxy, service=t.service)


def start_seks_aws(seks: str, workdir: Path, upstream: Upstream, real: tuple[str, str]) -> Route:
    home = workdir / "seks-home"
    env = clean_env(SEKS_HOME=str(home))
    env.pop("SEKS_MASTER_KEY", None)
    run_checked([seks, "init"], env)
    secret = json.dumps({"access_key_id": real[0], "secret_access_key": real[1]})
    run_checked([seks, "secret", "add", "aws-bench", "--provider", "aws"], env, stdin=secret)
    run_checked([seks, "agent", "create", "bench"], env)
    token = run_checked([seks, "token", "issue", "--agent", "bench", "--provider", "aws"], env)
    if not token.startswith("seks_aws_") or real[0] in token:
        raise BenchError(f"`seks token issue` printed something unexpected: {token[:12]}…")
    ca = Path(run_checked([seks, "ca", "path"], env))
    config = workdir / "seks-bench.yaml"
    config.write_text(
        "providers:\n"
        "  aws:\n"
        f'    upstream: "https://127.0.0.1:{upstream.port}"\n'
        f'    upstream_ca: "{upstream.ca}"\n'
    )
    svc, proxy = start_seks_proxy("seks", seks, workdir, env)
    return Route("seks", ENDPOINT, ca, token, PLACEHOLDER_SECRET, proxy, svc)


def start_seks_proxy(
    name: str, seks: str, workdir: Path, env: dict[str, str]
) -> tuple[Service, str]:
    """``seks proxy`` with the bench config on a free port; the service and its proxy URL."""
    argv = [seks, "proxy", "--config", str(workdir / "seks-bench.yaml"), "--listen", "127.0.0.1:0"]
    svc = start_service(name, argv, workdir, env=env)
    line = wait_for_line(svc, "seks proxy listening on ")
    port = int(line.rsplit(":", 1)[1].strip().rstrip("."))
    return svc, f"http://127.0.0.1:{port}"


def start_seks_aws_without_audit(seks: str, workdir: Path, with_audit: Route) -> Route:
    """A second ``seks proxy`` on the same vault, token and config, its audit rows discarded
    (the bench-only switch bench/overhead.py --audit uses): seks / seks-noaudit in one run is
    what the durable, fail-closed audit costs per put."""
    env = clean_env(SEKS_HOME=str(workdir / "seks-home"), **{AUDIT_DISCARD_ENV: "1"})
    env.pop("SEKS_MASTER_KEY", None)
    svc, proxy = start_seks_proxy("seks-noaudit", seks, workdir, env)
    if "AUDIT ROWS ARE DISCARDED" not in svc.stderr.read_text(errors="replace"):
        raise BenchError(f"seks-noaudit did not say that it discards audit rows\n{svc.log_tail()}")
    return Route(
        "seks-noaudit",
        ENDPOINT,
        with_audit.ca,
        with_audit.key_id,
        with_audit.secret_key,
        proxy,
        svc,
    )


# --------------------------------------------------------------------------- rounds


@dataclass
class PutRound:
    target: str
    phase: str  # "warmup" or "load"
    round: int
    puts: int
    wall_s: float  # the client's own clock, first call to last answer
    mib_s: float
    p50_ms: float
    p99_ms: float
    proxy_cpu_ms_per_put: float | None
    upstream_cpu_ms_per_put: float
    client_cpu_ms_per_put: float  # the whole client process, boto3's import included
    proxy_rss_mb: float | None
    sent: dict[str, int] = field(default_factory=dict)


@dataclass
class Upload:
    target: str
    mode: str  # "put" (one put_object, streamed body) or "multipart"
    mib: int
    wall_s: float
    mib_s: float
    proxy_cpu_s: float | None
    idle_rss_mb: float | None  # VmRSS right before the upload
    peak_rss_mb: float | None  # VmHWM after it, reset before it
    sampled_max_rss_mb: float | None  # the highest of the 50 ms VmRSS samples
    hwm_reset: bool
    rss_samples: list[tuple[float, float]] = field(default_factory=list)  # (s, MB)
    sent: dict[str, int] = field(default_factory=dict)
    # The RSS figures count child processes (seks's audit writer) by their private memory;
    # this is their whole RSS at the end, the pages they share with the proxy included.
    children_rss_mb: float | None = None
    children_private_mb: float | None = None


class Bench:
    """The routes, the upstream and the client; one method per kind of measurement."""

    def __init__(
        self, args: argparse.Namespace, routes: list[Route], upstream: Upstream, workdir: Path
    ) -> None:
        self.args, self.routes, self.upstream, self.workdir = args, routes, upstream, workdir
        # Each proxy's VmRSS once started and idle, before its first request.
        self.start_rss_mb = {
            r.name: mb(proc_status_kb(r.service.pid)["VmRSS"]) for r in routes if r.service
        }

    def _client(self, route: Route, *argv: str) -> tuple[dict[str, Any], float]:
        """Run the client to the end; its JSON report and its CPU seconds."""
        cmd = [self.args.agent_python, str(HERE / "_s3_client.py"), *argv]
        cmd += ["--endpoint", route.endpoint]
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        res = subprocess.run(
            cmd, capture_output=True, text=True, env=route.client_env(self.workdir), check=False
        )
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if res.returncode != 0:
            detail = route.service.log_tail() if route.service else ""
            raise BenchError(
                f"{route.name}: the S3 client failed ({res.returncode}):\n"
                f"{res.stderr.strip()[-3000:]}\n{detail}"
            )
        cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        return json.loads(res.stdout), cpu

    def _check_arrived(self, before: dict[str, Any], route: Route, expected: int) -> None:
        got = self.upstream.stats()["object_bytes"] - before["object_bytes"]
        if got != expected:
            raise BenchError(f"{route.name}: the upstream got {got} object bytes, not {expected}")

    def puts(self, route: Route, n: int, phase: str, index: int) -> PutRound:
        pid = route.service.pid if route.service else None
        before = self.upstream.stats()
        up0 = proc_cpu_seconds(self.upstream.service.pid)
        cpu0 = proc_cpu_seconds(pid) if pid else 0.0
        label = f"{route.name}-{phase}-{index}"
        report, client_cpu = self._client(
            route, "puts", "--count", str(n), "--threads", str(self.args.threads), "--label", label
        )
        cpu1 = proc_cpu_seconds(pid) if pid else 0.0
        up1 = proc_cpu_seconds(self.upstream.service.pid)
        self._check_arrived(before, route, n * MIB)
        if pid and cpu1 == cpu0:
            raise BenchError(f"{route.name}: the proxy used no CPU: did the puts bypass it?")
        times = sorted(report["latencies_ms"])
        return PutRound(
            target=route.name,
            phase=phase,
            round=index,
            puts=n,
            wall_s=report["wall_s"],
            mib_s=n / report["wall_s"],
            p50_ms=percentile(times, 50),
            p99_ms=percentile(times, 99),
            proxy_cpu_ms_per_put=(cpu1 - cpu0) * 1000 / n if pid else None,
            upstream_cpu_ms_per_put=(up1 - up0) * 1000 / n,
            client_cpu_ms_per_put=client_cpu * 1000 / n,
            proxy_rss_mb=mb(proc_status_kb(pid)["VmRSS"]) if pid else None,
            sent=report["sent"],
        )

    def upload(self, route: Route, mode: str) -> Upload:
        mib = self.args.upload_mib
        pid = route.service.pid if route.service else None
        before = self.upstream.stats()
        idle = proc_status_kb(pid)["VmRSS"] if pid else None
        reset = reset_peak_rss(pid) if pid else False
        sampler = RssSampler(pid, self.args.sample_ms / 1000) if pid else None
        cpu0 = proc_cpu_seconds(pid) if pid else 0.0
        if sampler:
            sampler.start()
        try:
            argv = ["upload", "--size", str(mib * MIB), "--mode", mode]
            report, _ = self._client(route, *argv, "--label", f"{route.name}-{mode}")
        finally:
            if sampler:
                sampler.stop()
        cpu1 = proc_cpu_seconds(pid) if pid else 0.0
        hwm = proc_status_kb(pid)["VmHWM"] if pid else None
        self._check_arrived(before, route, mib * MIB)
        return Upload(
            target=route.name,
            mode=mode,
            mib=mib,
            wall_s=report["wall_s"],
            mib_s=mib / report["wall_s"],
            proxy_cpu_s=cpu1 - cpu0 if pid else None,
            idle_rss_mb=mb(idle) if idle is not None else None,
            peak_rss_mb=mb(hwm) if hwm is not None and reset else None,
            sampled_max_rss_mb=mb(sampler.max_kb) if sampler else None,
            hwm_reset=reset,
            rss_samples=[(round(t, 3), round(mb(kb), 1)) for t, kb in sampler.samples]
            if sampler
            else [],
            sent=report["sent"],
            children_rss_mb=mb(children_rss_kb(pid)) if pid else None,
            children_private_mb=mb(sum(private_kb(c) for c in process_tree(pid)[1:]))
            if pid
            else None,
        )


def put_line(r: PutRound) -> str:
    cpu = "-" if r.proxy_cpu_ms_per_put is None else f"{r.proxy_cpu_ms_per_put:6.2f}"
    return (
        f"  {r.target:<12} {r.mib_s:7.1f} MiB/s  p50 {r.p50_ms:6.1f} ms  p99 {r.p99_ms:6.1f} ms  "
        f"proxy CPU {cpu} ms/put  (upstream {r.upstream_cpu_ms_per_put:.2f}, "
        f"client {r.client_cpu_ms_per_put:.2f})"
    )


def upload_line(u: Upload) -> str:
    rss = ""
    if u.idle_rss_mb is not None:
        peak = "-" if u.peak_rss_mb is None else f"{u.peak_rss_mb:.1f}"
        rss = (
            f"  RSS idle {u.idle_rss_mb:.1f} MB, peak {peak} MB "
            f"(sampled max {u.sampled_max_rss_mb:.1f}), proxy CPU {u.proxy_cpu_s:.1f} s"
        )
    took = f"{u.mib} MiB in {u.wall_s:5.1f} s, {u.mib_s:6.1f} MiB/s"
    return f"  {u.target:<7} {u.mode:<9} {took}{rss}"


def measure(bench: Bench) -> tuple[list[PutRound], list[Upload]]:
    args = bench.args
    rounds: list[PutRound] = []

    def one(route: Route, n: int, phase: str, i: int) -> PutRound:
        r = bench.puts(route, n, phase, i)
        rounds.append(r)
        print(put_line(r), flush=True)
        return r

    direct, proxies = bench.routes[0], bench.routes[1:]
    if args.warmup:
        print(f"warm-up ({args.warmup} puts each, not counted)")
        for route in bench.routes:
            one(route, args.warmup, "warmup", 0)
    for i in range(args.rounds):
        # direct first, then the proxies in alternating order, so drift hits both alike.
        print(f"round {i + 1}/{args.rounds}: {args.puts} puts of 1 MiB, {args.threads} threads")
        one(direct, args.puts, "load", i)
        now = {p.name: one(p, args.puts, "load", i) for p in proxies[:: 1 - 2 * (i % 2)]}
        if {"bare", "seks"} <= now.keys():
            print(f"  seks/bare MiB/s {now['seks'].mib_s / now['bare'].mib_s:.3f}")

    uploads: list[Upload] = []
    print(f"uploads of {args.upload_mib} MiB, proxy RSS sampled every {args.sample_ms} ms")
    measured = [p for p in proxies if p.name != "seks-noaudit"]  # its RSS is seks's
    for j, mode in enumerate(args.upload_modes):
        for route in [direct, *measured[:: 1 - 2 * (j % 2)]]:
            u = bench.upload(route, mode)
            uploads.append(u)
            print(upload_line(u), flush=True)
    return rounds, uploads


# --------------------------------------------------------------------------- report


def paired_ratios(base: list[PutRound], other: list[PutRound]) -> dict[str, list[float]]:
    """Per round, ``other`` / ``base``: MiB/s and proxy CPU per put."""
    pairs = list(zip(base, other, strict=True))
    return {
        "mib_s": [o.mib_s / b.mib_s for b, o in pairs],
        "proxy_cpu_ms_per_put": [
            o.proxy_cpu_ms_per_put / b.proxy_cpu_ms_per_put
            for b, o in pairs
            if o.proxy_cpu_ms_per_put and b.proxy_cpu_ms_per_put
        ],
    }


def summarize(
    rounds: list[PutRound], uploads: list[Upload], names: list[str], start_rss: dict[str, float]
) -> dict[str, Any]:
    load = {n: [r for r in rounds if r.phase == "load" and r.target == n] for n in names}

    def med(name: str, attr: str) -> float | None:
        values = [getattr(r, attr) for r in load[name]]
        return statistics.median(values) if values and values[0] is not None else None

    summary: dict[str, Any] = {
        name: {
            attr: med(name, attr)
            for attr in (
                "mib_s",
                "p50_ms",
                "p99_ms",
                "proxy_cpu_ms_per_put",
                "upstream_cpu_ms_per_put",
                "client_cpu_ms_per_put",
            )
        }
        | {"mib_s_range": [min(r.mib_s for r in load[name]), max(r.mib_s for r in load[name])]}
        for name in names
    }
    if "bare" in load and "seks" in load:
        per_round = paired_ratios(load["bare"], load["seks"])
        per_round["slowdown"] = [1 / x for x in per_round["mib_s"]]
        summary["ratios_per_round"] = per_round
        summary["ratio_medians"] = {k: statistics.median(v) for k, v in per_round.items()}
    if "seks" in load and "seks-noaudit" in load:
        audit = paired_ratios(load["seks-noaudit"], load["seks"])
        summary["audit_ratios_per_round"] = audit
        summary["audit_ratio_medians"] = {k: statistics.median(v) for k, v in audit.items()}
    summary["start_rss_mb"] = start_rss
    summary["uploads"] = {
        f"{u.target} {u.mode}": {
            "mib_s": u.mib_s,
            "idle_rss_mb": u.idle_rss_mb,
            "peak_rss_mb": u.peak_rss_mb,
            "sampled_max_rss_mb": u.sampled_max_rss_mb,
            "children_rss_mb": u.children_rss_mb,
            "children_private_mb": u.children_private_mb,
            "proxy_cpu_s": u.proxy_cpu_s,
        }
        for u in uploads
    }
    return summary


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_report(
    summary: dict[str, Any], uploads: list[Upload], names: list[str], args: argparse.Namespace
) -> None:
    print()
    print(
        "Proxy RSS once started, idle, before any request: "
        + ", ".join(f"{k} {v:.1f} MB" for k, v in summary["start_rss_mb"].items())
    )
    print(
        f"Puts: {args.puts} x 1 MiB put_object per round, {args.threads} threads; medians over "
        f"{args.rounds} rounds; ratios: median of per-round seks/bare."
    )
    head = f"{'':<13}{'MiB/s':>8}{'range':>14}{'p50 ms':>9}{'p99 ms':>9}"
    print(head + f"{'proxy CPU ms/put':>18}{'upstream':>10}{'client':>8}")
    for name in names:
        s = summary[name]
        lo, hi = s["mib_s_range"]
        print(
            f"{name:<13}{s['mib_s']:8.1f}{f'{lo:.0f}-{hi:.0f}':>14}{s['p50_ms']:9.1f}"
            f"{s['p99_ms']:9.1f}{fmt(s['proxy_cpu_ms_per_put'], '.2f'):>18}"
            f"{s['upstream_cpu_ms_per_put']:10.2f}{s['client_cpu_ms_per_put']:8.2f}"
        )
    print()
    print(
        f"Uploads of {args.upload_mib} MiB (one each); RSS in MB (10^6 bytes) from /proc: idle "
        "right before, peak (VmHWM) during, growth = peak - idle, sampled = max of VmRSS samples"
    )
    head = f"{'':<8}{'mode':<11}{'MiB/s':>7}{'idle RSS':>10}{'peak RSS':>10}{'growth':>8}"
    print(head + f"{'sampled':>9}{'CPU s':>7}")
    for u in uploads:
        peak = u.peak_rss_mb if u.hwm_reset else None
        growth = peak - u.idle_rss_mb if peak is not None and u.idle_rss_mb is not None else None
        print(
            f"{u.target:<8}{u.mode:<11}{u.mib_s:7.1f}{fmt(u.idle_rss_mb, '.1f'):>10}"
            f"{fmt(peak, '.1f'):>10}{fmt(growth, '+.1f'):>8}"
            f"{fmt(u.sampled_max_rss_mb, '.1f'):>9}{fmt(u.proxy_cpu_s, '.1f'):>7}"
        )
    if any(u.target != "direct" and not u.hwm_reset for u in uploads):
        print("  (VmHWM could not be reset: peak RSS is the sampled maximum only)")
    verdicts(summary, uploads, args)


def verdicts(summary: dict[str, Any], uploads: list[Upload], args: argparse.Namespace) -> None:
    print()
    for name in ("bare", "seks"):
        ups = [u for u in uploads if u.target == name]
        if not ups:
            continue
        peak = max(max(u.peak_rss_mb or 0, u.sampled_max_rss_mb or 0) for u in ups)
        growth = max((u.peak_rss_mb or 0) - (u.idle_rss_mb or 0) for u in ups)
        verdict = "met" if peak < TARGET_RSS_MB else "NOT met"
        print(
            f"{name} peak RSS during {args.upload_mib} MiB uploads: {peak:.1f} MB, at most "
            f"{growth:+.1f} MB over idle (max over {len(ups)} uploads: "
            f"{', '.join(u.mode for u in ups)})"
            + (f"; RSS < {TARGET_RSS_MB:.0f} MB: {verdict}" if name == "seks" else "")
        )
        whole = max(u.children_rss_mb or 0 for u in ups)
        if whole:
            private = max(u.children_private_mb or 0 for u in ups)
            print(
                f"  {name}'s child processes (the audit writer) count {private:.1f} MB of private "
                f"memory in that; with their whole RSS ({whole:.1f} MB, the libraries they share "
                f"with the proxy counted twice) the peak would be {peak - private + whole:.1f} MB"
            )
    medians = summary.get("ratio_medians")
    if medians:
        per_round = summary["ratios_per_round"]
        slow = per_round["slowdown"]
        verdict = "met" if medians["slowdown"] <= TARGET_SLOWDOWN else "NOT met"
        print("seks/bare MiB/s per round: " + " ".join(f"{x:.2f}" for x in per_round["mib_s"]))
        print(
            f"seks/bare MiB/s: median {medians['mib_s']:.3f}x over {args.rounds} rounds; "
            f"bare/seks (slowdown) median {medians['slowdown']:.3f}x "
            f"(rounds {min(slow):.2f}-{max(slow):.2f}); "
            f"throughput ratio <= {TARGET_SLOWDOWN:.1f}x: {verdict}"
        )
        print(f"seks/bare proxy CPU per put: median {medians['proxy_cpu_ms_per_put']:.3f}x")
    audit = summary.get("audit_ratio_medians")
    if audit:
        print(
            "durable audit: seks / seks-noaudit (audit rows discarded), same run: MiB/s median "
            f"{audit['mib_s']:.3f}x, proxy CPU per put median {audit['proxy_cpu_ms_per_put']:.3f}x"
        )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="S3 put throughput and peak RSS of SEKS against bare mitmproxy "
        "(see bench/README.md)."
    )
    p.add_argument("--rounds", type=int, default=5, help="measured rounds per proxy (default 5)")
    p.add_argument("--puts", type=int, default=200, help="1 MiB puts per round (default 200)")
    p.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    p.add_argument("--warmup", type=int, default=20, help="uncounted puts per target first")
    p.add_argument("--upload-mib", type=int, default=1024, help="upload size (default 1024)")
    p.add_argument(
        "--upload-modes",
        default="put,multipart",
        help="put (one put_object, streamed body) and/or multipart (default: both)",
    )
    p.add_argument("--sample-ms", type=int, default=50, help="RSS sampling interval (50)")
    p.add_argument(
        "--bare-stream",
        default="1",
        help="bare mitmdump's stream_large_bodies (default 1: stream every body; "
        "'off': mitmproxy's default, which holds each body whole)",
    )
    p.add_argument(
        "--audit",
        action="store_true",
        help="also seks-noaudit: the same seks proxy with its audit rows discarded",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 2 rounds x 20 puts, 64 MiB")
    p.add_argument("--json", metavar="FILE", help="also write all results as JSON ('-': stdout)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    p.add_argument("--seks", help="seks executable (default: beside this Python, or PATH)")
    p.add_argument("--mitmdump", help="mitmdump executable (default: beside this Python, or PATH)")
    p.add_argument(
        "--agent-python", help="Python with boto3 for the client (default: .venv-agent/bin/python)"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.puts, args.warmup, args.upload_mib = 2, 20, 4, 64
    args.upload_modes = [m for m in args.upload_modes.split(",") if m]
    if set(args.upload_modes) - {"put", "multipart"}:
        p.error("--upload-modes takes put and/or multipart")
    if min(args.rounds, args.puts, args.threads, args.upload_mib, args.sample_ms) < 1:
        p.error("--rounds, --puts, --threads, --upload-mib and --sample-ms must be positive")
    return args


def versions(args: argparse.Namespace) -> dict[str, Any]:
    boto = run_checked(
        [args.agent_python, "-c", "import boto3, botocore; print(boto3.__version__)"],
        clean_env(),
    )
    return {
        "python": platform.python_version(),
        "mitmproxy": importlib.metadata.version("mitmproxy"),
        "boto3": boto,
        "cpus": os.cpu_count(),
        "clk_tck": CLK_TCK,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_json(
    args: argparse.Namespace,
    info: dict[str, Any],
    summary: dict[str, Any],
    rounds: list[PutRound],
    uploads: list[Upload],
    upstream: dict[str, Any],
) -> None:
    config = {
        k: getattr(args, k)
        for k in ("rounds", "puts", "threads", "warmup", "upload_mib", "upload_modes")
    }
    doc = {
        "config": {**config, "sample_ms": args.sample_ms, "bare_stream": args.bare_stream, **info},
        "summary": summary,
        "rounds": [asdict(r) for r in rounds],
        "uploads": [asdict(u) for u in uploads],
        "upstream": upstream,
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
        info = versions(args)
        ca, cert, key = make_certs(workdir)
        upstream = start_s3_upstream(workdir, ca, cert, key)
        services.append(upstream.service)
        real = fake_aws_key()
        routes = [Route("direct", f"https://127.0.0.1:{upstream.port}", ca, *real)]
        mitmdump = find_tool("mitmdump", args.mitmdump)
        routes.append(start_bare(mitmdump, workdir, upstream, args.bare_stream, real))
        services.append(routes[-1].service)  # type: ignore[arg-type]
        seks = find_tool("seks", args.seks)
        routes.append(start_seks_aws(seks, workdir, upstream, real))
        services.append(routes[-1].service)  # type: ignore[arg-type]
        if args.audit:
            routes.append(start_seks_aws_without_audit(seks, workdir, routes[-1]))
            services.append(routes[-1].service)  # type: ignore[arg-type]
        for svc in services:
            wait_quiet(svc)
        names = [r.name for r in routes]
        print(
            f"Python {info['python']}, mitmproxy {info['mitmproxy']}, boto3 {info['boto3']}, "
            f"{info['cpus']} CPUs; targets: {', '.join(names)}; bare stream_large_bodies="
            f"{args.bare_stream}"
        )
        bench = Bench(args, routes, upstream, workdir)
        rounds, uploads = measure(bench)
        summary = summarize(rounds, uploads, names, bench.start_rss_mb)
        print_report(summary, uploads, names, args)
        stats = upstream.stats()
        print("\nrequests the upstream saw (all targets):")
        for kind, count in sorted(stats["requests"].items()):
            print(f"  {count:6d}  {kind}")
        if args.json:
            write_json(args, info, summary, rounds, uploads, stats)
        return 0
    finally:
        for svc in reversed(services):
            svc.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.agent_python:
        args.agent_python = str(HERE.parent / ".venv-agent" / "bin" / "python")
    return run_in_workdir(run, args, "seks-bench-aws-")


if __name__ == "__main__":
    sys.exit(main())
