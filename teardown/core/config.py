"""The configuration model (``teardown.toml``): pure frozen dataclasses with safe defaults.

Loading and validation live in ``teardown.app.config``; the ``__pydantic_config__`` attributes are
plain dicts read by that validator (unknown keys are errors), so this module stays stdlib-only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from teardown.core.model import Kind, PullMethod, SnapshotKind
from teardown.core.paths import bad_name, root_of

_STRICT = {"extra": "forbid"}
_DURATION = re.compile(r"(\d+)\s*([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``90s``, ``30m``, ``1h``, ``2d`` or ``0``; ValueError
    naming the accepted forms otherwise."""
    m = _DURATION.fullmatch(text.strip())
    if m is None or len(m.group(1)) > 9:
        raise ValueError(f"{text!r} is not a duration (like 30m, 1h, 2d, or 0)")
    return int(m.group(1)) * _UNIT[m.group(2)]


class PrepaidPolicy(StrEnum):
    """What to do with a prepaid (yearly/monthly) resource."""

    UNSUBSCRIBE = "unsubscribe"
    """Release it now; a refund follows the billing rules."""
    KEEP_TO_EXPIRY = "keep_to_expiry"
    """Keep it until it expires: cancel auto-renew and unsubscribe renewals not yet in effect."""


class DestroyMethod(StrEnum):
    """Who destroys resources that came from a Pulumi stack."""

    PULUMI = "pulumi"
    """The Pulumi engine (Automation API, targeted destroy)."""
    CLOUD = "cloud"
    """The cloud API directly; the stack is reconciled afterwards (``pulumi refresh``)."""


@dataclass(frozen=True)
class ScopeConfig:
    """``[scope]``: what a run may touch at most.

    Example::

        [scope]
        name = "ci-env-42"
        max_resources = 50
        refuse_patterns = ["*prod*", "*live*"]
    """

    __pydantic_config__ = _STRICT
    name: str | None = None
    """Scope name (default: the stack's name, or the state file's stem)."""
    max_resources: int = 100
    """Refuse to plan more resources than this (blast-radius limit)."""
    refuse_patterns: tuple[str, ...] = ("*prod*",)
    """Scope names matching any of these glob patterns are refused."""
    refuse_tags: tuple[str, ...] = ("env=prod*", "environment=prod*", "stage=prod*")
    """``KEY=VALUE`` globs: a plan that includes a resource with such a tag is refused, whatever
    the scope is called. Names, keys and values are compared after Unicode normalisation and
    look-alike folding (full-width letters, and Cyrillic or Greek letters that look Latin, count
    as the Latin letters they look like)."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_resources <= 100_000:
            raise ValueError("max_resources must be 1 to 100000")
        for t in self.refuse_tags:
            if "=" not in t or not t.partition("=")[0]:
                raise ValueError(f"refuse_tags: {t!r} is not KEY=VALUE (globs allowed)")


@dataclass(frozen=True)
class TypesConfig:
    """``[types]``: how to treat types the planner does not know (I7).

    Example::

        [types]
        stateless = ["huaweicloud:Dns/recordset:Recordset"]
        accept_loss = ["urn:pulumi:dev::app::huaweicloud:Rds/instance:Instance::cache"]
        kinds = { "mycorp:index:Database" = "volume", "pulumi-python:dynamic:Resource" = "server" }
    """

    __pydantic_config__ = _STRICT
    stateless: tuple[str, ...] = ()
    """Type tokens that hold no data: destroyed without backup."""
    accept_loss: tuple[str, ...] = ()
    """URNs or resource names whose data may be lost without backup."""
    kinds: dict[str, Kind] = field(default_factory=dict)
    """Type token -> kind (``server``, ``volume``, ``address``, ``network``, ``stateless`` or
    ``unknown``), over the cloud's own table: what a state's or a hook's resource of that type
    is (a dynamic-provider resource, a type of your own provider). The properties of a type
    given here are read leniently (a field of an unexpected shape counts as absent)."""

    def __post_init__(self) -> None:
        values = [k.value for k in Kind]
        for token, kind in self.kinds.items():
            if not token.strip():
                raise ValueError("kinds: a type token must not be empty")
            if kind not in values:
                shown = ", ".join(values)
                raise ValueError(f"kinds: {token!r} = {kind!r} is not a kind (one of {shown})")
            if token in self.stateless and kind != Kind.STATELESS:
                raise ValueError(
                    f"kinds: {token!r} = {str(kind)!r}, but stateless lists it too: keep one"
                )


@dataclass(frozen=True)
class PullRule:
    """``[[backup.pull]]``: files to pull over SSH from the matching servers.

    Example::

        [[backup.pull]]
        name = "site"
        match = "web-*"
        paths = ["/var/www", "/etc/nginx"]
        excludes = ["*.log"]
        before = ["mysqldump --all-databases > /var/backups/all.sql"]
        after = []
    """

    __pydantic_config__ = _STRICT
    paths: tuple[str, ...] = ()
    paths_from_tag: str | None = None
    """Also pull the paths a server's tag lists (``;``-separated), e.g. ``backup.paths`` on
    your servers, or ``sandbox.data`` on the sandbox's."""
    name: str = "data"
    match: str = "*"
    """Glob over the server's name or URN."""
    tags: dict[str, str] = field(default_factory=dict)
    """All of these tags must be present with these values."""
    excludes: tuple[str, ...] = ()
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    method: PullMethod = PullMethod.TAR
    allow_empty: bool = False
    """Let a pull that verifies zero files count (by default it fails: it copied nothing)."""
    accept_refused: tuple[str, ...] = ()
    """Globs on the full path of entries the pull may refuse (special files, symlinks leaving
    the tree, unsafe names) without failing, e.g. ``["/var/lib/mysql/*.sock"]``; any other
    refused entry fails the pull."""

    def __post_init__(self) -> None:
        if not self.paths and not self.paths_from_tag:
            raise ValueError("give paths, or paths_from_tag")
        if not all(p.strip() for p in self.paths):
            raise ValueError("paths must not be empty strings")
        for p in self.paths:
            why = bad_name(root_of(p))
            if why:
                raise ValueError(f"paths: {p!r}: {why}")
        if not all(p.strip() for p in self.accept_refused):
            raise ValueError("accept_refused must not hold empty strings")


@dataclass(frozen=True)
class BackupConfig:
    """``[backup]``: the cloud-side backup kind, and SSH pulls.

    Example::

        [backup]
        snapshot = "cbr"      # cbr | image | evs | none
    """

    __pydantic_config__ = _STRICT
    snapshot: SnapshotKind = SnapshotKind.CBR
    pull: tuple[PullRule, ...] = ()
    retention_days: int = 30
    """Days the cloud keeps each cloud backup (sent with it; the vault bills per GB-month while
    it is kept). ``0`` keeps backups until someone deletes them: the plan warns, since they then
    bill forever."""
    reuse_within: str = "1h"
    """A backup of the same machine with the same settings, verified by another run (or a
    Pulumi hook) this recently, is reused instead of made again: ``30m``, ``1h``, ``2d``, or
    ``0`` to always back up anew. A reused backup is still re-checked before the destroy."""
    transfer: str = "via-runner"
    """How pulled files reach an object store (``[store] url``): ``via-runner`` (pulled over
    SSH to the runner, then uploaded) or ``push`` (the server uploads each file itself with
    ``curl`` to a presigned URL; the runner moves no payload bytes)."""

    def __post_init__(self) -> None:
        if self.transfer not in ("via-runner", "push"):
            raise ValueError(f"transfer must be 'via-runner' or 'push', not {self.transfer!r}")
        if not 0 <= self.retention_days <= 36_500:  # CBR's own bound
            raise ValueError("retention_days must be 0 (keep until deleted) to 36500")
        try:
            seconds = parse_duration(self.reuse_within)
        except ValueError as e:
            raise ValueError(f"reuse_within: {e}") from None
        if seconds > 365 * 86_400:
            raise ValueError("reuse_within: at most 365d (an older backup is not a backup)")

    @property
    def reuse_seconds(self) -> int:
        """``reuse_within`` in seconds."""
        return parse_duration(self.reuse_within)


@dataclass(frozen=True)
class DestroyConfig:
    """``[destroy]``: who destroys stack resources.

    Example::

        [destroy]
        method = "cloud"
    """

    __pydantic_config__ = _STRICT
    method: DestroyMethod = DestroyMethod.CLOUD


@dataclass(frozen=True)
class PricesConfig:
    """``[billing.prices]``: list prices the cloud's APIs do not return, used only for estimates
    of what keeps billing (labelled as estimates everywhere). Check your region's price page.

    Example::

        [billing.prices]
        backup_gb_month = 0.12
        public_ip_hour = 0.30
    """

    __pydantic_config__ = _STRICT
    backup_gb_month: Decimal = Decimal("0.10")
    """Backup vault storage per GB and month (the default is a round example figure, not a
    quote: set your region's price)."""
    public_ip_hour: Decimal | None = None
    """A pay-per-use public IP and its bandwidth per hour (None: unknown, reported so)."""
    object_storage_gb_month: Decimal | None = None
    """Object storage (``[store] url``) per GB and month, for what a run's pulls kept there cost
    (None: unknown, reported so)."""

    def __post_init__(self) -> None:
        for name in ("backup_gb_month", "public_ip_hour", "object_storage_gb_month"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 10**6:
                raise ValueError(f"{name} must be 0 to 1000000")


@dataclass(frozen=True)
class BillingConfig:
    """``[billing]``: the billing close policy.

    Example::

        [billing]
        prepaid = "unsubscribe"
        max_fee = 50
    """

    __pydantic_config__ = _STRICT
    prepaid: PrepaidPolicy = PrepaidPolicy.UNSUBSCRIBE
    cancel_pending_orders: bool = True
    cancel_auto_renew: bool = True
    max_fee: Decimal | None = None
    """Refuse to unsubscribe when the estimated handling fee is above this (currency units)."""
    attached_disks: str = "unsubscribe"
    """Separately bought disks attached to a server in scope: ``unsubscribe`` them too (they
    keep billing otherwise, R17), or ``keep`` them (reported as still billing)."""
    pending_orders: str = "targets"
    """Which orders pending payment to cancel: those touching the ``targets``, or every one of
    the ``account`` (a test account torn down as a whole)."""
    five_day_quota_used: int | None = None
    """Five-day full refunds already used this calendar year (10 a year, R6); the cloud has
    no API for it. Unset: unknown, and estimates say they assume none used."""
    public_ips: str = "release"
    """Public IPs bound to servers in scope: ``release`` them after their server is gone
    (pay-per-use: deleted; prepaid: unsubscribed), or ``keep`` them (reported as still
    billing)."""
    switch_to_pay_per_use: str = "cancel"
    """A prepaid resource kept to expiry that is set to switch to pay-per-use at expiry:
    ``cancel`` that switch (it then ends at expiry), or ``keep`` it (reported: it will bill by
    the hour after expiry)."""
    prices: PricesConfig = field(default_factory=PricesConfig)

    def __post_init__(self) -> None:
        if self.max_fee is not None and not 0 <= self.max_fee <= 10**9:
            raise ValueError("max_fee must be 0 to 1000000000")
        if self.attached_disks not in ("unsubscribe", "keep"):
            raise ValueError("attached_disks must be unsubscribe or keep")
        if self.pending_orders not in ("targets", "account"):
            raise ValueError("pending_orders must be targets or account")
        if self.five_day_quota_used is not None and not 0 <= self.five_day_quota_used <= 1000:
            raise ValueError("five_day_quota_used must be 0 or more")
        if self.public_ips not in ("release", "keep"):
            raise ValueError("public_ips must be release or keep")
        if self.switch_to_pay_per_use not in ("cancel", "keep"):
            raise ValueError("switch_to_pay_per_use must be cancel or keep")


@dataclass(frozen=True)
class SshConfig:
    """``[ssh]``: how SSH pulls connect. ~/.ssh/config applies under these settings.

    Example::

        [ssh]
        user = "root"
        identity_file = "~/.ssh/id_ed25519"
        known_hosts = ["~/.ssh/known_hosts_cloud"]
        jump = "ops@bastion.example.com"
    """

    __pydantic_config__ = _STRICT
    user: str | None = None
    identity_file: str | None = None
    known_hosts: tuple[str, ...] = ()
    """Read besides ~/.ssh/known_hosts (a sandbox profile adds its own file)."""
    auto_add_host_keys: bool = False
    """Accept unknown host keys and record them (never a changed one). Off: strict."""
    use_ssh_config: bool = True
    jump: str | None = None
    """A jump host ``[user@]host[:port]`` (ProxyJump)."""
    connect_timeout: float = 15.0
    command_timeout: float = 600.0
    """Seconds a ``before``/``after`` command (and each pull step) may take."""
    verify_with: str = "auto"
    """How the host checksums files: ``auto``, ``openssl``, ``sha256sum`` or ``sftp``."""
    client: str = "auto"
    """What carries a pull's ``tar`` streams: ``auto`` (OpenSSH's ``ssh``, pinned to the host
    key paramiko verified, when it is installed, there is no jump host and it logs in without a
    prompt; else paramiko) or ``paramiko`` (docs/ssh-pull.md)."""
    streams: int = 2
    """At most this many ``tar`` streams per pull at once, each with at least 64 MiB of files."""
    pass_env: tuple[str, ...] = ()
    """Environment variables ``before``/``after`` commands may use as ``${env:NAME}`` (sent on
    the command's standard input, never in its text). Cloud credentials can never be passed
    (``teardown.app.config`` refuses them, by the names the registered providers declare)."""

    def __post_init__(self) -> None:
        if self.verify_with not in ("auto", "openssl", "sha256sum", "sftp"):
            raise ValueError("verify_with must be auto, openssl, sha256sum or sftp")
        if self.client not in ("auto", "paramiko"):
            raise ValueError("client must be auto or paramiko")
        if not 1 <= self.streams <= 16:
            raise ValueError("streams must be 1 to 16")
        if not (0 < self.connect_timeout <= 3600 and 0 < self.command_timeout <= 86_400):
            raise ValueError("timeouts must be positive: connect at most 3600 s, command 86400 s")


@dataclass(frozen=True)
class StoreConfig:
    """``[store]``: where pulled backups are kept: a local directory (``path``), or object
    storage (``url``: Huawei OBS through its S3-compatible endpoint, or any S3 service).

    Example::

        [store]
        path = "/srv/backups/teardown"

    or, in a bucket (docs/object-store.md)::

        [store]
        url = "s3://team-teardown/ci"
        endpoint_url = "https://obs.cn-north-4.myhuaweicloud.com"
        region = "cn-north-4"
        access_key = "${env:OBS_ACCESS_KEY}"
        secret_key = "${env:OBS_SECRET_KEY}"
    """

    __pydantic_config__ = _STRICT
    _BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
    _IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
    _REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
    _STORAGE_CLASS = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
    URL_FORM = (
        "url must be s3://BUCKET or s3://BUCKET/PREFIX: a bucket name of 3 to 63 lowercase "
        "letters, digits, dots and hyphens that starts and ends with a letter or digit, and a "
        "prefix of /-separated names (none empty, '.' or '..')"
    )
    path: str = ".teardown/backups"
    """The local store's directory (relative to the working directory); unused with ``url``."""
    url: str | None = None
    """``s3://bucket[/prefix]``: keep backups, journal snapshots and reports in this bucket,
    under this prefix. None: the local store at ``path``."""
    endpoint_url: str | None = None
    """The S3 endpoint (``https://...``; as boto3 names it). None: the AWS endpoint of
    ``region``. ``http://`` only for a test server on loopback."""
    region: str | None = None
    """The region requests are signed for (``cn-north-4``, ``eu-west-1``). None: boto3's
    default (``AWS_DEFAULT_REGION``, the shared config)."""
    access_key: str | None = None
    """``${env:NAME}``: the variable holding the access key id, never the key itself. None
    (with ``secret_key`` None): boto3's standard credential chain, ``AWS_ACCESS_KEY_ID`` /
    ``AWS_SECRET_ACCESS_KEY`` first."""
    secret_key: str | None = None
    """``${env:NAME}``: the variable holding the secret access key, never the key itself."""
    sse: str = "AES256"
    """Server-side encryption asked for on every object: ``AES256`` (keys the service
    manages: SSE-S3, SSE-OBS), ``aws:kms`` (the bucket's KMS key), or ``none`` (the bucket's
    default encryption, if any)."""
    storage_class: str | None = None
    """The storage class of backup objects (``STANDARD``, ``STANDARD_IA``...). None: the
    bucket's default. An archive class (``GLACIER``, ``DEEP_ARCHIVE``) cannot be read back
    without a restore, so a backup in it cannot be re-read to verify it."""
    retention_days: int | None = None
    """Days backups are meant to stay in the store (None: until deleted). Recorded for a
    lifecycle rule on the backups prefix; teardown itself deletes nothing on this count."""

    def __post_init__(self) -> None:
        if self.url is None:
            s3_only = ("endpoint_url", "region", "access_key", "secret_key", "storage_class")
            given = [n for n in (*s3_only, "retention_days") if getattr(self, n) is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: only for an s3:// store (set url)")
        elif self.split_url(self.url) is None:
            raise ValueError(self.URL_FORM)
        if self.endpoint_url is not None:
            problem = self._endpoint_problem(self.endpoint_url)
            if problem:
                raise ValueError(problem)
        if self.region is not None and not self._REGION.fullmatch(self.region):
            raise ValueError("region must be lowercase letters, digits and hyphens (cn-north-4)")
        for name in ("access_key", "secret_key"):
            value = getattr(self, name)
            if value is not None and not ENV_REF.fullmatch(value):
                # The value may be the secret itself: never repeat it.
                raise ValueError(
                    f"{name} must be an ${{env:NAME}} reference to the variable that holds it; "
                    "a key written in the file is refused (not shown)"
                )
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError("give both access_key and secret_key, or neither")
        if self.sse not in ("AES256", "aws:kms", "none"):
            raise ValueError("sse must be AES256, aws:kms or none")
        if self.storage_class is not None and not self._STORAGE_CLASS.fullmatch(self.storage_class):
            raise ValueError("storage_class must be an S3 storage class name, like STANDARD_IA")
        if self.retention_days is not None and not 1 <= self.retention_days <= 36_500:
            raise ValueError("retention_days must be 1 to 36500 (or unset: until deleted)")

    @property
    def bucket(self) -> str | None:
        """The bucket of ``url`` (None: the local store)."""
        parts = None if self.url is None else self.split_url(self.url)
        return None if parts is None else parts[0]

    @property
    def prefix(self) -> str:
        """The key prefix of ``url``, without slashes at its ends (``""``: none, or local)."""
        parts = None if self.url is None else self.split_url(self.url)
        return "" if parts is None else parts[1]

    @classmethod
    def split_url(cls, url: str) -> tuple[str, str] | None:
        """``(bucket, prefix)`` of ``s3://bucket[/prefix]`` (the prefix without its slashes at
        the ends, ``""`` for none), or None when ``url`` is not of that shape (``URL_FORM``)."""
        from teardown.core.text import printable

        if not url.startswith("s3://"):
            return None
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        prefix = prefix.removesuffix("/")
        if not cls._BUCKET.fullmatch(bucket) or ".." in bucket or cls._IPV4.fullmatch(bucket):
            return None
        if prefix and (
            len(prefix.encode()) > 512
            or printable(prefix) != prefix
            or "\\" in prefix
            or any(part in ("", ".", "..") for part in prefix.split("/"))
        ):
            return None
        return bucket, prefix

    @staticmethod
    def _endpoint_problem(url: str) -> str | None:
        """Why ``url`` is not a usable ``endpoint_url``, or None."""
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            parts.port  # noqa: B018  (raises ValueError on a bad port)
        except ValueError:
            return "endpoint_url is not a URL (like https://obs.cn-north-4.myhuaweicloud.com)"
        if parts.scheme not in ("https", "http") or not host:
            return "endpoint_url must be an https:// URL with a host"
        if parts.username is not None or parts.password is not None:
            return "endpoint_url must not hold credentials (use access_key and secret_key)"
        if parts.query or parts.fragment:
            return "endpoint_url must not have a query or a fragment"
        loopback = host == "localhost" or host == "::1" or host.startswith("127.")
        if parts.scheme == "http" and not loopback:
            return "endpoint_url must be https:// (http:// only for a test server on loopback)"
        return None


@dataclass(frozen=True)
class JournalConfig:
    """``[journal]``: where the run journal lives.

    Example::

        [journal]
        path = ".teardown/journal.db"
    """

    __pydantic_config__ = _STRICT
    path: str = ".teardown/journal.db"
    """Relative paths are relative to the working directory."""


@dataclass(frozen=True)
class RunConfig:
    """``[run]``: execution.

    Example::

        [run]
        parallel = 4
    """

    __pydantic_config__ = _STRICT
    parallel: int = 4
    """How many resources are worked on at once."""
    poll_interval: float = 2.0
    """Seconds between status polls of cloud jobs, backups and releases."""
    claim_settle: float = 0.5
    """Seconds between claiming the resources (tags on them) and reading the claims back, so
    that two runs that started at the same moment both notice (0: do not wait)."""

    def __post_init__(self) -> None:
        if not 1 <= self.parallel <= 64:
            raise ValueError("parallel must be 1 to 64")
        if not 0 < self.poll_interval <= 3600:
            raise ValueError("poll_interval must be more than 0 and at most 3600 seconds")
        if not 0 <= self.claim_settle <= 60:
            raise ValueError("claim_settle must be 0 to 60 seconds")


@dataclass(frozen=True)
class SweepConfig:
    """``[sweep]``: ``teardown sweep`` over all scopes (each scope also obeys ``[scope]``).

    Example::

        [sweep]
        max_scopes = 20
        parallel_scopes = 8
    """

    __pydantic_config__ = _STRICT
    max_scopes: int = 50
    """Refuse the whole sweep when more scopes than this are selected (``--max-scopes``)."""
    parallel_scopes: int = 4
    """Scopes run at the same time (``--parallel-scopes``)."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_scopes <= 10_000:
            raise ValueError("max_scopes must be 1 to 10000")
        if not 1 <= self.parallel_scopes <= 64:
            raise ValueError("parallel_scopes must be 1 to 64")


@dataclass(frozen=True)
class Config:
    """The whole ``teardown.toml``. Every table is optional."""

    __pydantic_config__ = _STRICT
    scope: ScopeConfig = field(default_factory=ScopeConfig)
    types: TypesConfig = field(default_factory=TypesConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    destroy: DestroyConfig = field(default_factory=DestroyConfig)
    billing: BillingConfig = field(default_factory=BillingConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    run: RunConfig = field(default_factory=RunConfig)
    ssh: SshConfig = field(default_factory=SshConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)

    def __post_init__(self) -> None:
        # ``${env:NAME}`` in a pull rule's commands: only what [ssh] pass_env allows.
        for rule in self.backup.pull:
            for command in (*rule.before, *rule.after):
                for name in dict.fromkeys(ENV_REF.findall(command)):
                    if name not in self.ssh.pass_env:
                        raise ValueError(
                            f"backup.pull {rule.name!r}: ${{env:{name}}} is not in ssh.pass_env "
                            f'(add pass_env = ["{name}"] under [ssh] to send it)'
                        )
