"""The atomic writer kit: a file or a folder is the old version or the new one, whatever fails."""

import pytest

from notos.data.atomic import atomic_file, atomic_write_bytes, old_path, recover_folder, replace_folder, temp_path


def test_atomic_write_bytes_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "m.json"
    atomic_write_bytes(target, b"old")
    assert atomic_write_bytes(target, b"new") == target
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_a_failed_atomic_file_keeps_the_old_one(tmp_path):
    target = tmp_path / "data.parquet"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            assert tmp == temp_path(target) and tmp.name.startswith(".data.parquet.tmp-")
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.parquet"]


def _folder(path, text):
    path.mkdir()
    (path / "a.txt").write_text(text)
    (path / "sub").mkdir()
    (path / "sub" / "b.txt").write_text(text)
    return path


def test_replace_folder_swaps_in_the_new_one(tmp_path):
    final = _folder(tmp_path / "out", "old")
    new = _folder(tmp_path / ".out.tmp-1", "new")
    assert replace_folder(new, final) == final
    assert (final / "a.txt").read_text() == "new" and (final / "sub" / "b.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    # Into a place that did not exist.
    assert (replace_folder(_folder(tmp_path / ".fresh.tmp", "x"), tmp_path / "fresh") / "a.txt").read_text() == "x"


def test_a_crash_mid_swap_is_recovered(tmp_path):
    final = tmp_path / "out"
    # Killed after moving the old folder aside, before the new one arrived: the old comes back.
    _folder(old_path(final), "old")
    recover_folder(final)
    assert (final / "a.txt").read_text() == "old" and not old_path(final).exists()
    # Killed after the new one arrived, before the old was removed: the leftover goes.
    _folder(old_path(final), "older")
    replace_folder(_folder(tmp_path / "next", "new"), final)
    assert (final / "a.txt").read_text() == "new" and not old_path(final).exists()
    recover_folder(tmp_path / "never-written")  # nothing to do
