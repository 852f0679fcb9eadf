"""worker/domain/validation.py: every rule on what producers hand us, with no server.

Every error is a ValueError whose message starts with the field's name, so each
failing case below also asserts the prefix.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from worker.domain.validation import (
    CALL_OPTIONS,
    MAX_TWIML_BYTES,
    check_call_options,
    check_idempotency_key,
    check_max_attempts,
    check_metadata,
    check_retry_delays,
    check_retry_on,
    check_url,
    check_voice_instructions,
    normalize_from,
    normalize_to,
)

# Deterministic and without a database in the working tree.
FUZZ = hsettings(derandomize=True, database=None, max_examples=300, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


def error_of(field: str, fn: Any, *args: Any, **kwargs: Any) -> str:
    """Call fn, expect a ValueError whose message starts with `field`; return the message."""
    with pytest.raises(ValueError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert message.startswith(field), f"{message!r} does not start with {field!r}"
    return message


def _example_numbers() -> list[phonenumbers.PhoneNumber]:
    numbers = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(12):  # every PhoneNumberType value
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                numbers.append(number)
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            numbers.append(number)
    return numbers


EXAMPLE_NUMBERS = _example_numbers()


def e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- normalize_to -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("+14155552671", "+14155552671"),
        ("+1 415-555-2671", "+14155552671"),
        ("+1 (415) 555-2671", "+14155552671"),
        ("  +1 415 555 2671\n", "+14155552671"),
        ("+44 121 234 5678", "+441212345678"),
        ("+44-121-234-5678", "+441212345678"),
    ],
)
def test_normalize_to_gives_e164(given_, expected):
    assert normalize_to(given_) == expected


@pytest.mark.parametrize(
    "value",
    [
        "4155552671",  # no country code
        "+1 555 555 5555",  # well formed but not a valid number
        "+999 1234567",  # no such country code
        "+1",
        "+",
        "hello",
        "+1 415 555 267",  # too short
        "+1 415 555 26711234567",  # too long
    ],
)
def test_normalize_to_rejects_numbers_that_are_not_valid(value):
    error_of("to", normalize_to, value)


@pytest.mark.parametrize("value", [None, "", "   ", 14155552671, b"+14155552671", ["+14155552671"]])
def test_normalize_to_requires_a_string(value):
    error_of("to", normalize_to, value)


@pytest.mark.parametrize(
    "value",
    [
        "sip:alice@example.com",
        "sip:alice@sip.example.com:5060",
        "sip:alice@example.com;transport=tcp",
        "sip:+14155552671@trunk.example.com:5061;transport=tls",
        "SIP:alice@example.com",
        "client:alice",
        "client:agent_1.support-desk",
        "client:" + "a" * 256,
    ],
)
def test_normalize_to_passes_sip_and_client_addresses_through(value):
    assert normalize_to(value) == value
    assert normalize_to(f"  {value} ") == value


@pytest.mark.parametrize(
    "value",
    [
        "sip:",
        "sip:alice",
        "sip:@example.com",
        "sip:alice@",
        "sip:al ice@example.com",
        "sip:alice@exa_mple.com",
        "sip:alice@example.com:port",
        "client:",
        "client:al ice",
        "client:a/b",
        "client:alice@example.com",
        "client:" + "a" * 257,
    ],
)
def test_normalize_to_rejects_malformed_sip_and_client_addresses(value):
    error_of("to", normalize_to, value)


def test_normalize_to_names_the_field_it_is_given():
    error_of("call_options.caller_id", normalize_to, "nope", "call_options.caller_id")


def test_every_example_number_of_every_region_round_trips():
    assert len(EXAMPLE_NUMBERS) > 1000
    for number in EXAMPLE_NUMBERS:
        expected = e164(number)
        assert normalize_to(expected) == expected
        international = phonenumbers.format_number(
            number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        assert normalize_to(international) == expected, international


@FUZZ
@given(number=st.sampled_from(EXAMPLE_NUMBERS),
       separators=st.lists(st.sampled_from(["", " ", "-", ".", "  "]), min_size=20,
                           max_size=20))
def test_any_example_number_with_spaces_and_dashes_normalises_to_e164(number, separators):
    expected = e164(number)
    digits = expected[1:]
    spaced = "+" + "".join(d + sep for d, sep in zip(digits, separators, strict=False))
    assert normalize_to(spaced) == expected
    assert normalize_from(spaced) == expected


_PREFIXES = st.sampled_from(["", "+", "+1", "+44 ", "sip:", "SIP:", "client:", "tel:",
                             "http://", "https://"])


@FUZZ
@given(text=st.builds(lambda p, t: p + t, _PREFIXES, st.text()))
def test_arbitrary_text_for_a_number_only_ever_raises_a_named_value_error(text):
    for fn, field in ((normalize_to, "to"), (normalize_from, "from_")):
        try:
            result = fn(text)
        except ValueError as exc:
            assert str(exc).startswith(field), str(exc)
        else:
            assert isinstance(result, str) and result == result.strip() and result


# --- normalize_from -----------------------------------------------------------------------


def test_normalize_from_gives_e164():
    assert normalize_from(" +1 (415) 555-2671 ") == "+14155552671"


def test_normalize_from_passes_a_client_identifier_through():
    assert normalize_from("client:alice") == "client:alice"


@pytest.mark.parametrize("value", [None, "", "  ", 5, "4155552671", "+1 555 555 5555",
                                   "sip:alice@example.com", "client:", "client:a b"])
def test_normalize_from_rejects_what_is_not_a_caller_id(value):
    error_of("from_", normalize_from, value)


# --- check_url ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "https://example.com/twiml",
        "http://localhost:5000/voice?x=1&y=2",
        "https://a-b.example.co.uk:8443/path/to/twiml.xml",
        "http://127.0.0.1:8080/",
        "https://example.com./",
        "HTTPS://EXAMPLE.COM/x",
        "https://user:secret@example.com/x",
        "https://" + "a" * 63 + ".example.com/",
    ],
)
def test_check_url_accepts_absolute_http_urls(value):
    assert check_url(value, "url") == value
    assert check_url(f" {value}\t", "url") == value


@pytest.mark.parametrize(
    "value",
    [
        "ftp://example.com/x",
        "mailto:someone@example.com",
        "example.com/twiml",
        "//example.com/twiml",
        "/twiml",
        "javascript:alert(1)",
    ],
)
def test_check_url_requires_http_or_https(value):
    message = error_of("url", check_url, value, "url")
    assert "http" in message


@pytest.mark.parametrize("value", ["http://", "https:///path", "http://:80/x", "https://?q=1"])
def test_check_url_requires_a_host(value):
    error_of("url", check_url, value, "url")


@pytest.mark.parametrize("value", ["https://my_host.example.com/x", "http://a_b/x",
                                   "https://_dmarc.example.com/"])
def test_check_url_rejects_an_underscore_in_the_host(value):
    message = error_of("url", check_url, value, "url")
    assert "underscore" in message


def test_check_url_allows_an_underscore_outside_the_host():
    value = "https://example.com/my_path?a_b=c_d#e_f"
    assert check_url(value, "url") == value


@pytest.mark.parametrize(
    "value",
    [
        "http://-bad.example.com/",
        "http://bad-.example.com/",
        "http://a..b.com/",
        "http://.example.com/",
        "http://" + "a" * 64 + ".com/",
        "http://exa mple.com/",
        "http://exa!mple.com/",
        "http://example.com:99999/",
        "http://example.com:abc/",
        "http://example.com:-1/",
        "http://[::1/",  # an unclosed IPv6 literal
    ],
)
def test_check_url_rejects_bad_hosts_and_ports(value):
    error_of("callback", check_url, value, "callback")


@pytest.mark.parametrize("value", [None, "", "   ", 42, b"https://example.com/"])
def test_check_url_requires_a_string(value):
    error_of("url", check_url, value, "url")


@FUZZ
@given(text=st.builds(lambda p, t: p + t,
                      st.sampled_from(["", "http://", "https://", "https://example.com",
                                       "http://[", "ftp://"]),
                      st.text()))
def test_check_url_on_arbitrary_text_only_ever_raises_a_named_value_error(text):
    try:
        result = check_url(text, "url")
    except ValueError as exc:
        assert str(exc).startswith("url"), str(exc)
    else:
        assert result.lower().startswith(("http://", "https://"))


# --- check_call_options -------------------------------------------------------------------

VALID_OPTIONS: dict[str, Any] = {
    "timeout": 30,
    "record": True,
    "recording_channels": "dual",
    "recording_status_callback": "https://example.com/recording",
    "recording_status_callback_method": "POST",
    "recording_status_callback_event": ["in-progress", "completed"],
    "send_digits": "1234#",
    "machine_detection": "Enable",
    "machine_detection_timeout": 30,
    "async_amd": True,
    "async_amd_status_callback": "https://example.com/amd",
    "time_limit": 600,
    "caller_id": "+14155552671",
    "trim": "trim-silence",
    "method": "POST",
}


def test_the_options_under_test_are_exactly_the_allowed_ones():
    assert set(VALID_OPTIONS) == set(CALL_OPTIONS)
    # The ones the issue names explicitly.
    assert {"timeout", "record", "recording_status_callback", "send_digits",
            "machine_detection", "time_limit", "caller_id"} <= set(CALL_OPTIONS)


@pytest.mark.parametrize("name", sorted(VALID_OPTIONS))
def test_each_allowed_option_is_accepted_alone(name):
    # Asynchronous detection is a way of detecting: it comes with machine_detection.
    needs = {"machine_detection": "Enable"} if name == "async_amd" else {}
    options = {name: VALID_OPTIONS[name], **needs}
    assert check_call_options(options) == options


def test_async_amd_without_machine_detection_is_an_error():
    error_of("call_options.async_amd", check_call_options, {"async_amd": True})
    assert check_call_options({"async_amd": False}) == {"async_amd": False}


@pytest.mark.parametrize(("name", "low", "high"), [
    ("timeout", 1, 600), ("time_limit", 1, 86_400), ("machine_detection_timeout", 3, 59)])
def test_whole_number_options_keep_to_twilios_bounds(name, low, high):
    assert check_call_options({name: low}) == {name: low}
    assert check_call_options({name: high}) == {name: high}
    for outside in (low - 1, high + 1, 10**30):
        message = error_of(f"call_options.{name}", check_call_options, {name: outside})
        assert f"from {low} to {high}" in message


@pytest.mark.parametrize(("name", "value"), [
    ("machine_detection", "Foo"), ("machine_detection", "enable"),
    ("recording_channels", "stereo"), ("trim", "yes"), ("method", "PUT"),
    ("recording_status_callback_method", "get"),
    ("send_digits", "abc"), ("send_digits", ""), ("send_digits", "1" * 33),
    ("send_digits", "12 34"),
    ("recording_status_callback_event", []),
    ("recording_status_callback_event", ["completed", "failed"]),
])
def test_options_outside_twilios_choices_are_errors(name, value):
    error_of(f"call_options.{name}", check_call_options, {name: value})


@pytest.mark.parametrize("digits", ["1", "wwww1234#", "ABCD*#0W9", "1" * 32])
def test_send_digits_takes_twilios_keys_and_pauses(digits):
    assert check_call_options({"send_digits": digits}) == {"send_digits": digits}


def test_all_allowed_options_together():
    assert check_call_options(VALID_OPTIONS) == VALID_OPTIONS


def test_no_options():
    assert check_call_options(None) == {}
    assert check_call_options({}) == {}


@pytest.mark.parametrize("value", [[("timeout", 30)], "timeout=30", 30])
def test_call_options_must_be_a_mapping(value):
    error_of("call_options", check_call_options, value)


@pytest.mark.parametrize("name", ["status_callback", "to", "url", "from_", "Timeout",
                                  "machineDetection", "status_callback_event"])
def test_an_unknown_option_is_an_error_listing_the_allowed_ones(name):
    message = error_of("call_options", check_call_options, {"timeout": 10, name: "x"})
    assert repr(name) in message
    for allowed in CALL_OPTIONS:
        assert allowed in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", True),  # a bool is an int in Python, not a number here
        ("timeout", False),
        ("timeout", "30"),
        ("timeout", 30.0),
        ("time_limit", None),
        ("machine_detection_timeout", [30]),
        ("record", 1),  # and an int is not a bool
        ("record", 0),
        ("record", "true"),
        ("async_amd", "false"),
        ("send_digits", 1234),
        ("machine_detection", True),
        ("recording_status_callback_event", "completed"),
        ("recording_status_callback_event", ("completed",)),
        ("caller_id", 14155552671),
        ("method", None),
    ],
)
def test_option_values_of_the_wrong_type_are_errors(name, value):
    error_of(f"call_options.{name}", check_call_options, {name: value})


@pytest.mark.parametrize("name", ["recording_status_callback", "async_amd_status_callback"])
@pytest.mark.parametrize("url", ["ftp://example.com/x", "https://bad_host.example.com/x",
                                 "example.com/x", "https://", "http://example.com:0x50/"])
def test_url_options_are_checked_as_urls(name, url):
    error_of(f"call_options.{name}", check_call_options, {name: url})


def test_caller_id_is_normalised_to_e164():
    assert check_call_options({"caller_id": "+1 (415) 555-2671"}) == {"caller_id": "+14155552671"}
    assert check_call_options({"caller_id": "client:alice"}) == {"caller_id": "client:alice"}


@pytest.mark.parametrize("value", ["4155552671", "+1 555 555 5555", "", "sip:a@example.com"])
def test_a_bad_caller_id_is_an_error(value):
    error_of("call_options.caller_id", check_call_options, {"caller_id": value})


@pytest.mark.parametrize("name", ["timeout", "machine_detection_timeout", "time_limit"])
@pytest.mark.parametrize("value", [0, -1, -600])
def test_whole_number_options_must_be_positive(name, value):
    error_of(f"call_options.{name}", check_call_options, {name: value})


def test_check_call_options_does_not_change_its_argument():
    options = {"caller_id": "+1 415 555 2671", "timeout": 20}
    check_call_options(options)
    assert options == {"caller_id": "+1 415 555 2671", "timeout": 20}


_ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
                       st.lists(st.text(), max_size=3), st.binary(max_size=5))


@FUZZ
@given(options=st.dictionaries(st.one_of(st.sampled_from(sorted(CALL_OPTIONS)), st.text()),
                               _ANY_VALUE, max_size=4))
def test_arbitrary_call_options_only_ever_raise_a_named_value_error(options):
    try:
        checked = check_call_options(options)
    except ValueError as exc:
        assert str(exc).startswith("call_options"), str(exc)
    else:
        assert set(checked) == set(options) <= set(CALL_OPTIONS)
        for name, value in checked.items():
            assert isinstance(value, CALL_OPTIONS[name])


# --- retry policy inputs ------------------------------------------------------------------

DEFAULT_RETRY_ON = ("busy", "no-answer", "failed")


def test_retry_on_defaults():
    assert check_retry_on(None, DEFAULT_RETRY_ON) == list(DEFAULT_RETRY_ON)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["busy"], ["busy"]),
        (("no-answer", "failed"), ["no-answer", "failed"]),
        ("busy, no-answer", ["busy", "no-answer"]),
        ("failed", ["failed"]),
        ([], []),
    ],
)
def test_retry_on_accepts_retryable_statuses(value, expected):
    assert check_retry_on(value, DEFAULT_RETRY_ON) == expected


@pytest.mark.parametrize("value", [["completed"], ["busy", "ringing"], "busy,canceled",
                                   ["BUSY"], ["no_answer"], [None], [1]])
def test_retry_on_rejects_statuses_that_cannot_be_retried(value):
    message = error_of("retry_on", check_retry_on, value, DEFAULT_RETRY_ON)
    for status in DEFAULT_RETRY_ON:
        assert status in message


@pytest.mark.parametrize("value", [5, object()])
def test_retry_on_that_is_not_a_list_is_a_named_value_error(value):
    error_of("retry_on", check_retry_on, value, DEFAULT_RETRY_ON)


def test_retry_delays_defaults():
    assert check_retry_delays(None, (300, 900)) == [300, 900]


@pytest.mark.parametrize("value", [[0], [5, 10], (300, 900, 3600), range(1, 4)])
def test_retry_delays_accepts_whole_seconds(value):
    assert check_retry_delays(value, (300,)) == list(value)


@pytest.mark.parametrize("value", [[], [-1], [5, -1], [1.5], [True], ["5"], "300,900", [None],
                                   [30 * 24 * 3600 + 1], [10**12], [60] * 101])
def test_retry_delays_rejects_what_is_not_whole_seconds_within_bounds(value):
    error_of("retry_delays", check_retry_delays, value, (300,))


@pytest.mark.parametrize("value", [300, object()])
def test_retry_delays_that_is_not_a_list_is_a_named_value_error(value):
    error_of("retry_delays", check_retry_delays, value, (300,))


def test_max_attempts():
    assert check_max_attempts(None, 3) == 3
    assert check_max_attempts(1, 3) == 1
    assert check_max_attempts(100, 3) == 100
    assert check_retry_delays([0] * 99 + [30 * 24 * 3600], (300,))[-1] == 2_592_000


@pytest.mark.parametrize("value", [0, -1, True, False, 2.0, "3", 101, 10**6, 10**20])
def test_max_attempts_rejects_what_is_not_a_positive_whole_number(value):
    error_of("max_attempts", check_max_attempts, value, 3)


# --- url / twiml --------------------------------------------------------------------------

TWIML = "<Response><Say>Hello</Say></Response>"


APPLICATION_SID = "AP" + "0123456789abcdef" * 2


def test_voice_instructions_by_url():
    assert check_voice_instructions(" https://example.com/voice ", None) == (
        "https://example.com/voice", None, None)


def test_voice_instructions_by_twiml():
    assert check_voice_instructions(None, TWIML) == (None, TWIML, None)


def test_voice_instructions_by_application():
    assert check_voice_instructions(None, None, f" {APPLICATION_SID} ") == (
        None, None, APPLICATION_SID)


@pytest.mark.parametrize("sid", ["", "AP123", "PN" + "0" * 32, APPLICATION_SID + "0",
                                 "AP" + "g" * 32, 5])
def test_voice_instructions_check_the_application_sid(sid):
    error_of("application_sid", check_voice_instructions, None, None, sid)


@pytest.mark.parametrize("given", [
    (None, None, None), ("https://example.com/voice", TWIML, None),
    ("https://example.com/voice", None, APPLICATION_SID), (None, TWIML, APPLICATION_SID)])
def test_voice_instructions_need_exactly_one_of_url_twiml_and_application(given):
    error_of("url/twiml/application_sid", check_voice_instructions, *given)


@pytest.mark.parametrize("url", ["", "ftp://example.com/x", "https://bad_host/x", 5])
def test_voice_instructions_check_the_url(url):
    error_of("url", check_voice_instructions, url, None)


@pytest.mark.parametrize("twiml", ["", "   ", 5, b"<Response/>"])
def test_voice_instructions_need_a_twiml_document(twiml):
    error_of("twiml", check_voice_instructions, None, twiml)


def test_twiml_size_limit():
    padding = "<Say>" + "x" * MAX_TWIML_BYTES + "</Say>"
    at_limit = ("<Response>" + padding)[: MAX_TWIML_BYTES - len("</Response>")] + "</Response>"
    assert len(at_limit.encode()) == MAX_TWIML_BYTES == 4000
    assert check_voice_instructions(None, at_limit) == (None, at_limit, None)
    over = at_limit[:-len("</Response>")] + "x</Response>"
    message = error_of("twiml", check_voice_instructions, None, over)
    assert "4000" in message


# --- idempotency key, metadata ------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "k", "order-123:attempt", "x" * 255])
def test_idempotency_key_accepted(value):
    assert check_idempotency_key(value) == value


@pytest.mark.parametrize("value", ["", "   ", "x" * 256, 5, b"key"])
def test_idempotency_key_rejected(value):
    error_of("idempotency_key", check_idempotency_key, value)


def test_metadata_accepts_json():
    value = {"customer": 42, "tags": ["a", "b"], "nested": {"ok": True, "none": None}, "f": 1.5}
    assert check_metadata(value) == value
    assert check_metadata(None) == {}
    assert check_metadata({}) == {}


def _circular() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["self"] = value
    return value


@pytest.mark.parametrize(
    "value",
    [
        {"when": datetime(2024, 1, 1, tzinfo=UTC)},
        {"set": {1, 2}},
        {"bytes": b"x"},
        {"object": object()},
        {("tuple", "key"): 1},
        _circular(),
    ],
)
def test_metadata_rejects_values_that_are_not_json(value):
    error_of("metadata", check_metadata, value)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_metadata_rejects_numbers_json_cannot_represent(number):
    # NaN and Infinity are not JSON (RFC 8259); PostgreSQL's json type refuses them.
    error_of("metadata", check_metadata, {"score": number})


@pytest.mark.parametrize("value", [["a"], "text", 5])
def test_metadata_must_be_a_mapping(value):
    error_of("metadata", check_metadata, value)
