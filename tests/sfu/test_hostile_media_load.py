"""Hundreds of hostile offers and VP8 frames, from a stream of hostile members, against a real
server with a real media worker process: every one gets a typed answer or a placeholder,
the server and its worker return to within 10 % of their threads and RSS, and a witness pair
in the same room (a member publishing blurred video, the host watching it) streams the whole
time. `bench/fuzz_media.py` runs the same for thousands and prints the figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.hostile_media import hostile_load
from tests.support.proc import confide_server

INPUTS = 300
WARMUP = 100


@pytest.mark.slow
async def test_hundreds_of_hostile_inputs_leave_no_trace_and_the_room_streams_on(
        tmp_path: Path) -> None:
    # one worker: the process every room on the node would share
    async with confide_server(tmp_path / "var", env={"CONFIDE_MEDIA_PROCESSES": "1"}) as srv:
        result = await hostile_load(srv.base_url, srv.settings.grant_secret, srv.proc.pid,
                                    inputs=INPUTS, warmup=WARMUP, seed=11, progress=print)
    for line in result.lines():
        print(line)
    report = result.report
    assert report.inputs >= INPUTS
    assert not report.unexpected, report.unexpected
    # both paths and every kind of input were exercised
    assert report.sdp_inputs >= INPUTS // 4 and report.vp8_frames >= INPUTS // 4
    assert report.outcomes["bad_sdp"] and report.outcomes["too_many_tracks"]
    assert report.frame_kinds["oversized"] and report.video_refused_notices
    # nothing kept: threads and RSS of server and worker back within 10 % of the baseline
    threads, rss = result.growth()
    assert threads <= 0.10 and rss <= 0.10, result.lines()
    # the worker every room shares never died
    assert result.after.worker_pids == result.worker_pids_before
    # the witness pair streamed the whole time
    assert result.witness_longest_gap_s < 2.0, result.lines()
    assert result.witness_fps >= 0.5 * result.witness_fps_before
    assert not result.witness_errors
