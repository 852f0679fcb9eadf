"""A recording's media: a short silence, as WAV or MP3. Pure, no I/O.

The files do not last as long as the recording's duration says: a test needs a file any
player or parser accepts, not minutes of silence.
"""

from __future__ import annotations

import io
import wave

WAV_RATE = 8000  # Hz, 16-bit mono, the shape of Twilio's mono WAV recordings
SILENCE_S = 0.25
# One MPEG-1 Layer III frame, 32 kbit/s, 44.1 kHz, mono: a 4-byte header and 100 zero
# bytes (side information with no main data, which decoders play as 1152 samples of silence).
MP3_FRAME = bytes([0xFF, 0xFB, 0x10, 0xC0]) + bytes(100)
MP3_FRAMES = 10


def wav_silence(seconds: float = SILENCE_S) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(WAV_RATE)
        out.writeframes(bytes(2 * int(WAV_RATE * seconds)))
    return buffer.getvalue()


def mp3_silence(frames: int = MP3_FRAMES) -> bytes:
    return MP3_FRAME * frames


MEDIA = {"": ("audio/x-wav", wav_silence), ".wav": ("audio/x-wav", wav_silence),
         ".mp3": ("audio/mpeg", mp3_silence)}
