"""The simulator's pure rules: event lists, endpoints, display numbers, recording media."""

from __future__ import annotations

import io
import wave

import pytest

from simulator.create_rules import CreateError, check_endpoints, event_names, valid_url
from simulator.media import mp3_silence, wav_silence
from simulator.resources import formatted


@pytest.mark.parametrize(("values", "names"), [
    (["initiated ringing"], ["initiated", "ringing"]),
    (["initiated,ringing", " answered "], ["initiated", "ringing", "answered"]),
    (["completed", "completed"], ["completed"]),
    ([""], []),
])
def test_event_names(values, names):
    assert event_names(values) == names


@pytest.mark.parametrize(("to", "from_", "code"), [
    (None, "+14155550199", 21201),
    ("+14155550100", None, 21213),
    ("+14155550100", "client:jack", 21212),
    ("sip:kate", "Jack", 21211),
    ("client:", "jack", 21211),
    ("sip:kate@example.com", "Jack Smith", 21212),
])
def test_endpoints_twilio_refuses(to, from_, code):
    with pytest.raises(CreateError) as info:
        check_endpoints(to, from_)
    assert info.value.code == code


@pytest.mark.parametrize(("to", "from_"), [
    ("sip:kate@example.com?hatchkey=4815162342", "Jack"),
    ("client:kate", "+14155550199"),
    ("client:kate", "client:jack"),
    ("+442071838750", "+14155550199"),
])
def test_endpoints_twilio_accepts(to, from_):
    check_endpoints(to, from_)


@pytest.mark.parametrize(("url", "valid"), [
    ("http://example.com/s?tags=a%2Cb", True),
    ("https://example.com", True),
    ("http://bad_host.example.com/", False),
    ("http://example.com/a b", False),
    ("ftp://example.com/", False),
    ("example.com/x", False),
])
def test_valid_url(url, valid):
    assert valid_url(url) is valid


@pytest.mark.parametrize(("endpoint", "shown"), [
    ("+14158675309", "(415) 867-5309"), ("+442071838750", "+442071838750"),
    ("sip:kate@example.com", "sip:kate@example.com"), ("client:kate", "client:kate"),
    ("+1", "+1"),
])
def test_formatted(endpoint, shown):
    assert formatted(endpoint) == shown


def test_recording_media_is_small_and_valid():
    with wave.open(io.BytesIO(wav_silence())) as audio:
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 2, 8000)
        assert audio.getnframes() == 2000
    mp3 = mp3_silence()
    assert len(mp3) == 1040 and all(mp3[i:i + 2] == b"\xff\xfb" for i in range(0, 1040, 104))
