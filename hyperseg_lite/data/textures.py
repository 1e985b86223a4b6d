"""Real-photo textures and backgrounds from images that ship with scikit-image and scikit-learn (offline)."""

from __future__ import annotations

import functools

import cv2
import numpy as np

_SKIMAGE = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "hubble_deep_field", "immunohistochemistry")


@functools.lru_cache(maxsize=1)
def photos() -> tuple[np.ndarray, ...]:
    """A few real photos as float32 RGB in [0, 1], 256 px on the short side; loaded once per process."""
    images = []
    from skimage import data

    for name in _SKIMAGE:
        try:
            image = getattr(data, name)()
        except Exception:  # an image that would need a download
            continue
        images.append(image)
    try:
        from sklearn.datasets import load_sample_images

        images.extend(load_sample_images().images)
    except Exception:
        pass
    out = []
    for image in images:
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        image = image[..., :3].astype(np.float32) / 255.0
        scale = 256 / min(image.shape[:2])
        out.append(
            cv2.resize(
                image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA
            )
        )
    if not out:
        raise RuntimeError("no sample photos available from scikit-image / scikit-learn")
    return tuple(out)


def patch(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A random crop of a random photo, resized to ``size`` (H, W), float32 in [0, 1]."""
    photo = photos()[rng.integers(len(photos()))]
    height, width = photo.shape[:2]
    ch, cw = rng.integers(48, min(height, width) + 1), rng.integers(48, min(height, width) + 1)
    y, x = rng.integers(0, height - ch + 1), rng.integers(0, width - cw + 1)
    return cv2.resize(photo[y : y + ch, x : x + cw], (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def tinted(base: np.ndarray, colour: tuple[int, int, int], rng: np.random.Generator, strength: float) -> np.ndarray:
    """Colour ``base`` (a photo texture) towards ``colour``: the colour name stays true, the surface stays real."""
    grey = cv2.cvtColor(base, cv2.COLOR_RGB2GRAY)[..., None]
    jitter = np.clip(np.asarray(colour, np.float32) / 255.0 + rng.normal(0, 0.04, 3), 0, 1).astype(np.float32)
    return np.minimum(jitter * ((1 - strength) + (2 * strength) * grey), 1.0)
