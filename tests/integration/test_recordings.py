"""Recordings and asynchronous AMD end to end: the simulator sends the recording status and
AMD callbacks Twilio documents, signed, to the webhook over HTTP; a worker stores them; the
CLI downloads the recording's media through the Twilio API the simulator serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.stack import VOICE_URL, dialer, job_in
from harness.waiting import wait_for
from worker.api import enqueue_call, get_job

pytestmark = pytest.mark.integration

TO = "+14155554001"
OPTIONS = {"record": True, "machine_detection": "Enable", "async_amd": True}


def test_a_recorded_call_with_async_amd_ends_with_its_recording_and_answer(
        make_stack, tmp_path: Path) -> None:
    stack = make_stack()
    stack.sim.set_scenario({TO: ["machine"]})
    stack.start_webhook()
    stack.start_worker("w1", concurrency=2)

    job_id = enqueue_call(TO, url=VOICE_URL, call_options=OPTIONS)
    wait_for(lambda: job_in(job_id, {"completed"}), timeout=60, what="the job to complete")

    def recorded() -> object:
        (attempt,) = get_job(job_id).attempt_rows
        done = [r for r in attempt.recordings if r.status == "completed"]
        return attempt if done and attempt.machine_detection_duration is not None else None

    attempt = wait_for(recorded, timeout=30, what="the recording and the AMD result")
    (sent,) = [c for c in stack.sim.creates() if c.to == TO]
    assert sent.params["AsyncAmd"] == ["true"]
    assert sent.params["RecordingStatusCallback"] == [stack.env["DIALER_PUBLIC_URL"]
                                                     + "/twilio/recording"]
    # The simulator records a callback once it has its answer, which may be after the worker
    # has stored it.
    amd = wait_for(lambda: stack.sim.callbacks("amd"), timeout=10,
                   what="the AMD callback's record")
    assert [(c.url, c.response_status) for c in amd] == [
        (stack.env["DIALER_PUBLIC_URL"] + "/twilio/amd", 204)]
    assert attempt.answered_by == amd[0].params["AnsweredBy"]
    assert attempt.machine_detection_duration == int(amd[0].params["MachineDetectionDuration"])
    (recording,) = attempt.recordings
    completed = wait_for(lambda: [c.params for c in stack.sim.callbacks("recording")
                                  if c.params["RecordingStatus"] == "completed"],
                         timeout=10, what="the completed recording callback's record")
    assert (recording.sid, recording.url, recording.duration) == (
        completed[0]["RecordingSid"], completed[0]["RecordingUrl"],
        int(completed[0]["RecordingDuration"]))
    assert attempt.recording_sid == recording.sid

    shown = dialer(stack.env, "job", "show", job_id, "--json")
    assert shown.returncode == 0, shown.stderr
    (listed,) = json.loads(shown.stdout)["attempt_list"]
    assert listed["recordings"][0]["sid"] == recording.sid
    assert listed["answered_by"] == attempt.answered_by

    output = tmp_path / "call.wav"
    downloaded = dialer(stack.env, "recording", "download", job_id, "--output", str(output))
    assert downloaded.returncode == 0, downloaded.stderr
    assert str(output) in downloaded.stdout
    media = output.read_bytes()
    assert media[:4] == b"RIFF" and media[8:12] == b"WAVE"
    assert f"{len(media)} bytes" in downloaded.stdout

    missing = dialer(stack.env, "recording", "download", job_id, "--attempt", "2")
    assert missing.returncode != 0
    assert missing.stderr.strip().count("\n") == 0 and "attempt" in missing.stderr
    no_job = dialer(stack.env, "recording", "download", "nope")
    assert no_job.returncode != 0 and "job_id: no job" in no_job.stderr
