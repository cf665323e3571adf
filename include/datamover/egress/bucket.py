"""The dump bucket's rules from the seed: default encryption AES256 and a lifecycle rule that expires
objects after N days (14). `setup_bucket()` creates/applies them, `check_bucket()` reports what is
missing, `preflight()` combines both as the DAG needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from datamover.errors import ConfigError, ConnectionCheckError, CredentialsError
from datamover.s3 import create_bucket, error_code, is_auth_error

RULE_ID = "datamover-egress-expire"
ENCRYPTION_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
_NO_ENCRYPTION = ("ServerSideEncryptionConfigurationNotFoundError",)
_NO_LIFECYCLE = ("NoSuchLifecycleConfiguration",)
_NO_BUCKET = ("NoSuchBucket", "404", "NotFound")


@dataclass(frozen=True)
class BucketRules:
    lifecycle_days: int = 14
    prefix: str = ""  # the dump prefix; a lifecycle rule must cover it

    def encryption_configuration(self) -> dict[str, Any]:
        return {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}

    def lifecycle_rule(self) -> dict[str, Any]:
        return {
            "ID": RULE_ID,
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "Expiration": {"Days": self.lifecycle_days},
            # Parts of uploads that a killed worker could not abort go too.
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }


@dataclass
class BucketReport:
    bucket: str
    created: bool = False
    applied: bool = False
    problems: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def bucket_exists(client: Any, bucket: str, where: str = "the connection") -> bool:
    """`where` names the connection in errors (e.g. "connection 'aws_default' (http://...)")."""
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) in _NO_BUCKET:
            return False
        error = CredentialsError if is_auth_error(exc) else ConnectionCheckError
        raise error(
            f"Bucket {bucket!r}: HeadBucket refused with {error_code(exc)} via {where}. Fix: check that "
            "the connection's keys (login/password or role_arn) may access this bucket."
        ) from None
    return True


def _rule_covers(rule: dict[str, Any], prefix: str) -> bool:
    """True when an enabled rule applies to every object under `prefix` (no tag or size filter)."""
    if rule.get("Status") != "Enabled":
        return False
    if "Prefix" in rule:  # the legacy top-level form
        return prefix.startswith(rule["Prefix"] or "")
    flt = rule.get("Filter", {}) or {}
    if "Tag" in flt or "And" in flt or "ObjectSizeGreaterThan" in flt or "ObjectSizeLessThan" in flt:
        return False
    return prefix.startswith(flt.get("Prefix", "") or "")


def apply_rules(client: Any, bucket: str, rules: BucketRules) -> None:
    """Put default encryption and our lifecycle rule; other lifecycle rules of the bucket are kept."""
    client.put_bucket_encryption(
        Bucket=bucket, ServerSideEncryptionConfiguration=rules.encryption_configuration()
    )
    try:
        existing = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        if error_code(exc) not in _NO_LIFECYCLE:
            raise
        existing = []
    kept = [r for r in existing if r.get("ID") != RULE_ID]
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [*kept, rules.lifecycle_rule()]}
    )


def check_bucket(client: Any, bucket: str, rules: BucketRules) -> BucketReport:
    """What is missing on an existing bucket, in words that say how to fix it."""
    report = BucketReport(bucket)
    try:
        enc = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        algorithms = [
            r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in enc["Rules"]
        ]
    except ClientError as exc:
        if error_code(exc) not in _NO_ENCRYPTION:
            raise
        algorithms = []
    if any(a in ENCRYPTION_ALGORITHMS for a in algorithms):
        report.facts.append(f"default encryption {', '.join(a for a in algorithms if a)}")
    else:
        report.problems.append(
            f"bucket {bucket!r} has no default server-side encryption; put AES256 with "
            f"`aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration "
            '\'{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}\'` or trigger '
            "egress_dump with param setup_bucket=true"
        )
    try:
        lifecycle = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        if error_code(exc) not in _NO_LIFECYCLE:
            raise
        lifecycle = []
    expiring = [
        r for r in lifecycle if _rule_covers(r, rules.prefix) and (r.get("Expiration") or {}).get("Days")
    ]
    good = [r for r in expiring if r["Expiration"]["Days"] <= rules.lifecycle_days]
    if good:
        report.facts.append(f"objects expire after {min(r['Expiration']['Days'] for r in good)} days")
    elif expiring:
        days = min(r["Expiration"]["Days"] for r in expiring)
        report.problems.append(
            f"bucket {bucket!r} keeps objects {days} days, longer than the required {rules.lifecycle_days}; "
            "lower the lifecycle rule's Expiration Days or trigger egress_dump with param setup_bucket=true"
        )
    else:
        report.problems.append(
            f"bucket {bucket!r} has no enabled lifecycle rule expiring objects under "
            f"'{rules.prefix or '(all)'}' after {rules.lifecycle_days} days; add one with "
            "`aws s3api put-bucket-lifecycle-configuration` or trigger egress_dump with param "
            "setup_bucket=true"
        )
    return report


def preflight(
    client: Any,
    bucket: str,
    rules: BucketRules,
    *,
    create_missing: bool = True,
    apply: bool = False,
    enforce: bool = True,
    where: str = "the connection",
) -> BucketReport:
    """Create the bucket with its rules if missing (when allowed), apply the rules if asked, then check.
    Raises ConfigError (permanent: a retry will not add a rule) listing every problem when `enforce`."""
    created = False
    if not bucket_exists(client, bucket, where):
        if not create_missing:
            raise ConfigError(
                f"Bucket {bucket!r} does not exist. Fix: create it with its rules "
                "(bucket_rules.create_missing: true, or `aws s3api create-bucket`)."
            )
        create_bucket(client, bucket)
        created = True
    if created or apply:
        apply_rules(client, bucket, rules)
    report = check_bucket(client, bucket, rules)
    report.created, report.applied = created, created or apply
    if report.problems and enforce:
        raise ConfigError("Bucket preflight failed: " + "; ".join(report.problems) + ".")
    return report
