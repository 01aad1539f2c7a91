"""Uploads as archives: extracted below a scratch directory only, within bounds, or refused naming the member."""
import io
import stat
import tarfile
import zipfile

import pytest

import fits
from fits.trackers import ImportLimits, RunsImportError

from .conftest import assert_same_rows
from .writers import LOSS, write_tensorboard


def zip_dir(folder, path, prefix=""):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, prefix + f.relative_to(folder).as_posix())
    return path


@pytest.fixture
def logs(tmp_path, opt_train):
    return write_tensorboard(opt_train, tmp_path / "logs")


def test_zip_of_the_log_directory_imports_like_the_directory(tmp_path, logs, opt_train, params_file):
    # Packed with its folder (logs/OPT-125m/...) or without it: the runs are the same.
    for prefix in ("logs/", ""):
        archive = zip_dir(logs, tmp_path / f"up{len(prefix)}.zip", prefix)
        result = fits.read_runs(archive, metric=LOSS, params=params_file)
        assert_same_rows(result.frame, opt_train, rtol=1e-6)


def test_tar_gz_upload_with_a_non_event_file(tmp_path, logs, opt_train, params_file):
    (logs / "README.txt").write_text("notes")
    archive = tmp_path / "runs.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(logs, arcname="logs")
    result = fits.read_runs(archive, metric=LOSS, params=params_file)
    assert_same_rows(result.frame, opt_train, rtol=1e-6)
    assert result.report.ignored_files == [("README.txt", "not a TensorBoard event file")]


def _tar_with(path, member: tarfile.TarInfo, data: bytes = b""):
    with tarfile.open(path, "w:gz") as tf:
        member.size = len(data) if member.isfile() else 0
        tf.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize("name", ["../evil/events.out.tfevents.1", "/etc/events.out.tfevents.1",
                                  "runs/../../events.out.tfevents.1"])
def test_path_traversal_is_refused(tmp_path, name):
    archive = _tar_with(tmp_path / "bad.tar.gz", tarfile.TarInfo(name), b"x")
    with pytest.raises(RunsImportError, match="refused") as caught:
        fits.read_runs(archive, metric=LOSS, tokens_per_step=1)
    assert caught.value.field == "member" and caught.value.path.endswith("bad.tar.gz")
    assert not (tmp_path / "evil").exists()
    zipped = tmp_path / "bad.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr(name, b"x")
    with pytest.raises(RunsImportError, match="refused"):
        fits.read_runs(zipped, metric=LOSS, tokens_per_step=1)


def test_links_are_refused(tmp_path):
    link = tarfile.TarInfo("run/events.out.tfevents.1")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(RunsImportError, match="link"):
        fits.read_runs(_tar_with(tmp_path / "link.tar.gz", link), metric=LOSS, tokens_per_step=1)
    zipped = tmp_path / "link.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        info = zipfile.ZipInfo("run/events.out.tfevents.1")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(RunsImportError, match="symbolic link"):
        fits.read_runs(zipped, metric=LOSS, tokens_per_step=1)


def test_bounds_on_members_bytes_and_rows(tmp_path, logs, params_file, opt_train):
    archive = zip_dir(logs, tmp_path / "up.zip")
    with pytest.raises(RunsImportError, match="more than 3 members") as caught:
        fits.read_runs(archive, metric=LOSS, params=params_file, limits=ImportLimits(max_files=3))
    assert caught.value.field == "members"
    with pytest.raises(RunsImportError, match="more than 1000 bytes") as caught:
        fits.read_runs(archive, metric=LOSS, params=params_file, limits=ImportLimits(max_bytes=1000))
    assert caught.value.field == "size"
    with pytest.raises(RunsImportError, match="more than 50 observations") as caught:
        fits.read_runs(archive, metric=LOSS, params=params_file, limits=ImportLimits(max_rows=50))
    assert caught.value.field == "rows"


def test_a_compression_bomb_stops_at_the_byte_bound(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("run/events.out.tfevents.1", b"\0" * (20 << 20))  # 20 MB of zeros, ~20 kB packed
    assert archive.stat().st_size < 100_000
    with pytest.raises(RunsImportError, match="extracts to more than"):
        fits.read_runs(archive, metric=LOSS, tokens_per_step=1, limits=ImportLimits(max_bytes=1 << 20))


def test_a_corrupt_archive_is_reported(tmp_path, logs):
    archive = zip_dir(logs, tmp_path / "up.zip")
    data = bytearray(archive.read_bytes())
    data[40:400] = b"\xff" * 360
    archive.write_bytes(bytes(data))
    with pytest.raises(RunsImportError, match="zip") as caught:
        fits.read_runs(archive, metric=LOSS, tokens_per_step=1)
    assert caught.value.path.endswith("up.zip")


def test_bad_limits_are_refused():
    with pytest.raises(RunsImportError, match="positive integer"):
        ImportLimits(max_rows=0)
