"""Which AWS service, region and S3 bucket a request goes to, read from the host it connects to.

The host decides, never the credential scope the agent wrote. All from botocore's data:

- ``service``, the SigV4 signing name: the service model whose ``endpointPrefix`` is the host's
  labels before the region gives its ``signingName``, else that prefix (``runtime.sagemaker`` →
  sagemaker, ``bedrock-runtime`` → bedrock). Leading labels no prefix has are dropped
  (``{api}.execute-api``), and a ``-fips`` ending. A host no model's prefix fits: None.
- ``region``: the host's region label, matched by its partition's ``regionRegex``. A host
  endpoints.json lists signs for its credential scope (``iam.amazonaws.com`` → us-east-1,
  ``route53.amazonaws.com.cn`` → cn-northwest-1); another without a region label, for the
  partition's ``implicitGlobalRegion`` (us-east-1; cn-northwest-1 for ``.amazonaws.com.cn``).
  :data:`UNKNOWN_REGION` for S3 Transfer Acceleration, which signs for the bucket's region:
  callers must take it as outside every region allow-list.
- ``bucket``: S3's virtual-hosted bucket (``{bucket}.s3[-fips][.dualstack].{region}``, legacy
  ``s3-{region}``, ``s3-accelerate``) or S3 Express directory bucket (service ``s3express``).
  Access points and S3 Control name an account, not a bucket: None.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from botocore.loaders import create_loader

__all__ = [
    "AWS_HOST_PATTERNS",
    "UNKNOWN_REGION",
    "AwsEndpoint",
    "load_botocore_data",
    "parse_aws_host",
    "service_protocols",
]

AWS_HOST_PATTERNS: tuple[str, ...] = ("*.amazonaws.com", "*.amazonaws.com.cn")
UNKNOWN_REGION = ""
_SUFFIXES = ("amazonaws.com.cn", "amazonaws.com")  # longest first
_HOST_RE = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+")  # no empty label


@dataclass(frozen=True)
class AwsEndpoint:
    service: str  # SigV4 signing name: "s3", "sts", "sagemaker", "s3express"…
    region: str  # "us-east-1"…; UNKNOWN_REGION when the host does not tell
    bucket: str | None = None  # S3 virtual-hosted bucket


def parse_aws_host(host: str) -> AwsEndpoint | None:
    """The service, region and bucket of an AWS host; None for a host this module does not
    understand (not under AWS_HOST_PATTERNS, or naming no service botocore knows)."""
    host = host.lower().rstrip(".")
    suffix = next((s for s in _SUFFIXES if host.endswith("." + s)), None)
    if suffix is None or not _HOST_RE.fullmatch(host):
        return None
    listed = _listed_hosts().get(host)
    if listed is not None:
        prefix, region, service = listed
        service = service or _signing_names().get(prefix)
        return AwsEndpoint(service, region) if service else None
    labels = host[: -len(suffix) - 1].split(".")
    region = UNKNOWN_REGION
    if _is_region(labels[-1], suffix):
        region = labels.pop()
    elif len(labels) > 2 and _is_region(labels[-2], suffix) and not labels[-1].startswith("s3"):
        region = labels.pop(-2)  # {domain}.{region}.es: OpenSearch domains and collections
    if labels and labels[-1] == "dualstack":
        labels.pop()
    if not labels:
        return None
    if endpoint := _s3_endpoint(labels, region, suffix):
        return endpoint
    labels[-1] = labels[-1].removesuffix("-fips")
    for i in range(len(labels)):
        service = _signing_names().get(".".join(labels[i:]))
        if service:
            return AwsEndpoint(service, region or _implicit_region(suffix))
    return None


def _s3_endpoint(labels: list[str], region: str, suffix: str) -> AwsEndpoint | None:
    """S3's own forms of host; None for any other (s3-control, s3-outposts… are found by their
    endpoint prefix like any service)."""
    *rest, name = labels
    bucket = ".".join(rest) or None
    if name.startswith("s3express-"):  # s3express-control.{region}, {bucket}.s3express-{az}.…
        return AwsEndpoint("s3express", region, None if name == "s3express-control" else bucket)
    if name == "s3-accelerate":  # signed for the bucket's region, which the host does not name
        return AwsEndpoint("s3", UNKNOWN_REGION, bucket)
    if name == "s3-accesspoint":  # {name}-{account}.s3-accesspoint.{region}: no bucket
        return AwsEndpoint("s3", region) if region else None
    if name in ("s3", "s3-fips"):
        return AwsEndpoint("s3", region or _listed_region(f"s3.{suffix}", suffix), bucket)
    if region or not name.startswith("s3-"):
        return None
    # Legacy forms with the region in the label: s3-us-west-2, s3-fips-us-gov-west-1, and
    # s3-external-1 (which endpoints.json lists).
    listed = _listed_hosts().get(f"{name}.{suffix}")
    legacy = listed[1] if listed else name.removeprefix("s3-").removeprefix("fips-")
    return AwsEndpoint("s3", legacy, bucket) if _is_region(legacy, suffix) else None


def _is_region(label: str, suffix: str) -> bool:
    return any(re.fullmatch(p["regionRegex"], label) for p in _partitions(suffix))


def _implicit_region(suffix: str) -> str:
    region: str = _partitions(suffix)[0]["outputs"]["implicitGlobalRegion"]
    return region


def _listed_region(host: str, suffix: str) -> str:
    listed = _listed_hosts().get(host)
    return listed[1] if listed else _implicit_region(suffix)


@cache
def _partitions(suffix: str) -> tuple[dict[str, Any], ...]:
    data = create_loader().load_data("partitions")["partitions"]
    return tuple(p for p in data if p["outputs"]["dnsSuffix"] == suffix)


@cache
def _listed_hosts() -> dict[str, tuple[str, str, str | None]]:
    """Host names endpoints.json lists → (endpoint prefix, signing region, signing name when
    the credential scope names one), for the regions (or credential scopes) they sign for."""
    hosts: dict[str, tuple[str, str, str | None]] = {}
    for partition in create_loader().load_data("endpoints")["partitions"]:
        suffix = partition["dnsSuffix"]
        for prefix, service in partition["services"].items():
            default = service.get("defaults", {}).get("credentialScope", {})
            for key, endpoint in service.get("endpoints", {}).items():
                scope = {**default, **endpoint.get("credentialScope", {})}
                region = scope.get("region") or (key if _is_region(key, suffix) else None)
                for e in (endpoint, *endpoint.get("variants", ())):
                    if region and "{" not in e.get("hostname", "{"):
                        hosts.setdefault(e["hostname"], (prefix, region, scope.get("service")))
    return hosts


def _signing_names() -> dict[str, str]:
    return _service_index()[0]


def service_protocols(service: str) -> frozenset[str]:
    """botocore's wire protocols (``query``, ``rest-json``…) of the services signed as
    ``service``; empty for a name no model signs as."""
    return _service_index()[1].get(service, frozenset())


@cache
def _service_index() -> tuple[dict[str, str], dict[str, frozenset[str]]]:
    """endpointPrefix → signing name, and signing name → protocols, from every service model.
    Only each model's metadata is decoded: loading ~440 whole models took ~3 s and left the
    process ~300 MB larger for good (bench/README.md)."""
    signing: dict[str, str] = {}
    protocols: dict[str, set[str]] = {}
    for meta in _models_metadata():
        prefix = meta["endpointPrefix"]
        name = meta.get("signingName", prefix)
        signing.setdefault(prefix, name)
        protocols.setdefault(name, set()).update([meta["protocol"], *meta.get("protocols", ())])
    return signing, {k: frozenset(v) for k, v in protocols.items()}


def _models_metadata() -> Iterator[dict[str, Any]]:
    loader = create_loader()
    for service in loader.list_available_services("service-2"):
        version = loader.determine_latest_version(service, "service-2")
        yield _metadata(loader.search_paths, service, version)


def _metadata(search_paths: list[str], service: str, version: str) -> dict[str, Any]:
    """The ``metadata`` object of a service model, decoded alone from the file botocore would
    read (the first of its search paths that has it, plain or gzipped)."""
    for base in search_paths:
        for name, opener in (("service-2.json", open), ("service-2.json.gz", gzip.open)):
            path = Path(base, service, version, name)
            if path.is_file():
                with opener(path, "rt", encoding="utf-8") as f:
                    text = f.read()
                start = text.find("{", text.find('"metadata"'))
                try:
                    meta, _ = json.JSONDecoder().raw_decode(text, start)
                except ValueError:
                    break  # not the layout expected: botocore reads the whole file below
                if isinstance(meta, dict) and "endpointPrefix" in meta:
                    return meta
                break
    # Not where or how botocore keeps its files: a fresh loader (nothing kept) reads it.
    return create_loader().load_service_model(service, "service-2")["metadata"]  # type: ignore[no-any-return]


def load_botocore_data() -> None:
    """Read botocore's data now (~2.5 s, once per process): call it at start-up, off the event
    loop, so the first AWS request does not wait for it."""
    _service_index()
    _listed_hosts()
    for suffix in _SUFFIXES:
        _partitions(suffix)
