"""aws_hosts: the service, region and bucket a request goes to, from the host alone."""

from __future__ import annotations

import botocore.session
import pytest

from seks.addon.aws_hosts import (
    AWS_HOST_PATTERNS,
    UNKNOWN_REGION,
    AwsEndpoint,
    parse_aws_host,
    service_protocols,
)
from seks.addon.providers import host_matches

HOSTS = [
    # S3: path style, regional, legacy dash, dual-stack, FIPS
    ("s3.amazonaws.com", "s3", "us-east-1", None),
    ("s3.us-west-2.amazonaws.com", "s3", "us-west-2", None),
    ("s3-us-west-2.amazonaws.com", "s3", "us-west-2", None),
    ("s3-external-1.amazonaws.com", "s3", "us-east-1", None),
    ("s3.dualstack.eu-west-1.amazonaws.com", "s3", "eu-west-1", None),
    ("s3-fips.us-east-1.amazonaws.com", "s3", "us-east-1", None),
    ("s3-fips.dualstack.us-east-2.amazonaws.com", "s3", "us-east-2", None),
    # S3 virtual-hosted buckets
    ("bucket.s3.amazonaws.com", "s3", "us-east-1", "bucket"),
    ("my.dotted.bucket.s3.us-east-2.amazonaws.com", "s3", "us-east-2", "my.dotted.bucket"),
    ("bucket.s3-us-west-2.amazonaws.com", "s3", "us-west-2", "bucket"),
    ("bucket.s3.dualstack.eu-west-1.amazonaws.com", "s3", "eu-west-1", "bucket"),
    ("us-east-1.s3.amazonaws.com", "s3", "us-east-1", "us-east-1"),  # a bucket named so
    ("s3.s3.eu-west-1.amazonaws.com", "s3", "eu-west-1", "s3"),
    # Transfer Acceleration signs for the bucket's region, which the host does not name
    ("bucket.s3-accelerate.amazonaws.com", "s3", UNKNOWN_REGION, "bucket"),
    ("bucket.s3-accelerate.dualstack.amazonaws.com", "s3", UNKNOWN_REGION, "bucket"),
    # S3 Express One Zone, access points, S3 Control
    (
        "bucket--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com",
        "s3express",
        "us-west-2",
        "bucket--usw2-az1--x-s3",
    ),
    ("s3express-control.us-west-2.amazonaws.com", "s3express", "us-west-2", None),
    ("ap-123456789012.s3-accesspoint.eu-west-1.amazonaws.com", "s3", "eu-west-1", None),
    ("123456789012.s3-control.us-west-2.amazonaws.com", "s3", "us-west-2", None),
    # Global endpoints sign for their partition's region
    ("sts.amazonaws.com", "sts", "us-east-1", None),
    ("iam.amazonaws.com", "iam", "us-east-1", None),
    ("route53.amazonaws.com", "route53", "us-east-1", None),
    ("iam.us-gov.amazonaws.com", "iam", "us-gov-west-1", None),
    # Regional endpoints
    ("sts.us-east-2.amazonaws.com", "sts", "us-east-2", None),
    ("sts-fips.us-east-1.amazonaws.com", "sts", "us-east-1", None),
    ("dynamodb.us-east-1.amazonaws.com", "dynamodb", "us-east-1", None),
    ("sqs.us-east-1.amazonaws.com", "sqs", "us-east-1", None),
    ("lambda.eu-central-1.amazonaws.com", "lambda", "eu-central-1", None),
    ("ec2.ap-south-1.amazonaws.com", "ec2", "ap-south-1", None),
    ("s3.us-gov-west-1.amazonaws.com", "s3", "us-gov-west-1", None),
    ("ec2.eu-west-9.amazonaws.com", "ec2", "eu-west-9", None),  # a region botocore has not met
    # Signing names that are not the host's endpoint prefix
    ("runtime.sagemaker.us-east-1.amazonaws.com", "sagemaker", "us-east-1", None),
    ("bedrock-runtime.us-east-1.amazonaws.com", "bedrock", "us-east-1", None),
    ("email.eu-west-1.amazonaws.com", "ses", "eu-west-1", None),
    ("data-ats.iot.us-east-1.amazonaws.com", "iotdata", "us-east-1", None),
    ("monitoring.us-east-1.amazonaws.com", "monitoring", "us-east-1", None),
    ("a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com", "execute-api", "eu-west-1", None),
    ("search-logs-abc.eu-west-1.es.amazonaws.com", "es", "eu-west-1", None),
    # China
    ("s3.cn-north-1.amazonaws.com.cn", "s3", "cn-north-1", None),
    ("bucket.s3.cn-northwest-1.amazonaws.com.cn", "s3", "cn-northwest-1", "bucket"),
    ("sts.cn-north-1.amazonaws.com.cn", "sts", "cn-north-1", None),
    ("iam.cn-north-1.amazonaws.com.cn", "iam", "cn-north-1", None),
    ("route53.amazonaws.com.cn", "route53", "cn-northwest-1", None),
    # Case and a trailing dot do not matter
    ("STS.US-EAST-2.AMAZONAWS.COM", "sts", "us-east-2", None),
    ("Bucket.S3.US-WEST-2.amazonaws.com.", "s3", "us-west-2", "bucket"),
    ("sts.amazonaws.com.", "sts", "us-east-1", None),
]


@pytest.mark.parametrize(("host", "service", "region", "bucket"), HOSTS)
def test_an_aws_host_gives_its_signing_service_region_and_bucket(
    host: str, service: str, region: str, bucket: str | None
) -> None:
    assert parse_aws_host(host) == AwsEndpoint(service, region, bucket)


@pytest.mark.parametrize(
    "host",
    [
        "amazonaws.com.evil.com",
        "sts.amazonaws.com.evil.com",
        "evilamazonaws.com",
        "sts.evilamazonaws.com",
        "api.openai.com",
        "amazonaws.com",
        "amazonaws.com.cn",
        "us-east-1.amazonaws.com",
        "dualstack.us-east-1.amazonaws.com",
        "sts.us-east-1.amazonaws.com:443",
        "a..s3.amazonaws.com",
        "sts..amazonaws.com",
        "sts.us-east-1.amazonaws.com/x",
        "",
        # customer-run hosts under amazonaws.com name no AWS API
        "ec2-1-2-3-4.compute-1.amazonaws.com",
        "ec2-1-2-3-4.us-west-2.compute.amazonaws.com",
        "my-lb-123.us-east-1.elb.amazonaws.com",
        "bucket.s3-website-us-east-1.amazonaws.com",
        "bucket.s3-website.eu-west-1.amazonaws.com",
        # no service of that prefix, or a region of another partition
        "nosuchservice.us-east-1.amazonaws.com",
        "s3.cn-north-1.amazonaws.com",
        "s3.us-east-1.amazonaws.com.cn",
        "s3-notaregion.amazonaws.com",
        "s3-us-west-2.us-east-1.amazonaws.com",
    ],
)
def test_a_host_that_is_not_an_aws_api_is_not_understood(host: str) -> None:
    assert parse_aws_host(host) is None


def test_the_provider_patterns_cover_every_understood_host() -> None:
    for host, *_ in HOSTS:
        assert any(host_matches(p, host) for p in AWS_HOST_PATTERNS), host


@pytest.mark.parametrize(
    ("model", "signing_name"),
    [("sagemaker-runtime", "sagemaker"), ("bedrock-runtime", "bedrock"), ("sesv2", "ses")],
)
def test_the_signing_name_is_the_one_botocore_signs_with(model: str, signing_name: str) -> None:
    service_model = botocore.session.get_session().get_service_model(model)
    host = f"{service_model.endpoint_prefix}.us-east-1.amazonaws.com"
    assert service_model.signing_name == signing_name
    endpoint = parse_aws_host(host)
    assert endpoint is not None
    assert endpoint.service == signing_name


def test_service_protocols_are_those_of_every_model_signed_as_the_name() -> None:
    assert service_protocols("sts") == {"query"}
    assert "rest-json" in service_protocols("sagemaker")  # runtime.sagemaker
    assert "json" in service_protocols("sagemaker")  # api.sagemaker
    assert service_protocols("no-such-service") == frozenset()


@pytest.mark.parametrize("service", ["s3", "sts", "sagemaker-runtime", "bedrock-runtime", "sqs"])
def test_the_metadata_read_alone_is_what_botocore_loads(service: str) -> None:
    """The index decodes only each model's metadata (bench/README.md: whole models cost
    ~300 MB of RSS for good); it must be what botocore's own loader reads."""
    from botocore.loaders import create_loader

    from seks.addon.aws_hosts import _metadata

    loader = create_loader()
    version = loader.determine_latest_version(service, "service-2")
    full = loader.load_service_model(service, "service-2")["metadata"]
    assert _metadata(loader.search_paths, service, version) == full
