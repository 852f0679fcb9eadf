"""worker/settings.py: defaults, validation by variable name, and a light import."""

from __future__ import annotations

import pytest

from worker.settings import Settings, SettingsError

URL_VARIABLES = ("TWILIO_API_BASE_URL", "DIALER_PUBLIC_URL")


def settings_error(env: dict[str, str], name: str) -> str:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert name in message, f"{message!r} does not name {name}"
    return message


# --- defaults -----------------------------------------------------------------------------


def test_defaults_equal_the_design_table(monkeypatch):
    # from_env reads only the mapping it is given, never os.environ.
    monkeypatch.setenv("DIALER_CALLS_PER_SECOND", "9")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "ACfromtheenvironment")
    s = Settings.from_env({})
    assert s.twilio_account_sid is None
    assert s.twilio_auth_token is None
    assert s.twilio_api_base_url == "https://api.twilio.com"
    assert s.public_url == "http://localhost:5000"
    assert s.database_url == "sqlite:///dialer.db"
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.calls_per_second == 1
    assert s.default_from is None
    assert s.max_attempts == 3
    assert s.retry_delays == (300, 900, 3600)
    assert s.retry_on == ("busy", "no-answer", "failed")
    assert s.status_callback_url == "http://localhost:5000/twilio/status"
    assert s.status_callback_events == ("answered", "completed")


def test_empty_and_blank_values_mean_the_default():
    names = ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_BASE_URL",
             "DIALER_PUBLIC_URL", "DIALER_DATABASE_URL", "DIALER_REDIS_URL",
             "DIALER_CALLS_PER_SECOND", "DIALER_DEFAULT_FROM", "DIALER_MAX_ATTEMPTS",
             "DIALER_RETRY_DELAYS", "DIALER_RETRY_ON", "DIALER_STATUS_CALLBACK_EVENTS"]
    assert Settings.from_env(dict.fromkeys(names, "")) == Settings.from_env({})
    assert Settings.from_env(dict.fromkeys(names, "  ")) == Settings.from_env({})


def test_every_variable_is_read():
    env = {
        "TWILIO_ACCOUNT_SID": "AC123",
        "TWILIO_AUTH_TOKEN": "secret",
        "TWILIO_API_BASE_URL": "http://127.0.0.1:8099/",
        "DIALER_PUBLIC_URL": " https://dialer.example.com/ ",
        "DIALER_DATABASE_URL": "postgresql+psycopg://dialer@db:5432/dialer",
        "DIALER_REDIS_URL": "redis://redis.internal:6380/2",
        "DIALER_CALLS_PER_SECOND": "5",
        "DIALER_DEFAULT_FROM": " +14155550100 ",
        "DIALER_MAX_ATTEMPTS": "7",
        "DIALER_RETRY_DELAYS": "5, 10,20",
        "DIALER_RETRY_ON": "busy, no-answer",
        "DIALER_STATUS_CALLBACK_EVENTS": "ringing completed",
    }
    s = Settings.from_env(env)
    assert s.twilio_account_sid == "AC123"
    assert s.twilio_auth_token == "secret"
    assert s.twilio_api_base_url == "http://127.0.0.1:8099"
    assert s.public_url == "https://dialer.example.com"
    assert s.database_url == "postgresql+psycopg://dialer@db:5432/dialer"
    assert s.redis_url == "redis://redis.internal:6380/2"
    assert s.calls_per_second == 5
    assert s.default_from == "+14155550100"
    assert s.max_attempts == 7
    assert s.retry_delays == (5, 10, 20)
    assert s.retry_on == ("busy", "no-answer")
    assert s.status_callback_events == ("ringing", "completed")


# --- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", URL_VARIABLES)
@pytest.mark.parametrize("value", ["https://example.com", "http://127.0.0.1:5000",
                                   "https://example.com/prefix"])
def test_http_urls_accepted(name, value):
    assert getattr(Settings.from_env({name: value + "/"}),
                   "twilio_api_base_url" if name.startswith("TWILIO") else "public_url") == value


@pytest.mark.parametrize("name", URL_VARIABLES)
@pytest.mark.parametrize(
    "value",
    [
        "api.twilio.com",
        "localhost:5000",
        "ftp://example.com",
        "redis://localhost:6379",
        "http://",
        "https:///path",
        "http://:5000/",
    ],
)
def test_malformed_http_urls_name_the_variable(name, value):
    settings_error({name: value}, name)


@pytest.mark.parametrize("name", URL_VARIABLES)
@pytest.mark.parametrize("value", ["http://localhost:abc", "https://example.com:99999",
                                   "http://[::1"])
def test_http_urls_with_a_malformed_port_or_host_name_the_variable(name, value):
    settings_error({name: value}, name)


@pytest.mark.parametrize("value", ["redis://localhost:6379/0", "rediss://cache.example.com:6380/1",
                                   "unix:///run/redis.sock"])
def test_redis_urls_accepted(value):
    assert Settings.from_env({"DIALER_REDIS_URL": value}).redis_url == value


@pytest.mark.parametrize("value", ["localhost:6379", "http://localhost:6379", "redis://",
                                   "memcached://localhost", "redis://[::1"])
def test_malformed_redis_urls_name_the_variable(value):
    settings_error({"DIALER_REDIS_URL": value}, "DIALER_REDIS_URL")


@pytest.mark.parametrize("value", ["sqlite:///dialer.db", "sqlite://", "sqlite:////tmp/x.db",
                                   "sqlite:///:memory:",
                                   "postgresql+psycopg://postgres@127.0.0.1:5432/dialer",
                                   "postgresql://u:p@db/dialer", "mysql+pymysql://u@h/db"])
def test_database_urls_accepted(value):
    assert Settings.from_env({"DIALER_DATABASE_URL": value}).database_url == value


@pytest.mark.parametrize("value", ["dialer.db", "sqlite:dialer.db", "postgresql", "://x",
                                   "1sql:///x", "sqlite:/dialer.db", "post gres://h/db"])
def test_malformed_database_urls_name_the_variable(value):
    settings_error({"DIALER_DATABASE_URL": value}, "DIALER_DATABASE_URL")


# --- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("5", 5), ("0.5", 0.5), (" 2.5 ", 2.5),
                                               ("1e1", 10)])
def test_calls_per_second_accepted(raw, expected):
    assert Settings.from_env({"DIALER_CALLS_PER_SECOND": raw}).calls_per_second == expected


@pytest.mark.parametrize("raw", ["0", "0.0", "-1", "abc", "1/2", "nan", "NaN", "inf",
                                 "-inf", "Infinity", "1,5"])
def test_malformed_calls_per_second_names_the_variable(raw):
    settings_error({"DIALER_CALLS_PER_SECOND": raw}, "DIALER_CALLS_PER_SECOND")


@pytest.mark.parametrize("raw", ["0", "-1", "2.5", "three", "nan", "inf", "1e3", "101",
                                 "100000000000000000000"])
def test_malformed_max_attempts_names_the_variable(raw):
    settings_error({"DIALER_MAX_ATTEMPTS": raw}, "DIALER_MAX_ATTEMPTS")


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("DIALER_TWILIO_TIMEOUT", "0"),
        ("DIALER_TWILIO_TIMEOUT", "nan"),
        ("DIALER_MAX_PACING_WAIT", "-5"),
        ("DIALER_MAX_PACING_WAIT", "inf"),
        ("DIALER_QUEUED_STALE_SECONDS", "soon"),
        ("DIALER_DISPATCH_INTERVAL", "0"),
        ("DIALER_TRUSTED_PROXIES", "-1"),
        ("DIALER_TRUSTED_PROXIES", "1.5"),
        ("DIALER_VISIBILITY_TIMEOUT", "0"),
        ("DIALER_WEBHOOK_MAX_BODY", "100"),
        ("DIALER_RECONCILE_INTERVAL", "nan"),
        ("DIALER_RECONCILE_SILENCE", "-1"),
        ("DIALER_UNKNOWN_GRACE", "x"),
    ],
)
def test_other_malformed_numbers_name_the_variable(name, raw):
    settings_error({name: raw}, name)


def test_pace_margin_defaults_to_half_a_percent():
    assert Settings.from_env({}).pace_margin == 0.005


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("0.01", 0.01), (" 0.05 ", 0.05),
                                               ("5e-3", 0.005)])
def test_pace_margin_accepted(raw, expected):
    assert Settings.from_env({"DIALER_PACE_MARGIN": raw}).pace_margin == expected


@pytest.mark.parametrize(("raw", "why"), [("-0.001", "at least 0"), ("0.051", "at most 0.05"),
                                          ("5", "at most 0.05"), ("1%", "a number"),
                                          ("nan", "at least 0"), ("inf", "at least 0")])
def test_malformed_pace_margin_names_the_variable(raw, why):
    assert why in settings_error({"DIALER_PACE_MARGIN": raw}, "DIALER_PACE_MARGIN")


# --- retry policy -------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [("0", (0,)), ("5,10", (5, 10)),
                                               (" 60 , 120 ", (60, 120))])
def test_retry_delays_accepted(raw, expected):
    assert Settings.from_env({"DIALER_RETRY_DELAYS": raw}).retry_delays == expected


@pytest.mark.parametrize("raw", ["5,-1", "-5", "a,b", "5,,10", "1.5", ",", "5;10", "300s",
                                 "1000000000000", "2592001", ",".join(["5"] * 101)])
def test_malformed_retry_delays_name_the_variable(raw):
    settings_error({"DIALER_RETRY_DELAYS": raw}, "DIALER_RETRY_DELAYS")


@pytest.mark.parametrize("raw", ["busy,completed", "ringing", "no_answer", "BUSY", "canceled"])
def test_malformed_retry_on_names_the_variable(raw):
    message = settings_error({"DIALER_RETRY_ON": raw}, "DIALER_RETRY_ON")
    assert "busy" in message and "no-answer" in message and "failed" in message


# --- status callback events ---------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("completed", ("completed",)),
    ("answered completed", ("answered", "completed")),
    ("completed,answered", ("answered", "completed")),  # Twilio's order, whatever the given
    (" initiated, ringing  answered,completed ", ("initiated", "ringing", "answered",
                                                  "completed")),
    ("completed completed", ("completed",)),
])
def test_status_callback_events_accepted(raw, expected):
    settings = Settings.from_env({"DIALER_STATUS_CALLBACK_EVENTS": raw})
    assert settings.status_callback_events == expected


@pytest.mark.parametrize("raw", ["answered", "initiated ringing", ","])
def test_status_callback_events_without_completed_name_the_variable(raw):
    message = settings_error({"DIALER_STATUS_CALLBACK_EVENTS": raw},
                             "DIALER_STATUS_CALLBACK_EVENTS")
    assert "completed" in message


@pytest.mark.parametrize("raw", ["in-progress completed", "queued,completed", "COMPLETED",
                                 "completed busy", "answered;completed"])
def test_unknown_status_callback_events_name_the_variable(raw):
    message = settings_error({"DIALER_STATUS_CALLBACK_EVENTS": raw},
                             "DIALER_STATUS_CALLBACK_EVENTS")
    assert "initiated, ringing, answered, completed" in message


# --- credentials and the callback URL -----------------------------------------------------


def test_require_twilio_names_the_missing_account_sid():
    message = settings_error_from(Settings.from_env({"TWILIO_AUTH_TOKEN": "secret"}))
    assert "TWILIO_ACCOUNT_SID" in message
    assert "secret" not in message


def test_require_twilio_names_the_missing_auth_token():
    for token in (None, "", "   "):
        env = {"TWILIO_ACCOUNT_SID": "AC123"}
        if token is not None:
            env["TWILIO_AUTH_TOKEN"] = token
        message = settings_error_from(Settings.from_env(env))
        assert "TWILIO_AUTH_TOKEN" in message
        assert "TWILIO_ACCOUNT_SID" not in message


def test_require_twilio_with_nothing_set_names_a_variable():
    message = settings_error_from(Settings.from_env({}))
    assert "TWILIO_ACCOUNT_SID" in message or "TWILIO_AUTH_TOKEN" in message


def settings_error_from(settings: Settings) -> str:
    with pytest.raises(SettingsError) as info:
        settings.require_twilio()
    return str(info.value)


def test_require_twilio_returns_the_credentials():
    s = Settings.from_env({"TWILIO_ACCOUNT_SID": " AC123 ", "TWILIO_AUTH_TOKEN": "tok"})
    assert s.require_twilio() == ("AC123", "tok")


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("https://dialer.example.com", "https://dialer.example.com/twilio/status"),
        ("https://dialer.example.com/", "https://dialer.example.com/twilio/status"),
        ("https://example.com/dialer/", "https://example.com/dialer/twilio/status"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000/twilio/status"),
    ],
)
def test_status_callback_url(public_url, expected):
    assert Settings.from_env({"DIALER_PUBLIC_URL": public_url}).status_callback_url == expected


def test_settings_error_is_a_value_error():
    assert issubclass(SettingsError, ValueError)


def test_public_url_with_an_underscore_in_its_host_is_refused_by_name():
    with pytest.raises(SettingsError, match=r"DIALER_PUBLIC_URL.*underscore"):
        Settings.from_env({"DIALER_PUBLIC_URL": "https://my_dialer.example.com"})
