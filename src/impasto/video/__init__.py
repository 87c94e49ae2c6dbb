"""Video: stylise a clip with temporal consistency (Ruder, Dosovitskiy and Brox 2016).

``impasto video IN STYLE... -o OUT`` (:mod:`impasto.video.cli`). The pieces: :mod:`~impasto.video.flow`
(OpenCV optical flow, warping, the forward-backward reliability mask), :mod:`~impasto.video.temporal`
(the temporal loss, an engine ``extra_loss``), :mod:`~impasto.video.io` (video files through
imageio-ffmpeg, frame folders, the resumable frame store) and :mod:`~impasto.video.stylize` (the frame
loop, a generator of :class:`VideoProgress` events, each frame a job of :mod:`impasto.jobs`). Needs
``pip install 'impasto[video]'``.
"""

from __future__ import annotations

from impasto.video.stylize import VideoOptions, VideoProgress, VideoStylizer

__all__ = ["VideoOptions", "VideoProgress", "VideoStylizer"]
