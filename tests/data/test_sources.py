"""Image sources: an unpacked Decathlon root or a data pack, chosen by open_source."""
import zipfile
import zlib

import pytest

from multitune_lib import data
from multitune_lib.errors import DataError


def test_a_file_that_is_not_a_pack_is_named(tmp_path):
    bad = tmp_path / "notes.zip"
    bad.write_text("hello")
    with pytest.raises(DataError, match="notes.zip is not a data pack"):
        data.annotations(bad, "toy", "train")


def test_a_folder_is_an_image_source(toy_root):
    src = data.open_source(toy_root)
    assert isinstance(src, data.ImageSource) and src.names() == ["toy"]
    assert src.annotation("toy", "test") is None and '"categories"' in src.annotation("toy", "val")
    f = data.annotations(toy_root, "toy", "val")["file_name"][0]
    st = (toy_root / f).stat()
    assert src.read(f) == (toy_root / f).read_bytes() and src.fingerprint(f) == (st.st_size, st.st_mtime_ns)
    with pytest.raises(DataError, match="missing image .*nope.jpg.*data install"):
        src.fingerprint("data/toy/val/nope.jpg")


def test_a_file_is_a_pack(toy_root, tmp_path):
    f = data.annotations(toy_root, "toy", "val")["file_name"][0]
    pack = tmp_path / "p.zip"
    with zipfile.ZipFile(pack, "w") as z:
        z.writestr("annotations/toy_val.json", (toy_root / "annotations" / "toy_val.json").read_text())
        z.writestr("annotations/toy_train.json", (toy_root / "annotations" / "toy_train.json").read_text())
        z.writestr(f, (toy_root / f).read_bytes())
    src = data.open_source(pack)
    assert isinstance(src, data.PackSource) and src.names() == ["toy"]
    assert src.annotation("toy", "val") == (toy_root / "annotations" / "toy_val.json").read_text()
    assert src.annotation("toy", "test") is None
    assert src.read(f) == (toy_root / f).read_bytes()
    assert src.fingerprint(f) == (len(src.read(f)), zlib.crc32(src.read(f)))
    with pytest.raises(DataError, match="not in the pack"):
        src.fingerprint("data/toy/val/other.jpg")


def test_a_missing_root_says_how_to_get_the_data(tmp_path):
    with pytest.raises(DataError, match="does not exist") as err:
        data.open_source(tmp_path / "nowhere")
    assert data.HOW_TO_GET_DATA in str(err.value)
