"""Settings, read once from the environment (prefix HULEI_) and an optional .env file."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HULEI_", env_file=".env", extra="ignore")

    # SQLite + SpatiaLite file under ./var/ unless DATABASE_URL points at PostgreSQL/PostGIS.
    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'hulei.db'}",
        validation_alias="DATABASE_URL",
    )
    spatialite_library: str = "mod_spatialite"

    # The master secret: access tokens, refresh successors, calendar feeds, photo links and cursors are
    # signed with keys derived from it, one per purpose (backend/core/secrets.py). Production refuses
    # the development default and any weak value (infra/README.md, "Secrets").
    jwt_secret: str = "dev-only-insecure-jwt-secret-change-me-0123456789"  # noqa: S105 - refused in production
    jwt_issuer: str = "hulei"
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    # A refresh whose answer was lost (2G) may be retried with the same token from the same device
    # for this long and gets the same pair; any other second use revokes the sign-in. 0 turns it off.
    # Keep it well under access_token_minutes: a retry returns the first answer's access token.
    refresh_reuse_grace_seconds: int = 60
    production: bool = False
    # Production serves /docs, /redoc and /openapi.json only when this is true (development always).
    api_docs: bool = False

    # Login throttling: this many failures inside the window lock the phone number.
    login_max_failures: int = 5
    login_failure_window_minutes: int = 15
    login_lockout_minutes: int = 15
    # Per address (everyone behind a NAT or the proxy): failures drain at this many per window; at
    # this many the address waits 1 s after each failure, doubling up to the cap, never locked.
    login_ip_max_failures: int = Field(default=50, ge=1)
    login_ip_max_delay_seconds: int = Field(default=60, ge=1)
    # argon2id cost (RFC 9106 "second recommended" by default). Hashes carry their parameters, so
    # raising these rehashes each password at its next sign-in; tests lower them to stay fast.
    password_hash_time_cost: int = 3
    password_hash_memory_kib: int = 65536
    password_hash_parallelism: int = 4
    # Memory the argon2 computations of one API process may take at once: budget // memory cost
    # hashes run together (at least one); a sign-in waits this long for a turn, then gets 503.
    password_hash_memory_budget_mib: int = Field(default=256, ge=1)
    password_hash_wait_seconds: float = Field(default=2.0, ge=0)

    # Resident ID numbers (issue 3): AES-GCM keys as "key_id:base64(32 bytes)" separated by commas,
    # the key new values are written with, and the HMAC key of the blind index. The development
    # defaults, and weak keys, are refused in production mode (backend/core/secrets.py).
    id_number_keys: str = "dev-1:ZGV2LW9ubHktaW5zZWN1cmUtaWQta2V5LTMyYnl0ZXM="
    id_number_active_key: str = "dev-1"
    id_number_index_key: str = "dev-only-insecure-blind-index-key-change-me"

    # Visits: a fix farther than this from the household, or less accurate, is flagged location_mismatch.
    visit_max_distance_m: float = 200.0
    # How far back sync pull sends a household's visit history (date, outcome, flags; no answers).
    sync_visit_history_days: int = 180
    # On PostgreSQL the pull's big kinds are written as JSON by the database (backend/sync/pg_records.py);
    # false builds every record in Python, as on SQLite (tests compare the two).
    sync_pull_json_in_database: bool = True
    # How long a police officer who opened a sealed record (backend/sealing) finds it by its id; 0: only the
    # answer to the opening carries it.
    sealed_opening_minutes: int = Field(default=30, ge=0, le=24 * 60)
    # A visit recorded offline for a household moved out of the recorder's area is kept this long after the move.
    sync_moved_record_grace_days: int = 30
    visit_max_accuracy_m: float = 100.0
    # Mandatory reports (强制报告): police must acknowledge and then handle within these windows.
    referral_receive_hours: int = 1
    referral_handle_hours: int = 72
    # Data minimisation over time (backend/registry/retention.py, the worker job registry.retention): a
    # child leaves the active registry on the first day of the month after its 18th birthday (unless a
    # case is open); this many years after that, its personal details are anonymised. Each
    # transaction of the job handles at most the batch size of records.
    retention_years: int = Field(default=3, ge=0)
    retention_batch_size: int = Field(default=500, ge=1)

    # Which clock places a record made on a phone in a reporting period (backend/core/placement.py):
    # the phone's own time, unless it is later than the server's receipt by more than the first bound,
    # earlier than receipt by more than the second (an offline week is normal; months back is a clock
    # reset to its firmware date), or before the earliest date (China time; the campaign's start). Then
    # the record is flagged clock_suspect and placed by its receipt time.
    device_clock_max_ahead_minutes: int = Field(default=10, ge=0)
    device_clock_max_age_days: int = Field(default=90, ge=1)
    device_clock_earliest_date: date = date(2025, 12, 22)

    # Ledger imports (附件1/2/3, backend/ledgers): at most this many bytes and rows of data, refused
    # before the rows are checked. A refused import (and the venue import) lists at most
    # import_max_errors problems, with their total and `errors_truncated`.
    ledger_import_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    ledger_import_max_rows: int = Field(default=20000, ge=1)
    import_max_errors: int = Field(default=200, ge=1)

    # Venue inspections (issue 5): a GPS fix farther than this from the venue is flagged.
    inspection_max_distance_m: float = 200.0

    # Push notifications (issue 6). Provider "log" (development default) or "fcm" (firebase-admin).
    push_provider: str = "log"
    fcm_credentials_file: str | None = None  # service-account JSON
    fcm_project_id: str | None = None  # defaults to the project in the service account
    fcm_endpoint: str | None = None  # base URL override (tests: the local fake FCM server)
    push_batch_size: int = 200
    # Phones kept per account: registering another removes the one seen least recently (one account
    # with many made-up tokens would otherwise multiply every push and spend the vendors' quotas).
    devices_per_user: int = Field(default=5, ge=1)
    push_lease_seconds: int = 120
    push_max_attempts: int = 8
    push_retry_base_seconds: float = 30.0
    push_retry_max_seconds: float = 3600.0
    push_http_timeout_seconds: float = 30.0
    # Vendor push channels (issue 19; backend/notifications/vendors). A channel is used when its
    # credentials are set. Unset, its phones' pushes are logged under push_provider "log" (development)
    # and otherwise fail with "channel not configured" (the inbox and the SMS fallback still stand).
    huawei_app_id: str | None = None  # Push Kit: the app's App ID; OAuth client id defaults to it
    huawei_client_id: str | None = None
    huawei_client_secret: str | None = None
    huawei_push_endpoint: str = "https://push-api.cloud.huawei.com"
    huawei_oauth_endpoint: str = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
    # HarmonyOS NEXT Push Kit v3 (channel "harmony"): the service-account key file from AppGallery
    # Connect (project_id, key_id, sub_account, private_key), or its fields one by one (these win).
    harmony_service_account_file: str | None = None
    harmony_project_id: str | None = None
    harmony_key_id: str | None = None
    harmony_sub_account: str | None = None
    harmony_private_key: str | None = None  # PEM (PKCS#8); "\n" escapes are read as line breaks
    harmony_push_endpoint: str = "https://push-api.cloud.huawei.com"
    harmony_category: str = "WORK"  # notification self-classification; WORK needs Huawei's approval
    xiaomi_app_secret: str | None = None  # MiPush: AppSecret, sent as "Authorization: key=..."
    xiaomi_package_name: str | None = None  # restricted_package_name
    xiaomi_endpoint: str = "https://api.xmpush.xiaomi.com"
    # The notification category (channel) Xiaomi approved for the app's private messages (私信/通知类消息):
    # sent as extra.channel_id. Without it MiPush counts our pushes as public messages, capped per day.
    xiaomi_channel_id: str | None = None
    honor_app_id: str | None = None
    honor_client_id: str | None = None
    honor_client_secret: str | None = None
    honor_push_endpoint: str = "https://push-api.cloud.honor.com"
    honor_oauth_endpoint: str = "https://iam.developer.honor.com/auth/token"
    oppo_app_key: str | None = None
    oppo_master_secret: str | None = None
    oppo_endpoint: str = "https://api.push.oppomobile.com"
    # The private-message channel (私信通道) OPPO approved for the app, sent as notification.channel_id;
    # without it pushes go as public messages, capped per phone and day.
    oppo_channel_id: str | None = None
    vivo_app_id: str | None = None
    vivo_app_key: str | None = None
    vivo_app_secret: str | None = None
    vivo_endpoint: str = "https://api-push.vivo.com.cn"
    # The system-message category vivo granted the app (e.g. TODO, ACCOUNT), sent as `category` beside
    # classification 1; vivo shows only system messages between 23:00 and 7:00.
    vivo_category: str | None = None
    # Public base URL of this server (https://host), for the delivery receipts channels post back;
    # unset, no receipts are asked for and "delivered" is not reported.
    push_receipt_base_url: str | None = None
    # SMS fallback (短信兜底) for critical notifications: one SMS when still unread after
    # sms_fallback_minutes, at most sms_daily_cap per recipient per China day. Provider "log"
    # (development default) or "http" (a generic government SMS gateway, configured below).
    sms_provider: str = "log"
    sms_fallback_minutes: int = Field(default=30, ge=1)
    sms_daily_cap: int = Field(default=10, ge=1)
    # 短信合并: one SMS covers every unread critical notification of a recipient. Within this many
    # minutes of an SMS, and until the recipient reads any notification, no further SMS goes to them
    # (their rows end `coalesced`). 0 sends one SMS per notification.
    sms_coalesce_minutes: int = Field(default=60, ge=0)
    sms_max_attempts: int = Field(default=6, ge=1)
    sms_retry_base_seconds: float = 60.0
    sms_retry_max_seconds: float = 3600.0
    # One gateway exchange (connect, then read, each up to this). Short: an SMS gateway answers at
    # once, and a read timeout leaves the SMS `unconfirmed` (never resent), so it must not be routine.
    sms_http_timeout_seconds: float = Field(default=10.0, gt=0)
    # The SMS text: generic, never anything about the child or the case (checked like push text).
    sms_text_zh: str = "【护蕾】您有一条重要待办事项，请尽快登录护蕾App查看处理。"
    sms_template_id: str | None = None  # platforms that send by registered template
    sms_gateway_url: str | None = None
    sms_gateway_content_type: str = "json"  # json | form
    # The request body, a JSON object whose string values may hold {phone}, {text}, {template_id},
    # {request_id} (hulei-sms-<row>-<hex ms>, for platforms that de-duplicate) and {timestamp}.
    sms_gateway_body_template: str = '{"phone": "{phone}", "content": "{text}", "requestId": "{request_id}"}'
    sms_gateway_username: str | None = None  # HTTP basic auth, when set
    sms_gateway_password: str | None = None
    sms_gateway_token: str | None = None  # sent as "Authorization: Bearer ..." when set
    # Success is a 2xx answer, and, when a field is named, that field of its JSON equal to the value.
    sms_gateway_success_field: str | None = None
    sms_gateway_success_value: str | None = None
    sms_gateway_message_id_field: str | None = None
    # "2112" online incidents: minutes for each hand-off down the chain and for feedback up.
    incident_province_to_city_minutes: int = 20
    incident_city_to_county_minutes: int = 10
    incident_county_to_local_minutes: int = 10
    incident_feedback_minutes: int = 120
    # Helpers (一对一/多对一 帮扶): answer window, follow-up interval per risk level, auto-confirm.
    helper_answer_hours: int = 24
    helper_auto_confirm: bool = False
    helper_followup_days_major: int = 7  # 重大风险
    helper_followup_days_high: int = 14  # 较大风险
    helper_followup_days_general: int = 30  # 一般风险
    helper_max_distance_km: float = 30.0
    # 附件2 risk persons under control: days from one police check-in to the next, by the person's
    # risk level (an unassessed person is checked as 一般风险); and the level the children of a
    # household are raised to (never lowered) when a risk person is linked to it.
    risk_person_check_days_severe: int = Field(default=7, ge=1)  # 重大风险
    risk_person_check_days_major: int = Field(default=7, ge=1)  # 较大风险
    risk_person_check_days_general: int = Field(default=30, ge=1)  # 一般风险
    risk_person_check_days_low: int = Field(default=90, ge=1)  # 低风险
    risk_person_link_child_level: Literal["low", "general", "major", "severe"] = "major"
    # Staff background checks (从业查询, issue 18): days from a staff member's last check to its next
    # periodic check.
    staff_check_interval_days: int = Field(default=365, ge=1, le=3660)
    # Full ID numbers one user may type per China day into staff writes that match by number (POST of a
    # member, each number-bearing row of a real import): each answers whether the number is listed at
    # the institution, so this bounds recovering a sealed number by enumeration.
    staff_typed_numbers_per_day: int = Field(default=2000, ge=1)

    # Media (issue 4): photos. Storage "local" keeps objects under media_root; "s3" uses an
    # S3-compatible server. Upload staging (resumable chunks) always lives under media_root/staging.
    media_root: Path = PROJECT_ROOT / "var" / "media"
    media_storage: Literal["local", "s3"] = "local"
    media_s3_endpoint: str | None = None
    media_s3_bucket: str = "hulei-media"
    media_s3_access_key: str | None = None
    media_s3_secret_key: str | None = None
    media_s3_region: str = "us-east-1"
    media_max_bytes: int = 20 * 1024 * 1024
    media_max_pixels: int = 60_000_000
    media_upload_expiry_hours: int = 24
    media_link_seconds: int = 300
    media_location_max_distance_m: float = 200.0
    # Unfinished (chunked, not yet complete, unexpired) uploads hold staging space for up to
    # media_upload_expiry_hours: a new one is refused beyond these, per user (429
    # media-too-many-unfinished: count, or bytes announced in Content-Range totals) and in all
    # (503 media-staging-full). 20 photos of 10 MB per phone; 5 GiB of staging disk in all.
    media_unfinished_max_per_user: int = Field(default=20, ge=1)
    media_unfinished_max_bytes_per_user: int = Field(default=200 * 1024 * 1024, ge=1)
    media_unfinished_max_bytes_total: int = Field(default=5 * 1024 * 1024 * 1024, ge=1)
    # A photo taken by a worker longer ago than this without being finished is presumed abandoned
    # (worker killed) and processed again by another; one photo takes seconds, at most.
    media_processing_lease_seconds: int = 120

    # Coverage and dashboard (issues 7, 17). Scopes with more grids, or (at the last refresh) more
    # households, than these read the summary (coverage_unit_stat, refreshed by the worker job
    # coverage.refresh) for phase and month periods when it is younger than the max age: a
    # 50,000-household town in milliseconds instead of most of a second. Smaller scopes and date
    # ranges are counted live, so a village's figures move as soon as a visit syncs.
    coverage_live_max_grids: int = 500
    coverage_live_max_households: int = 5000
    coverage_summary_max_age_minutes: int = 30
    coverage_max_points: int = 5000
    # Optional base layer for the dashboard map: a Leaflet URL template ({z}/{x}/{y}, {s} for
    # subdomains), its attribution, and whether its tiles are GCJ-02 (AMap/Tencent style): then the
    # page shifts the WGS-84 data onto GCJ-02 and clicks back. Tianditu (CGCS2000) is not shifted.
    basemap_url_template: str | None = None
    basemap_subdomains: str = ""
    basemap_attribution: str = ""
    basemap_gcj02: bool = False

    # Requests in flight per API process before it answers 503 server-busy; the thread pool is sized
    # above it so a request holding a database lock always finds a thread to finish on.
    api_max_in_flight: int = 64
    # A gzip request body (Content-Encoding: gzip) may expand to at most this many bytes; beyond it
    # is 413 (a compression bomb). A full push of 500 records is well under 2 MB.
    request_max_decompressed_bytes: int = 16 * 1024 * 1024
    # Request bodies are received in full before they take one of the api_max_in_flight places
    # (backend/core/body_reception.py). A body may take request_body_timeout_seconds, plus a second
    # for every request_body_min_rate bytes received (Apache's mod_reqtimeout rule: 500 B/s is a
    # tenth of what a 2G phone sends), may pause at most request_body_idle_seconds between two
    # reads, and never takes more than request_body_max_seconds in all (a 1 MB photo chunk on 2G
    # takes about 200 s); else 408 request-timeout. At most
    # request_body_receptions_per_client bodies are received at once from one client address (429
    # beyond) and request_body_receptions_max in all (503 server-busy beyond). A body longer than
    # request_max_body_bytes is 413 before it is read; unset, the largest legitimate body: a whole
    # photo, a gzip body's bound or a ledger file, whichever is larger, plus 1 MiB of form framing.
    # Only photo uploads and spreadsheet imports may send that much; every other route's body is
    # bounded by request_max_decompressed_bytes (body_reception.body_limits).
    request_body_timeout_seconds: float = Field(default=20.0, gt=0)
    request_body_min_rate: int = Field(default=500, ge=1)
    request_body_idle_seconds: float = Field(default=20.0, gt=0)
    request_body_max_seconds: float = Field(default=300.0, gt=0)
    request_body_receptions_per_client: int = Field(default=16, ge=1)
    request_body_receptions_max: int = Field(default=256, ge=1)
    request_max_body_bytes: int | None = Field(default=None, ge=1)
    # The reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (uvicorn's
    # forwarded_allow_ips: addresses or networks, comma separated, or "*"). List only the proxy's own
    # addresses: any other peer could name itself any client (infra/README.md, "Behind a proxy").
    forwarded_allow_ips: str = "127.0.0.1"

    def max_body_bytes(self) -> int:
        """The longest request body the API reads (request_max_body_bytes, or the largest legitimate)."""
        if self.request_max_body_bytes is not None:
            return self.request_max_body_bytes
        largest = max(self.media_max_bytes, self.request_max_decompressed_bytes, self.ledger_import_max_bytes)
        return largest + 1024 * 1024

    # Background jobs: a worker renews its claim on a running job every third of this; a worker
    # killed mid-job is replaced by another within one lease.
    job_lease_seconds: int = 60

    # Audit checkpoints (backend/audit/checkpoints.py, infra/README.md "Audit checkpoints"): the worker
    # signs the audit chain's head with Ed25519 and appends it to storage the database cannot write.
    # The private key is a file mounted only into the worker (PEM, or the raw 32-byte seed in base64);
    # production refuses to start the worker without it. Public keys ("base64,base64", as `hulei audit
    # keygen` prints them) let `hulei audit verify` run where the private key is not; old keys stay
    # listed after a rotation. Storage "local" is a directory; "s3" a bucket (object lock suggested)
    # on the media store's endpoint and credentials.
    audit_checkpoint_key_file: Path | None = None
    audit_checkpoint_public_keys: str = ""
    audit_checkpoint_storage: Literal["local", "s3"] = "local"
    audit_checkpoint_dir: Path = PROJECT_ROOT / "var" / "audit-checkpoints"
    audit_checkpoint_s3_bucket: str = "hulei-audit-checkpoints"
    audit_checkpoint_s3_prefix: str = "checkpoints/"
    # A new checkpoint when the chain has grown and the newest one is at least this old.
    audit_checkpoint_interval_minutes: int = Field(default=10, ge=1)
    # `hulei audit verify` fails ("anchoring stopped") when entries follow a checkpoint older than
    # 3 × the interval + this grace (or, in production, when a chain that old has no checkpoint).
    audit_checkpoint_grace_minutes: int = Field(default=10, ge=0)

    default_locale: str = "zh-CN"
    timezone: str = "Asia/Shanghai"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests clear the cache when they change the environment)."""
    return Settings()
