"""Video data: readers (any video file, raw YUV 4:2:0, PNG folders, Vimeo-90k), training crops,
padded test sequences and the embedded default clips.

Every reader yields float32 RGB frames [3, H, W] in [0, 1].
"""
from .clips import Clip, clip_data_dir, default_clips, default_sequences
from .color import rgb_to_luma, rgb_to_ycbcr, rgb_to_yuv420, ycbcr_to_rgb, yuv420_to_rgb
from .datasets import CropGroupDataset, PaddedSequence
from .open import open_sequence
from .png_folder import PNGFolderSequence, list_png_frames, read_png
from .sequence import FrameSequence
from .transforms import (
    PAD_MULTIPLE,
    center_crop,
    crop_to_size,
    pad_to_multiple,
    padding_for,
    random_crop_flip,
    resize_frames,
    scaled_size,
)
from .video_file import VideoFileSequence, iter_video_frames, probe_video
from .vimeo import Vimeo90kSeptuplets, read_septuplet_list
from .yuv import YUV420Sequence, size_from_filename, yuv420_frame_bytes

__all__ = [
    "Clip", "CropGroupDataset", "FrameSequence", "PAD_MULTIPLE", "PNGFolderSequence", "PaddedSequence",
    "VideoFileSequence", "Vimeo90kSeptuplets", "YUV420Sequence", "center_crop", "clip_data_dir",
    "crop_to_size", "default_clips", "default_sequences", "iter_video_frames", "list_png_frames",
    "open_sequence", "pad_to_multiple", "padding_for", "probe_video", "random_crop_flip", "read_png",
    "read_septuplet_list", "resize_frames", "rgb_to_luma", "rgb_to_ycbcr", "rgb_to_yuv420",
    "scaled_size", "size_from_filename", "ycbcr_to_rgb", "yuv420_frame_bytes", "yuv420_to_rgb",
]
