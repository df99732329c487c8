"""The background file writer: every file lands with its bytes, and a failed write is never lost silently."""
from __future__ import annotations

import threading

import pytest

from wafersage.tasks.synth.file_writer import BackgroundFileWriter


def test_writes_every_file_with_its_bytes(tmp_path):
    with BackgroundFileWriter(backlog=3) as files:
        for i in range(20):
            files.submit(tmp_path / f"{i}.bin", bytes([i]) * (i + 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{i}.bin" for i in range(20))
    assert all((tmp_path / f"{i}.bin").read_bytes() == bytes([i]) * (i + 1) for i in range(20))


def test_writes_happen_off_the_callers_thread(tmp_path, monkeypatch):
    writers = set()
    original = type(tmp_path).write_bytes

    def recording_write(self, data):
        writers.add(threading.get_ident())
        return original(self, data)

    monkeypatch.setattr(type(tmp_path), "write_bytes", recording_write)
    with BackgroundFileWriter() as files:
        files.submit(tmp_path / "a", b"x")
    assert writers and threading.get_ident() not in writers


def test_a_failed_write_is_raised_when_the_block_ends(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        with BackgroundFileWriter() as files:
            files.submit(tmp_path / "ok.bin", b"1")
            files.submit(tmp_path / "missing" / "x.bin", b"2")
    assert (tmp_path / "ok.bin").read_bytes() == b"1"


def test_a_failed_write_is_raised_from_a_later_submit_once_the_backlog_is_full(tmp_path):
    with pytest.raises(FileNotFoundError):
        with BackgroundFileWriter(backlog=1) as files:
            files.submit(tmp_path / "missing" / "x.bin", b"2")
            files.submit(tmp_path / "next.bin", b"3")  # waits for the failed one first
            pytest.fail("the failed write should have been raised by now")


def test_an_error_in_the_block_is_not_masked_by_the_writes(tmp_path):
    with pytest.raises(KeyError):
        with BackgroundFileWriter() as files:
            files.submit(tmp_path / "missing" / "x.bin", b"2")
            raise KeyError("the caller's own error")


def test_submit_outside_the_block_and_bad_backlog_are_refused(tmp_path):
    with pytest.raises(RuntimeError, match="with"):
        BackgroundFileWriter().submit(tmp_path / "a", b"")
    with pytest.raises(ValueError, match="backlog"):
        BackgroundFileWriter(backlog=0)
