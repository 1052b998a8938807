"""Where SEKS's CPU per request goes: `seks proxy` with its parts switched off one by one.

The same small HTTPS requests as bench/overhead.py (curl, 16 keep-alive connections, the same
upstream), in alternating rounds, through:

  bare          mitmdump -q
  hooks-only    mitmdump -q -s bench/_noop_hooks.py: SEKS's hooks, doing nothing
  seks          seks proxy, as shipped
  -audit        audit rows discarded (SEKS_BENCH_ONLY_DISCARD_AUDIT=1)
  -log          and no console line per request
  -vault        and the vault's change counter read once only (bench/_ablated_seks.py)
  -scrub        and responses not scrubbed

Each step keeps the ones above it switched off (bench/_ablated_seks.py does the switching; it
exists only here). The figures are the medians of the per-round ratios of proxy CPU per request
to bare's: the differences between consecutive lines are what each part costs.

    .venv/bin/python bench/ablation.py              # 8 rounds x 600 requests, ~2 minutes
    .venv/bin/python bench/ablation.py --rounds 12
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import overhead  # noqa: E402  (the set-up helpers and the round runner)
from overhead import Service, Target  # noqa: E402

STEPS = [  # name, parts switched off by bench/_ablated_seks.py (audit rows always discarded)
    ("-audit", ""),
    ("-log", "nolog"),
    ("-vault", "nolog,memo"),
    ("-scrub", "nolog,memo,noscrub"),
]


def start_ablated(seks: Target, name: str, parts: str, workdir: Path) -> Target:
    env = overhead.clean_env(SEKS_HOME=str(workdir / "seks-home"), SEKS_BENCH_ABLATE=parts)
    env.pop("SEKS_MASTER_KEY", None)
    env[overhead.AUDIT_DISCARD_ENV] = "1"
    argv = [
        sys.executable,
        str(HERE / "_ablated_seks.py"),
        *overhead.seks_proxy_argv(seks)[1:],
        "--listen",
        "127.0.0.1:0",
    ]
    svc = overhead.start_service(name, argv, workdir, env=env)
    line = overhead.wait_for_line(svc, "seks proxy listening on ")
    port = int(line.rsplit(":", 1)[1].strip().rstrip("."))
    return Target(name, seks.url, seks.cacert, seks.auth, f"http://127.0.0.1:{port}", svc)


def start_all(
    args: argparse.Namespace, workdir: Path, services: list[Service]
) -> tuple[list[Target], Service]:
    plain = argparse.Namespace(**{**vars(args), "aa": False, "no_seks": False, "audit": False})
    targets, upstream, _ = overhead.start_targets(plain, workdir, services)
    direct, bare, seks = targets
    hooks = overhead.start_mitmdump(
        "hooks-only",
        overhead.find_tool("mitmdump", args.mitmdump),
        workdir,
        direct.cacert,  # the upstream's CA
        ["-s", str(HERE / "_noop_hooks.py")],
    )
    hooks.url, hooks.auth = bare.url, bare.auth
    ablated = [start_ablated(seks, name, parts, workdir) for name, parts in STEPS]
    proxies = [bare, hooks, seks, *ablated]
    services.extend(t.service for t in [hooks, *ablated] if t.service)
    return proxies, upstream


def run(args: argparse.Namespace, workdir: Path) -> int:
    services: list[Service] = []
    try:
        proxies, upstream = start_all(args, workdir, services)
        print(
            f"{len(proxies)} proxies, {args.rounds} alternating rounds x {args.requests} "
            f"requests, curl --parallel-max {args.parallel}"
        )
        for t in proxies:
            overhead.run_round(t, args.warmup, "warmup", 0, args, upstream, workdir)
        cpu: dict[str, list[float]] = {t.name: [] for t in proxies}
        for i in range(args.rounds):
            for t in proxies[:: 1 - 2 * (i % 2)]:
                r = overhead.run_round(t, args.requests, "load", i, args, upstream, workdir)
                assert r.proxy_cpu_ms_per_req is not None
                cpu[t.name].append(r.proxy_cpu_ms_per_req)
            print(f"  round {i + 1}: " + "  ".join(f"{n} {v[-1]:.3f}" for n, v in cpu.items()))
        report(cpu)
        return 0
    finally:
        for svc in reversed(services):
            svc.stop()


def report(cpu: dict[str, list[float]]) -> None:
    bare = cpu["bare"]
    print(f"\n{'proxy':<12}{'CPU ms/req':>12}{'x bare':>9}{'step':>9}   (medians over rounds)")
    previous = None
    for name, values in cpu.items():
        ratio = statistics.median(v / b for v, b in zip(values, bare, strict=True))
        step = "" if previous is None else f"{ratio - previous:+.3f}"
        print(f"{name:<12}{statistics.median(values):>12.3f}{ratio:>9.3f}{step:>9}")
        previous = ratio if name != "hooks-only" else 1.0
    print(
        "\nx bare: median of per-round ratios. step: the change from the line above (for "
        "hooks-only and\nseks, from bare); for a -part line, what switching that part off "
        "saved, the parts above it\nstaying off."
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Where SEKS's CPU per request goes (bench/README.md).")
    p.add_argument("--rounds", type=int, default=8, help="measured rounds (default 8)")
    p.add_argument("--requests", type=int, default=600, help="requests per round (default 600)")
    p.add_argument("--parallel", type=int, default=16, help="curl --parallel-max (default 16)")
    p.add_argument("--warmup", type=int, default=100, help="warm-up requests per proxy")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    p.add_argument("--seks", help="seks executable (default: beside this Python, or PATH)")
    p.add_argument("--mitmdump", help="mitmdump executable (default: beside this Python, or PATH)")
    p.add_argument("--curl", help="curl executable (default: from PATH)")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.requests < 1 or args.parallel < 1:
        p.error("--rounds, --requests and --parallel must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.curl = overhead.find_tool("curl", args.curl)
    return overhead.run_in_workdir(run, args, "seks-ablation-")


if __name__ == "__main__":
    sys.exit(main())
