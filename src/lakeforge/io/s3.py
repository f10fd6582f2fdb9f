"""Object storage: S3A settings for Spark, boto3 clients, URIs and object versions.

Spark reaches ``s3a://`` through Hadoop's S3A connector (jar bundle ``s3``); boto3 does
what S3A cannot: upload with multipart and checksums (:mod:`lakeforge.io.landing`), read
an object's version id and ETag, fetch an old version. Both are configured from one
:class:`~lakeforge.config.models.S3Settings` and take credentials from the same place:
the environment, an AWS profile or the default provider chain. No credential is ever put
into a Spark or Hadoop setting, so none can show in the Spark UI's environment tab, a
log line that prints the conf, or a system table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lakeforge.config.models import S3Settings
from lakeforge.config.uris import S3, S3A
from lakeforge.errors import Code, StorageError

# The AWS SDK's own chain (system properties, AWS_* variables, web identity, AWS_PROFILE
# and ~/.aws, container and instance roles): what boto3 looks through too. Hadoop's
# default list starts with providers that read keys from the Hadoop configuration,
# which lakeforge never fills.
CREDENTIALS_PROVIDER = "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"


def s3a_conf(settings: S3Settings) -> dict[str, str]:
    """The ``spark.hadoop.fs.s3a.*`` settings for ``settings`` (no credential among them)."""
    conf = {
        "fs.s3a.endpoint.region": settings.region,
        "fs.s3a.path.style.access": str(settings.path_style).lower(),
        "fs.s3a.connection.ssl.enabled": str(settings.tls).lower(),
        "fs.s3a.aws.credentials.provider": CREDENTIALS_PROVIDER,
        # A batch job should fail in seconds when the store is down, not after S3A's
        # default 7 retries of 5 SDK attempts each; a profile's spark.conf can raise them.
        "fs.s3a.retry.limit": "2",
        "fs.s3a.attempts.maximum": "2",
        "fs.s3a.connection.establish.timeout": "10s",
    }
    if settings.endpoint:
        conf["fs.s3a.endpoint"] = settings.endpoint
    return {f"spark.hadoop.{k}": v for k, v in conf.items()}


def delta_rs_options(
    endpoint: str | None, region: str, tls: bool, path_style: bool
) -> dict[str, str]:
    """delta-rs's ``storage_options`` for the same store S3A reaches (credentials, as for
    S3A and boto3, from the environment). Commits are conditional puts (``If-None-Match``):
    a second writer of the same version is refused by the store, never overwrites."""
    options = {"AWS_REGION": region, "conditional_put": "etag"}
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        if not tls:
            options["AWS_ALLOW_HTTP"] = "true"
    if path_style:
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    return options


def delta_rs_failure(exc: BaseException, endpoint: str | None, uri: str) -> StorageError | None:
    """The object-storage error in a delta-rs failure on ``uri`` (an s3:// URI), or None.

    delta-rs (object_store) raises ``OSError`` with a chain of causes in its text
    (``error sending request ... Connection refused``); no credential is in it.
    """
    text = str(exc)
    where = uri.replace(S3, S3A, 1)
    at = (endpoint or "its endpoint").split("://", 1)[-1]
    if any(m in text for m in ("error sending request", "Connection refused", "tcp connect")):
        return StorageError(
            Code.STORAGE_UNREACHABLE,
            f"the object store at {at} does not answer ({where})",
            "is the server running and the profile's s3.endpoint right?",
        )
    if "NoSuchBucket" in text:
        return StorageError(Code.BUCKET_MISSING, f"no bucket for {where} at {at}")
    if any(m in text for m in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")):
        return StorageError(
            Code.STORAGE_DENIED,
            f"the object store refused access to {where}",
            "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's policy",
        )
    if "S3" in text or "HTTP" in text:
        return StorageError(Code.STORAGE_FAILED, f"{where}: {text.splitlines()[0]}")
    return None


def is_object_uri(value: str) -> bool:
    return value.startswith((S3, S3A))


def split_uri(uri: str) -> tuple[str, str]:
    """``s3a://bucket/a/b`` (or ``s3://``) -> ``("bucket", "a/b")``.

    Raises:
        ValueError: not an s3:// or s3a:// URI, or no bucket.
    """
    for scheme in (S3A, S3):
        if uri.startswith(scheme):
            rest = uri[len(scheme) :]
            bucket, _, key = rest.partition("/")
            if not bucket:
                break
            return bucket, key
    raise ValueError(f"{uri!r} is not an s3a://bucket/key URI")


def s3a_uri(bucket: str, key: str) -> str:
    return f"{S3A}{bucket}/{key}"


def client(settings: S3Settings) -> Any:
    """A boto3 S3 client for ``settings``; credentials from boto3's default chain."""
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=settings.region,
        s3={"addressing_style": "path" if settings.path_style else "auto"},
        retries={"max_attempts": 3, "mode": "standard"},
        # Integrity: boto3 computes a CRC for each upload and the server checks it.
        request_checksum_calculation="when_supported",
        response_checksum_validation="when_supported",
    )
    return boto3.session.Session().client("s3", endpoint_url=settings.endpoint, config=config)


@dataclass(frozen=True)
class ObjectVersion:
    """One object version: where, which, and its bytes' ETag and size."""

    bucket: str
    key: str
    version_id: str | None  # None: the bucket is not versioned
    etag: str
    size: int

    @property
    def uri(self) -> str:
        return s3a_uri(self.bucket, self.key)


def head(s3: Any, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion:
    """The current (or the given) version of ``bucket/key``."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    meta = s3.head_object(**kwargs)
    vid = meta.get("VersionId")
    return ObjectVersion(
        bucket=bucket,
        key=key,
        version_id=None if vid in (None, "null") else str(vid),
        etag=str(meta["ETag"]).strip('"'),
        size=int(meta["ContentLength"]),
    )


def versioning_enabled(s3: Any, bucket: str) -> bool:
    return s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"


_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"}
_MISSING = {"NoSuchKey", "NoSuchVersion", "404", "NotFound"}


def where(settings: S3Settings) -> str:
    """The endpoint as users name it (AWS's regional one when none is set)."""
    return settings.endpoint or f"AWS S3 ({settings.region})"


def storage_error(exc: BaseException, settings: S3Settings, what: str) -> StorageError:
    """One coded line for a boto3/botocore failure of ``what`` (e.g. ``upload s3://b/k``).

    botocore's messages carry no credentials (a signature mismatch names neither key),
    so they are kept; the endpoint is named so a wrong one is obvious.
    """
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, ClientError):
        # upload_file wraps the server's answer (without `from`): classify the answer.
        exc = exc.__context__
    endpoint = where(settings)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return StorageError(
            Code.STORAGE_DENIED,
            f"{what}: no credentials for {endpoint}",
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
        )
    if isinstance(exc, ConnectionError):
        return StorageError(
            Code.STORAGE_UNREACHABLE,
            f"{what}: the object store at {endpoint} does not answer ({type(exc).__name__})",
            "is the server running and the profile's s3.endpoint right?",
        )
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        message = str(err.get("Message", "")) or code
        if code == "NoSuchBucket":
            return StorageError(
                Code.BUCKET_MISSING,
                f"{what}: no bucket '{err.get('BucketName', '') or '?'}' at {endpoint}",
                "check the bucket name in the URI or profile, or create the bucket",
            )
        if code in _DENIED:
            return StorageError(
                Code.STORAGE_DENIED,
                f"{what}: {endpoint} refused the credentials or the request ({code})",
                "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the "
                "bucket's policy",
            )
        if code in _MISSING:
            return StorageError(Code.OBJECT_MISSING, f"{what}: not found at {endpoint} ({code})")
        return StorageError(Code.STORAGE_FAILED, f"{what}: {endpoint} answered {code}: {message}")
    return StorageError(Code.STORAGE_FAILED, f"{what}: {type(exc).__name__}: {exc}")


_S3A_URI = re.compile(r"s3a://([A-Za-z0-9.\-_]+)(/[^\s`':]*)?")
_CONNECT = re.compile(r"(?:Connect to|connect to|Unable to connect to) ([\w.\-]+:\d+)")
_S3A_NO_BUCKET = ("UnknownStoreException", "NoSuchBucket")
_S3A_DENIED = (
    "AccessDeniedException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "Status Code: 403",
)
_S3A_UNREACHABLE = (
    "Unable to execute HTTP request",
    "ConnectException",
    "Connection refused",
    "AWSClientIOException",
    "SdkClientException",
)


def storage_failure(text: str) -> StorageError | None:
    """The object-storage error in a failure's text (S3A's exceptions), or None.

    One line with the bucket or endpoint and what to check, instead of S3A's wrapped Java
    exception (``UnknownStoreException: `s3a://b/x': getFileStatus on ...``).
    """
    uri = _S3A_URI.search(text)
    if uri is None and "s3a" not in text.lower():
        return None
    where = f"s3a://{uri.group(1)}{uri.group(2) or ''}" if uri else "s3a://"
    bucket = uri.group(1) if uri else "?"
    if any(marker in text for marker in _S3A_NO_BUCKET):
        return StorageError(
            Code.BUCKET_MISSING,
            f"no bucket '{bucket}' ({where})",
            "check the bucket name in the path or profile, or create the bucket",
        )
    if any(marker in text for marker in _S3A_DENIED):
        return StorageError(
            Code.STORAGE_DENIED,
            f"the object store refused access to {where}",
            "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the "
            "bucket's policy",
        )
    if any(marker in text for marker in _S3A_UNREACHABLE):
        endpoint = _CONNECT.search(text)
        at = endpoint.group(1) if endpoint else "its endpoint"
        return StorageError(
            Code.STORAGE_UNREACHABLE,
            f"the object store at {at} does not answer ({where})",
            "is the server running and the profile's s3.endpoint right?",
        )
    return None
