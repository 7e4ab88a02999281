"""Atomic, collision-free saving: concurrency, no overwrite, no partial files, typed errors."""

from __future__ import annotations

import errno
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import pytest
from PIL import Image

from ml_lib.diffusion.errors import DiskFullError, OutputError, OutputNotWritableError, RequestError
from ml_lib.diffusion.output import writer
from ml_lib.diffusion.output.infotext import format_infotext
from ml_lib.diffusion.output.metadata import SaveOptions, read_metadata
from ml_lib.diffusion.output.naming import DEFAULT_TEMPLATE, NameContext
from ml_lib.diffusion.output.writer import TEMP_PREFIX, save_image
from ml_lib.diffusion.plan import GenerationPlan, ModelFormat, ModelRef

NOW = datetime(2024, 5, 6, 7, 8, 9)


def make_plan(**overrides: object) -> GenerationPlan:
    values: dict[str, object] = dict(
        prompt="a red fox, in the snow: winter",
        negative_prompt="blurry",
        model=ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, "sd1", name="foxmodel"),
        width=32,
        height=24,
        steps=20,
        cfg_scale=7.0,
        sampler="Euler a",
        schedule="Uniform",
        seed=100,
        batch_size=1,
        clip_skip=1,
        device="cpu",
        dtype="float32",
        output_dir="/out",
        name_template=DEFAULT_TEMPLATE,
    )
    values.update(overrides)
    return GenerationPlan(**values)  # type: ignore[arg-type]


PLAN = make_plan()


def image() -> Image.Image:
    return Image.new("RGB", (32, 24), (200, 40, 40))


def save(directory: Path, seed: int = 100, template: str = DEFAULT_TEMPLATE, **kwargs: object) -> Path:
    infotext = format_infotext(PLAN, seed=seed, model_hash=None, version="v0")
    ctx = NameContext.from_plan(PLAN, seed=seed, now=NOW)
    return save_image(image(), directory, template, ctx, infotext, PLAN.to_json(), **kwargs)  # type: ignore[arg-type]


def listing(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


class FullDisk:
    """Fails with ENOSPC after ``limit`` bytes; has no fileno, so Pillow goes through write()."""

    def __init__(self, inner: BinaryIO, limit: int) -> None:
        self.inner, self.left = inner, limit

    def write(self, data: bytes) -> int:
        if len(data) > self.left:
            self.inner.write(bytes(data[: self.left]))
            self.left = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.left -= len(data)
        return self.inner.write(data)

    def flush(self) -> None:
        self.inner.flush()


def full_disk_encoder(limit: int) -> writer.Encoder:
    def encode(img: Image.Image, fh: BinaryIO, options: SaveOptions) -> None:
        options.save(img, FullDisk(fh, limit))  # type: ignore[arg-type]

    return encode


# --- normal saving -------------------------------------------------------------------------------


def test_save_creates_folder_and_writes_png_with_metadata(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    path = save(out)
    assert path == out / "00001-100-a red fox in the snow winter.png"
    meta = read_metadata(path)
    assert meta.format == "PNG" and meta.plan == PLAN
    assert meta.parsed is not None and meta.parsed.seed == 100
    assert [p.name for p in out.iterdir()] == [path.name]


def test_counter_continues_after_existing_files(tmp_path: Path) -> None:
    (tmp_path / "00041-old.png").write_bytes(b"old")
    assert save(tmp_path).name.startswith("00042-")
    assert save(tmp_path).name.startswith("00043-")
    assert (tmp_path / "00041-old.png").read_bytes() == b"old"


def test_final_file_respects_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = save(tmp_path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(("fmt", "ext", "kind"), [("jpeg", ".jpg", "JPEG"), ("webp", ".webp", "WEBP")])
def test_jpeg_and_webp_round_trip(tmp_path: Path, fmt: str, ext: str, kind: str) -> None:
    path = save(tmp_path, fmt=fmt)
    assert path.suffix == ext
    meta = read_metadata(path)
    assert meta.format == kind
    assert meta.infotext == format_infotext(PLAN, seed=100, model_hash=None, version="v0")
    assert meta.plan == PLAN


# --- collisions ----------------------------------------------------------------------------------


def test_template_without_counter_gets_suffixes_and_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "100.png").write_bytes(b"precious")
    names = [save(tmp_path, template="[seed]").name for _ in range(3)]
    assert names == ["100-2.png", "100-3.png", "100-4.png"]
    assert (tmp_path / "100.png").read_bytes() == b"precious"


def test_counter_collision_moves_to_next_counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = tmp_path / "00001-100-a red fox in the snow winter.png"
    taken.write_bytes(b"someone else's")
    monkeypatch.setattr(writer, "next_counter", lambda directory: 1)  # as if another process raced us
    path = save(tmp_path)
    assert path.name.startswith("00002-")
    assert taken.read_bytes() == b"someone else's"


def test_collision_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    (tmp_path / "100.png").write_bytes(b"precious")
    paths = [save(tmp_path, template="[seed]") for _ in range(2)]
    assert [p.name for p in paths] == ["100-2.png", "100-3.png"]
    assert (tmp_path / "100.png").read_bytes() == b"precious"
    assert all(read_metadata(p).plan == PLAN for p in paths)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


@pytest.mark.parametrize("template", [DEFAULT_TEMPLATE, "[model]"])
@pytest.mark.parametrize("hard_links", [True, False])
def test_eight_threads_ten_saves_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: str, hard_links: bool
) -> None:
    if not hard_links:

        def no_link(src: object, dst: object) -> None:
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(os, "link", no_link)
    results: dict[int, Path] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def work(thread: int) -> None:
        start.wait()
        for i in range(10):
            seed = 1000 * thread + i
            try:
                path = save(tmp_path, seed=seed, template=template)
            except BaseException as exc:  # collected and re-raised by the test below
                with lock:
                    errors.append(exc)
                return
            with lock:
                results[seed] = path

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 80 and len(set(results.values())) == 80
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in results.values())
    for seed, path in results.items():
        meta = read_metadata(path)
        assert meta.format == "PNG"
        assert meta.parsed is not None and meta.parsed.seed == seed


# --- errors --------------------------------------------------------------------------------------


def test_full_disk_while_encoding_leaves_folder_unchanged(tmp_path: Path) -> None:
    (tmp_path / "00001-keep.png").write_bytes(b"keep")
    before = listing(tmp_path)
    with pytest.raises(DiskFullError) as info:
        save(tmp_path, encoder=full_disk_encoder(100))
    assert "Free space" in str(info.value) and "--out" in str(info.value)
    assert listing(tmp_path) == before


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_full_disk_at_fsync_or_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    def fail(*args: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(DiskFullError):
        save(tmp_path)
    assert listing(tmp_path) == {}
    monkeypatch.undo()
    monkeypatch.setattr(os, "link", fail)
    with pytest.raises(DiskFullError):
        save(tmp_path)
    assert listing(tmp_path) == {}


def test_folder_through_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for target in (blocker / "out", blocker):
        with pytest.raises(OutputNotWritableError) as info:
            save(target)
        assert str(target) in str(info.value) and "--out" in str(info.value)
    assert blocker.read_text() == "x"


def test_read_only_file_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def read_only(path: object, flags: int, *args: object) -> int:
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(OutputNotWritableError, match="Read-only file system"):
        save(tmp_path)
    assert listing(tmp_path) == {}


def test_encoder_value_error_is_output_error_without_leftovers(tmp_path: Path) -> None:
    def broken(img: Image.Image, fh: BinaryIO, options: SaveOptions) -> None:
        fh.write(b"partial")
        raise ValueError("bad image")

    with pytest.raises(OutputError, match="bad image"):
        save(tmp_path, encoder=broken)
    assert listing(tmp_path) == {}


def test_interrupt_while_encoding_leaves_nothing(tmp_path: Path) -> None:
    def interrupted(img: Image.Image, fh: BinaryIO, options: SaveOptions) -> None:
        fh.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save(tmp_path, encoder=interrupted)
    assert listing(tmp_path) == {}


def test_bad_template_or_format_fails_before_touching_disk(tmp_path: Path) -> None:
    out = tmp_path / "new"
    with pytest.raises(RequestError, match="Known tokens"):
        save(out, template="[nope]")
    with pytest.raises(RequestError, match="png"):
        save(out, fmt="bmp")
    assert not out.exists()
