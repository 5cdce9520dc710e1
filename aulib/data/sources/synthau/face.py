"""SynthAU drawing: a cartoon-but-plausible face whose geometry follows the AUs.

Coordinates: every face part is built in *face units* (face half-width 1,
x to the image right, y down, origin at the face centre, z toward the camera
on the surface of an ellipsoid-like head), turned by the head pose (yaw,
pitch), rolled in the image plane, then scaled and moved to pixels. The whole
face is drawn with PIL polygons and lines at the output size (no per-pixel
Python loops); lighting, texture, blur and noise are numpy/PIL operations.

Pose sign conventions (a horizontal flip swaps 51<->52 and 55<->56):
- AU51 head turn left: the subject turns to their own left, so the nose and
  features move to the image right; AU52 the mirror image.
- AU53 head up: features move up and the face is foreshortened; AU54 down.
- AU55 head tilt left: the head rolls toward the subject's left shoulder, the
  top of the head moves to the image right (clockwise on screen), the eye line
  slopes down to the image right; AU56 the mirror image.

Visibility: at intensity 0.7 every expression AU changes, on average, 10-150
pixels of the demo's 64 px aligned crop by more than 20 grey levels (AU15 and
AU18 fewest, AU26 most), so all can be learned there while differing in
difficulty (tests/data/test_synth.py).

:func:`render_face` is pure: the same :class:`Identity`, AU intensities and
:class:`Scene` give the same pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from .au_model import EFFECT

Color = tuple[int, int, int]

#: Head angles in degrees: range when the pose AU is present (scaled by its
#: intensity) and the jitter range when it is absent.
YAW_PRESENT = (15.0, 35.0)
PITCH_PRESENT = (13.0, 26.0)
ROLL_PRESENT = (12.0, 25.0)
YAW_JITTER, PITCH_JITTER, ROLL_JITTER = 5.0, 4.0, 4.0

_SKIN_LIGHT = np.array([246, 214, 190], float)
_SKIN_DARK = np.array([82, 52, 38], float)
_HAIR = [(25, 20, 18), (60, 40, 28), (105, 70, 40), (170, 130, 80), (200, 170, 110), (130, 60, 30), (150, 150, 150)]
_IRIS = [(70, 45, 25), (40, 30, 20), (70, 100, 140), (80, 110, 70), (100, 80, 50)]


@dataclass(frozen=True)
class Identity:
    """Person-specific shape and colours (face units; colours RGB 0-255)."""

    skin: Color = (224, 182, 150)
    hair: Color = (60, 40, 28)
    iris: Color = (70, 45, 25)
    lips: Color = (190, 110, 105)
    shirt: Color = (60, 90, 140)
    face_height: float = 1.28   # half-height of the face outline
    jaw: float = 0.5            # 0 round jaw .. 1 narrow chin
    eye_x: float = 0.42         # eye centre distance from the midline
    eye_y: float = -0.12
    eye_size: float = 0.18      # eye half-width
    eye_open: float = 0.075     # upper-lid height above the eye centre
    brow_gap: float = 0.22      # eye centre to brow
    brow_thick: float = 0.065
    brow_arch: float = 0.04
    nose_y: float = 0.30        # nose tip height
    nose_width: float = 0.15
    mouth_y: float = 0.62
    mouth_width: float = 0.34   # mouth half-width
    lip_thick: float = 0.055
    hair_style: int = 1         # 0 bald, 1 short, 2 long, 3 fringe
    hair_line: float = 0.62     # hairline height as a share of face_height
    folds: float = 0.2          # baseline visibility of skin folds


@dataclass(frozen=True)
class Scene:
    """Everything about one picture that is not the face: placement, pose
    jitter, background, lighting, blur, noise, occluders."""

    center: tuple[float, float] = (0.5, 0.5)  # face centre, share of image size
    half_width: float = 0.32                  # face half-width, share of image size
    yaw: float = 0.0                          # pose jitter in degrees (added to the AUs' pose)
    pitch: float = 0.0
    roll: float = 0.0
    bg_a: Color = (170, 175, 180)
    bg_b: Color = (120, 125, 135)
    bg_angle: float = 0.0                     # gradient direction (radians)
    texture: np.ndarray | None = field(default=None, compare=False)  # (6, 6, 3) colour offsets, upsampled
    light_angle: float = 0.0
    light: float = 0.0                        # multiplicative gradient strength
    brightness: float = 1.0
    contrast: float = 1.0
    blur: float = 0.0                         # Gaussian radius in pixels
    noise: float = 0.0                        # pixel noise sigma (0-255 scale)
    noise_seed: int = 0
    glasses: int = 0                          # 0 none, 1 frames, 2 sunglasses
    hand: tuple[float, float, float, float] | None = None  # (x, y, size, angle) in face units


def _lerp(a, b, t) -> Color:
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))


def _shade(c, f) -> Color:
    return tuple(int(min(255, max(0, round(x * f)))) for x in c)


@lru_cache(maxsize=None)
def _lin(a: float, b: float, n: int, endpoint: bool = True) -> np.ndarray:
    """Cached ``np.linspace`` (read-only) for the fixed sampling grids."""
    out = np.linspace(a, b, n, endpoint=endpoint)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=None)
def _circle(n: int) -> tuple[np.ndarray, np.ndarray]:
    t = _lin(0.0, 2 * np.pi, n, False)
    return np.cos(t), np.sin(t)


def sample_identity(rng: np.random.Generator) -> Identity:
    """A random identity (skin tone, face shape, spacing, hair, mouth…)."""
    u = rng.random(24)
    tone = u[0] ** 1.3
    skin = _SKIN_LIGHT * (1 - tone) + _SKIN_DARK * tone
    skin = skin * (1 + 0.06 * (u[1:4] - 0.5))
    skin_c = tuple(int(x) for x in np.clip(skin, 0, 255))
    lips = np.clip(np.asarray(skin) * np.array([0.86, 0.60, 0.62]) + np.array([18, 0, 0]), 0, 255)
    hair = _HAIR[int(u[4] * len(_HAIR))] if tone < 0.5 else _HAIR[int(u[4] * 3)]
    return Identity(
        skin=skin_c,
        hair=hair,
        iris=_IRIS[int(u[5] * len(_IRIS))] if tone < 0.4 else _IRIS[int(u[5] * 2)],
        lips=tuple(int(x) for x in lips),
        shirt=tuple(int(x) for x in 30 + 200 * rng.random(3)),
        face_height=1.18 + 0.2 * u[6],
        jaw=0.2 + 0.6 * u[7],
        eye_x=0.37 + 0.1 * u[8],
        eye_y=-0.18 + 0.1 * u[9],
        eye_size=0.155 + 0.05 * u[10],
        eye_open=0.06 + 0.03 * u[11],
        brow_gap=0.19 + 0.07 * u[12],
        brow_thick=0.04 + 0.05 * u[13],
        brow_arch=0.01 + 0.06 * u[14],
        nose_y=0.24 + 0.1 * u[15],
        nose_width=0.12 + 0.07 * u[16],
        mouth_y=0.56 + 0.1 * u[17],
        mouth_width=0.27 + 0.12 * u[18],
        lip_thick=0.04 + 0.035 * u[19],
        hair_style=int(u[20] * 4),
        hair_line=0.5 + 0.2 * u[21],
        folds=0.1 + 0.2 * u[22],
    )


def sample_scene(rng: np.random.Generator) -> Scene:
    """Random placement, pose jitter, background, lighting, blur, noise and
    occasional occluders (glasses 10 %, hand 6 %)."""
    u = rng.random(24)
    hw = 0.275 + 0.1 * u[0]  # face width 55-75 % of the image
    occluder = u[16]
    hand = None
    if occluder < 0.06:
        hand = (float(rng.uniform(-0.7, 0.7)), float(rng.uniform(0.2, 1.1)),
                float(rng.uniform(0.35, 0.6)), float(rng.uniform(-0.6, 0.6)))
    return Scene(
        center=(float(0.5 + 0.1 * (u[1] - 0.5)), float(0.5 + 0.08 * (u[2] - 0.45))),
        half_width=float(hw),
        yaw=float(YAW_JITTER * (2 * u[3] - 1)),
        pitch=float(PITCH_JITTER * (2 * u[4] - 1)),
        roll=float(ROLL_JITTER * (2 * u[5] - 1)),
        bg_a=tuple(int(x) for x in 255 * rng.random(3)),
        bg_b=tuple(int(x) for x in 255 * rng.random(3)),
        bg_angle=float(2 * np.pi * u[6]),
        texture=(rng.standard_normal((6, 6, 3)) * 45 * u[8]) if u[7] < 0.5 else None,
        light_angle=float(2 * np.pi * u[9]),
        light=float(0.45 * u[10]),
        brightness=float(0.75 + 0.45 * u[11]),
        contrast=float(0.7 + 0.5 * u[12]),
        blur=float(0.3 + 1.0 * u[14]) if u[13] < 0.3 else 0.0,
        noise=float(1 + 6 * u[15]) if u[13] > 0.5 else 0.0,
        noise_seed=int(rng.integers(2**31)),
        glasses=(1 if occluder < 0.15 else 2) if 0.06 <= occluder < 0.17 else 0,
        hand=hand,
    )


# --------------------------------------------------------------------------- geometry
class _Shapes:
    """Collects point sets in face units (x, y, z, silhouette flag) so the
    whole face is posed and moved to pixels in one vectorised step."""

    def __init__(self):
        self.parts: list[tuple[str, np.ndarray, object, bool]] = []

    def add(self, name: str, xy, z, silhouette: bool = False):
        xy = np.asarray(xy, float).reshape(-1, 2)
        self.parts.append((name, xy, z, silhouette))

    def project(self, yaw, pitch, roll, center_px, scale_px) -> dict[str, np.ndarray]:
        xy = np.concatenate([p[1] for p in self.parts])
        z = np.empty(len(xy))
        sil = np.zeros(len(xy), bool)
        k = 0
        for _, pts, zval, silhouette in self.parts:
            z[k:k + len(pts)] = zval
            sil[k:k + len(pts)] = silhouette
            k += len(pts)
        x, y = xy.T
        cy, sy = np.cos(yaw), np.sin(yaw)
        cp, sp = np.cos(pitch), np.sin(pitch)
        # Surface points: rigid rotation (yaw about the vertical axis, then pitch).
        x1 = x * cy + z * sy
        z1 = -x * sy + z * cy
        y1 = y * cp - z1 * sp
        # Silhouette points: the head outline keeps its width (deep head),
        # only its forward-standing parts (chin, forehead) move.
        xs = x * np.sqrt(cy**2 + 0.8 * sy**2) + z * sy
        ys = y * np.sqrt(cp**2 + 0.8 * sp**2) - z * sp
        x1 = np.where(sil, xs, x1)
        y1 = np.where(sil, ys, y1)
        cr, sr = np.cos(roll), np.sin(roll)
        xr = x1 * cr - y1 * sr
        yr = x1 * sr + y1 * cr
        px = np.column_stack([center_px[0] + scale_px * xr, center_px[1] + scale_px * yr])
        out, k = {}, 0
        for name, pts, _, _ in self.parts:
            out[name] = px[k:k + len(pts)]
            k += len(pts)
        return out


def _surface_z(x, y, h):
    """Depth of the front of the head at (x, y) (face units)."""
    return 0.9 * np.sqrt(np.clip(1 - np.asarray(x) ** 2 - (np.asarray(y) / (1.05 * h)) ** 2, 0.04, None))


def _ellipse(cx, cy, rx, ry, n=14):
    c, s = _circle(n)
    return np.column_stack([cx + rx * c, cy + ry * s])


def _amounts(aus: Mapping[int, float]) -> dict[int, float]:
    out = {}
    for au, v in aus.items():
        au = int(au)
        if au not in EFFECT:
            raise ValueError(f"AU{au} is not one of the 23 SynthAU AUs {sorted(EFFECT)}")
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"intensity of AU{au} must be in [0, 1], got {v}")
        out[au] = EFFECT[au] * float(v)
    return out


def head_pose(aus: Mapping[int, float], scene: Scene) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from the pose AUs' intensities plus the
    scene's jitter (signs as in the module docstring)."""
    def angle(rng_, v):
        return rng_[0] + (rng_[1] - rng_[0]) * v if v > 0 else 0.0

    g = lambda au: float(aus.get(au, 0.0))  # noqa: E731
    yaw = scene.yaw + angle(YAW_PRESENT, g(51)) - angle(YAW_PRESENT, g(52))
    pitch = scene.pitch + angle(PITCH_PRESENT, g(53)) - angle(PITCH_PRESENT, g(54))
    roll = scene.roll + angle(ROLL_PRESENT, g(55)) - angle(ROLL_PRESENT, g(56))
    return yaw, pitch, roll


def _build(idt: Identity, a: dict[int, float]) -> tuple[_Shapes, dict]:
    """All face parts in face units, deformed by the AU amounts ``a``."""
    A = lambda au: a.get(au, 0.0)  # noqa: E731
    h = idt.face_height
    S = _Shapes()
    info = {}
    jaw_drop = 0.24 * A(26)

    # Outline: an egg with a narrowing jaw; the chin stands forward.
    cos_t, sin_t = _circle(40)  # t = 0 at the top of the head, pi at the chin
    lower, upper = np.maximum(-cos_t, 0), np.maximum(cos_t, 0)
    ox = sin_t * (1 - 0.35 * idt.jaw * lower**2)
    oy = -cos_t * h
    oy = oy + jaw_drop * np.maximum((oy / h - 0.15) / 0.85, 0) ** 1.5
    oz = 0.55 * lower**4 + 0.25 * upper**4
    S.add("outline", np.column_stack([ox, oy]), oz, silhouette=True)

    # Ears (drawn behind the face).
    ear_y = idt.eye_y + 0.18
    S.add("ear_l", _ellipse(-0.97, ear_y, 0.13, 0.24, 10), -0.15, silhouette=True)
    S.add("ear_r", _ellipse(0.97, ear_y, 0.13, 0.24, 10), -0.15, silhouette=True)

    # Hair: back (long hair), cap and fringe drawn over the forehead top.
    hl = -idt.hair_line * h
    if idt.hair_style == 2:
        tb = _lin(0.0, np.pi, 17)  # over the top, from the image right to the left
        back = np.column_stack([1.22 * np.cos(tb), -1.12 * h * np.sin(tb) + 0.25 * (1 - np.sin(tb))])
        back = np.concatenate([[[1.18, 0.85 * h]], back, [[-1.18, 0.85 * h]]])
        S.add("hair_back", back, -0.4, silhouette=True)
    if idt.hair_style in (1, 2, 3):
        line_y = hl + (0.12 if idt.hair_style == 3 else 0.0)
        ta = _lin(-np.pi / 2 - 0.25, np.pi / 2 + 0.25, 15)
        top = np.column_stack([1.06 * np.sin(ta), -1.08 * h * np.cos(ta)])
        top = top[::-1] if top[0, 0] > top[-1, 0] else top
        xs = top[-1, 0] * 0.92 + (top[0, 0] - top[-1, 0]) * 0.92 * _lin(0.0, 1.0, 11)
        front = np.column_stack([xs, line_y - 0.08 * np.cos(xs * np.pi / 2)
                                 + (0.1 if idt.hair_style == 3 else 0) * np.cos(xs * 7) ** 2])
        S.add("hair_top", top, 0.2 * np.cos(ta) ** 4, silhouette=True)
        S.add("hair_front", front, _surface_z(front[:, 0], front[:, 1], h))

    # Cheeks (raised by 6, folds by 12/10/9).
    cheek_y = idt.nose_y + 0.02 - 0.14 * A(6) - 0.03 * A(12)
    for side, sgn in (("l", -1), ("r", 1)):
        ck = _ellipse(sgn * 0.55, cheek_y, 0.22, 0.15, 12)
        S.add(f"cheek_{side}", ck, _surface_z(ck[:, 0], ck[:, 1], h))

    # Eyes (5 wider, 43 closed, 6 squint from below).
    closure = min(1.0, 0.55 + 0.6 * A(43)) if A(43) > 0 else 0.0
    s = _lin(-1.0, 1.0, 11)
    for side, sgn in (("l", -1), ("r", 1)):
        cx, cy = sgn * idt.eye_x, idt.eye_y
        ew = idt.eye_size
        hu = idt.eye_open * (1 + 1.3 * A(5)) * (1 - 0.25 * A(6)) * (1 - closure)
        hl_ = idt.eye_open * 0.7 * (1 - 0.75 * A(6)) * (1 - closure)
        ex = cx + ew * s
        up = cy - hu * (1 - s**2) ** 0.8 + 0.3 * idt.eye_open * closure * (1 - s**2)
        lo = cy + hl_ * (1 - s**2) ** 0.9 + 0.3 * idt.eye_open * closure * (1 - s**2)
        z = _surface_z(ex, up, h) + 0.02
        S.add(f"eye_up_{side}", np.column_stack([ex, up]), z)
        S.add(f"eye_lo_{side}", np.column_stack([ex, lo]), z)
        # Crease above the lid, bag line below (pushed up by 6).
        S.add(f"crease_{side}", np.column_stack([cx + 0.9 * ew * s[2:-2],
                                                 cy - idt.eye_open * (1 + 1.3 * A(5)) - 0.05 - 0.045 * (1 - s[2:-2] ** 2)]),
              z[2:-2])
        S.add(f"bag_{side}", np.column_stack([cx + 0.8 * ew * s[3:-1], cy + 0.1 - 0.06 * A(6) + 0.02 * (1 - s[3:-1] ** 2)]),
              z[3:-1])
        r = 0.55 * ew
        iris = _ellipse(cx, cy + 0.08 * idt.eye_open * (1 - closure), r, r, 14)
        S.add(f"iris_{side}", iris, z.mean() + 0.01)
        S.add(f"pupil_{side}", _ellipse(cx, cy + 0.08 * idt.eye_open, 0.45 * r, 0.45 * r, 8), z.mean() + 0.01)
        S.add(f"eyec_{side}", [[cx, cy]], z.mean())
        # Crow's feet at the outer corner (6).
        oc = cx + sgn * ew * 1.1
        feet = np.array([[oc, cy - 0.03], [oc + sgn * 0.1, cy - 0.07], [oc, cy + 0.01], [oc + sgn * 0.11, cy + 0.01],
                         [oc, cy + 0.04], [oc + sgn * 0.09, cy + 0.1]])
        if A(6) > 0:
            S.add(f"feet_{side}", feet, _surface_z(feet[:, 0], feet[:, 1], h))

        # Brow: inner (sb=0) to outer (sb=1); 1 raises inner, 2 outer, 4 lowers and knits.
        sb = _lin(0.0, 1.0, 7)
        bx = sgn * (idt.eye_x - ew * 1.05 + (ew * 2.2) * sb - 0.07 * A(4) * (1 - sb))
        by = (cy - idt.brow_gap - idt.brow_arch * np.sin(np.pi * (0.3 + 0.6 * sb))
              - 0.16 * A(1) * (1 - sb) ** 1.5 - 0.04 * A(1)
              - 0.2 * A(2) * sb**1.3 - 0.03 * A(2)
              + 0.12 * A(4) * (0.6 + 0.4 * (1 - sb)))
        th = idt.brow_thick * (1.1 - 0.5 * sb) * (1 + 0.3 * A(4))
        band = np.concatenate([np.column_stack([bx, by - th / 2]), np.column_stack([bx, by + th / 2])[::-1]])
        S.add(f"brow_{side}", band, _surface_z(band[:, 0], band[:, 1], h) + 0.03)

    # Forehead wrinkles (1 centre, 2 sides), glabella lines (4).
    fy = idt.eye_y - idt.brow_gap - 0.2
    for k in range(3):
        if A(1) > 0:
            xs = _lin(-0.22, 0.22, 5)
            S.add(f"fh_c{k}", np.column_stack([xs, fy - 0.07 * k + 0.03 * xs**2 * 8]), 0.85)
        if A(2) > 0:
            for side, sgn in (("l", -1), ("r", 1)):
                xs2 = sgn * _lin(0.3, 0.6, 4)
                S.add(f"fh_{side}{k}", np.column_stack([xs2, fy - 0.07 * k + 0.02 - 0.1 * (np.abs(xs2) - 0.3)]), 0.8)
    if A(4) > 0:
        for side, sgn in (("l", -1), ("r", 1)):
            S.add(f"glab_{side}", [[sgn * 0.06, idt.eye_y - 0.05], [sgn * 0.09, idt.eye_y - idt.brow_gap + 0.02]], 0.9)

    # Nose: bridge side, wings, nostrils, tip (9 wrinkles the bridge and lifts the wings; 10 lifts a little).
    ny, nw = idt.nose_y, idt.nose_width
    lift = 0.11 * A(9) + 0.03 * A(10)
    S.add("nose_tip", [[0.0, ny]], 1.2)  # the nose stands out: it moves most with yaw/pitch
    S.add("bridge", [[-0.06, idt.eye_y + 0.05], [-0.08, ny - 0.15], [-nw * 0.9, ny - 0.04 - lift]], [0.95, 1.05, 0.9])
    sn = _lin(-1.0, 1.0, 9)
    S.add("nose_base", np.column_stack([nw * sn, ny - lift * np.abs(sn) + 0.035 * (1 - sn**2) - 0.03 * np.abs(sn) ** 3]),
          0.95 + 0.2 * (1 - sn**2))
    for side, sgn in (("l", -1), ("r", 1)):
        S.add(f"nostril_{side}", _ellipse(sgn * nw * 0.45, ny + 0.015 - 0.5 * lift, 0.045 * (1 + 1.2 * A(9)),
                                           0.022 * (1 + 1.2 * A(9)), 8), 1.0)
    for k in range(3 if A(9) > 0 else 0):
        xs = _lin(-0.15, 0.15, 5)
        S.add(f"wrinkle_{k}", np.column_stack([xs, idt.eye_y + 0.08 + 0.06 * k - 0.05 * np.abs(xs) / 0.15]), 1.0)

    # Mouth.
    mw = idt.mouth_width * (1 + 0.22 * A(12) - 1.3 * A(18) + 0.75 * A(20) - 0.05 * A(15)
                            - 0.15 * A(24) - 0.2 * A(28))
    cdy = -0.13 * A(12) + 0.12 * A(15) + 0.06 * A(20) - 0.05 * A(17)
    # Lip thickness: 18 pouts, 20 stretches thin, 24 presses thin, 28 rolls the lips in.
    thick = max(0.05, 1 + 2.2 * A(18) - 0.8 * A(20) - 2.2 * A(24)) * max(0.0, 1 - 2.6 * A(28))
    tu = idt.lip_thick * thick
    tl = idt.lip_thick * 1.3 * thick
    gap = (0.06 + 0.09 * A(25) if A(25) > 0 else 0.0) + 0.26 * A(26)
    my = idt.mouth_y - 0.05 * A(17)
    s = _lin(-1.0, 1.0, 15)
    env = 1 - s**2
    line = my + cdy * s**2 - 0.02 * A(17) * env
    raise10 = 0.2 * A(10) * np.maximum(1 - np.abs(s) / 0.8, 0) ** 0.5
    in_up = line - 0.3 * gap * env**0.8 - raise10 * 0.6
    in_lo = line + 0.7 * gap * env**0.8 + jaw_drop * 0.55 * env**0.5
    round18 = 1.2 * A(18)
    out_up = in_up - tu * env**(0.6 - 0.3 * round18) * (1 - 0.3 * np.exp(-(s / 0.12) ** 2)) - raise10 * 0.4
    out_lo = in_lo + tl * env**(0.6 - 0.3 * round18)
    mx = mw * s
    mz = _surface_z(mx, line, h) + 0.08 + 0.15 * A(18)
    S.add("lip_out_up", np.column_stack([mx, out_up]), mz)
    S.add("lip_in_up", np.column_stack([mx, in_up]), mz)
    S.add("lip_in_lo", np.column_stack([mx, in_lo]), mz)
    S.add("lip_out_lo", np.column_stack([mx, out_lo]), mz)
    teeth_lo = np.minimum(in_up + np.minimum(0.45 * (in_lo - in_up), 0.07), in_lo)
    S.add("teeth_lo", np.column_stack([mx, teeth_lo]), mz)
    S.add("mouth_l", [[mx[0], line[0]]], mz[0])
    S.add("mouth_r", [[mx[-1], line[-1]]], mz[-1])
    # 10 lifts the upper lip off the upper teeth.
    info["mouth_open"] = gap > 0.015 or A(10) > 0
    info["lip_line_dark"] = 1 + 4.0 * A(24) + 4.0 * A(28)
    # 24: the pressed lips bulge the skin above and below the mouth.
    if A(24) > 0:
        k = slice(4, 11)
        S.add("bulge_up", np.column_stack([mx[k], out_up[k] - 0.05 - 0.03 * env[k]]), mz[k])
        S.add("bulge_lo", np.column_stack([mx[k], out_lo[k] + 0.06 + 0.03 * env[k]]), mz[k])

    # Nasolabial folds (12, 10, 9 deepen them) and chin (17 boss, sulcus).
    for side, sgn in (("l", -1), ("r", 1)):
        fx = np.array([nw + 0.05, nw + 0.12, mw + 0.06, mw + 0.08]) * sgn
        fyy = np.array([ny - 0.04, ny + 0.12, my - 0.02 + 0.5 * cdy, my + 0.12])
        S.add(f"fold_{side}", np.column_stack([fx, fyy]), _surface_z(fx, fyy, h))
    chin_y = (h - 0.05) + jaw_drop
    sulc = my + 0.16 + jaw_drop * 0.8 - 0.05 * A(17)
    xs = _lin(-0.14, 0.14, 7)
    S.add("sulcus", np.column_stack([xs, sulc + 0.04 * (xs / 0.14) ** 2]), 0.9)
    S.add("chin_boss", _ellipse(0, (sulc + chin_y) / 2 + 0.02, 0.2, (chin_y - sulc) / 2 * 0.75, 12), 0.9)
    info["amount"] = a
    return S, info


def _background(scene: Scene, size: int) -> Image.Image:
    """Colour gradient (plus optional low-frequency texture) as an RGB image;
    built on a 6x6 grid and upsampled (bicubic) for speed."""
    g = _lin(-1.0, 1.0, 6)
    d = np.cos(scene.bg_angle) * g[None, :] + np.sin(scene.bg_angle) * g[:, None]
    t = (d * 0.5 + 0.5)[..., None]
    grid = np.asarray(scene.bg_a, float) * (1 - t) + np.asarray(scene.bg_b, float) * t
    if scene.texture is not None:
        grid = grid + np.asarray(scene.texture, float)
    small = Image.fromarray(np.clip(grid, 0, 255).astype(np.uint8))
    return small.resize((size, size), Image.BICUBIC)


def _lighting(canvas: Image.Image, scene: Scene) -> np.ndarray:
    """Directional light gradient, brightness and contrast; uint8 (H, W, 3)."""
    size = canvas.size[0]
    if scene.light:
        g = _lin(-1.0, 1.0, 8)
        d = np.clip(np.cos(scene.light_angle) * g[None, :] + np.sin(scene.light_angle) * g[:, None], -1, 1)
        gain = (1 + scene.light * d) / (1 + scene.light)
        gmap = Image.fromarray((gain * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)
        canvas = ImageChops.multiply(canvas, Image.merge("RGB", (gmap, gmap, gmap)))
    img = np.asarray(canvas)
    scale = scene.brightness * (1 + scene.light)
    if scale != 1.0 or scene.contrast != 1.0:
        lut = np.clip((_lin(0.0, 255.0, 256) * scale - 128) * scene.contrast + 128, 0, 255).astype(np.uint8)
        img = lut[img]
    return img


def _noise(img: np.ndarray, scene: Scene) -> np.ndarray:
    """Add luminance noise (sigma ``scene.noise``) drawn from ``scene.noise_seed``."""
    if not scene.noise:
        return img
    rng = np.random.default_rng(scene.noise_seed)
    n = (scene.noise * rng.standard_normal(img.shape[:2], dtype=np.float32)).astype(np.int16)
    return np.clip(img.astype(np.int16) + n[..., None], 0, 255).astype(np.uint8)


def render_face(identity: Identity, au_intensities: Mapping[int, float], scene: Scene | None = None,
                size: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one face.

    ``au_intensities`` maps AU numbers to intensities in [0, 1] (absent AUs
    may be left out); the drawn change is ``EFFECT[au] * intensity``, pose AUs
    set the head angles (:func:`head_pose`). ``scene`` defaults to a plain,
    centred, frontal one.

    Returns ``image`` uint8 (size, size, 3) RGB, ``box`` float (4,) as
    ``x0, y0, x1, y1`` pixels and ``landmarks`` float (5, 2) pixels in MTCNN
    order (eye at image-left, eye at image-right, nose tip, mouth corner at
    image-left, mouth corner at image-right).
    """
    scene = scene or Scene()
    a = _amounts(au_intensities)
    yaw, pitch, roll = head_pose({k: float(v) for k, v in au_intensities.items()}, scene)
    shapes, info = _build(identity, a)
    center = (scene.center[0] * size, scene.center[1] * size)
    scale = scene.half_width * size
    P = shapes.project(np.radians(yaw), np.radians(pitch), np.radians(roll), center, scale)
    lw = max(1, int(round(size / 90)))  # line width for strong lines

    canvas = _background(scene, size)
    draw = ImageDraw.Draw(canvas)
    idt = identity
    skin = idt.skin
    dark = _shade(skin, 0.72)
    fold_col = lambda v: _lerp(skin, _shade(skin, 0.62), min(1.0, max(0.0, float(v))))  # noqa: E731
    pts = lambda name: P[name].ravel().tolist()  # noqa: E731

    # Body: neck and shoulders stay upright (only the head rolls).
    cx, cy = center
    hpx = idt.face_height * scale
    neck = [(cx - 0.5 * scale, cy + 0.5 * hpx), (cx + 0.5 * scale, cy + 0.5 * hpx),
            (cx + 0.55 * scale, cy + 1.6 * hpx), (cx - 0.55 * scale, cy + 1.6 * hpx)]
    draw.polygon(neck, fill=_shade(skin, 0.85))
    sh_y = cy + 1.12 * hpx
    draw.ellipse([cx - 1.9 * scale, sh_y, cx + 1.9 * scale, sh_y + 2.0 * scale], fill=idt.shirt)
    draw.polygon([(cx - 0.35 * scale, sh_y), (cx + 0.35 * scale, sh_y), (cx, sh_y + 0.45 * scale)], fill=_shade(skin, 0.85))

    if "hair_back" in P:
        draw.polygon(pts("hair_back"), fill=idt.hair)
    for e in ("ear_l", "ear_r"):
        draw.polygon(pts(e), fill=_shade(skin, 0.93), outline=dark)
    draw.polygon(pts("outline"), fill=skin)
    if "hair_top" in P:
        draw.polygon(pts("hair_top") + pts("hair_front"), fill=idt.hair)

    A = lambda au: a.get(au, 0.0)  # noqa: E731
    # Cheek apples and skin folds.
    for side in ("l", "r"):
        draw.polygon(pts(f"cheek_{side}"),
                     fill=_lerp(skin, (skin[0], int(skin[1] * 0.82), int(skin[2] * 0.82)), 0.35 + 0.5 * A(6)))
        fold = idt.folds + 0.9 * A(12) + 1.2 * A(10) + 0.9 * A(9) + 0.9 * A(20)
        draw.line(pts(f"fold_{side}"), fill=fold_col(fold), width=lw + (fold > 0.6))
        if A(6) > 0:
            f = P[f"feet_{side}"]
            for k in range(0, 6, 2):
                draw.line([tuple(f[k]), tuple(f[k + 1])], fill=fold_col(1.3 * A(6)), width=1)
    for k in range(3):
        if A(1) > 0:
            draw.line(pts(f"fh_c{k}"), fill=fold_col(0.9 * A(1) - 0.15 * k), width=1)
        if A(2) > 0:
            for side in ("l", "r"):
                draw.line(pts(f"fh_{side}{k}"), fill=fold_col(0.9 * A(2) - 0.15 * k), width=1)
    if A(4) > 0:
        for side in ("l", "r"):
            draw.line(pts(f"glab_{side}"), fill=fold_col(1.3 * A(4)), width=lw)
    if A(9) > 0:
        for k in range(3):
            draw.line(pts(f"wrinkle_{k}"), fill=fold_col(0.4 + 1.4 * A(9)), width=lw + 1)

    # Eyes and brows.
    closed = A(43) > 0 and min(1.0, 0.55 + 0.6 * A(43)) >= 0.999
    for side in ("l", "r"):
        up, lo = P[f"eye_up_{side}"], P[f"eye_lo_{side}"]
        draw.line(pts(f"crease_{side}"), fill=fold_col(0.55), width=1)
        draw.line(pts(f"bag_{side}"), fill=fold_col(0.25 + 0.9 * A(6)), width=1)
        if not closed:
            eye_poly = up.ravel().tolist() + _rev(lo)
            draw.polygon(eye_poly, fill=(238, 236, 230))
            for name, col in ((f"iris_{side}", idt.iris), (f"pupil_{side}", (15, 12, 12))):
                c = P[name].copy()
                # Clip the disc between the lids (lid height at the same x).
                yu = (np.interp(c[:, 0], up[:, 0], up[:, 1]) if up[0, 0] < up[-1, 0]
                      else np.interp(c[:, 0], up[::-1, 0], up[::-1, 1]))
                yl = (np.interp(c[:, 0], lo[:, 0], lo[:, 1]) if lo[0, 0] < lo[-1, 0]
                      else np.interp(c[:, 0], lo[::-1, 0], lo[::-1, 1]))
                c[:, 1] = np.clip(c[:, 1], yu, np.maximum(yu, yl))
                draw.polygon(c.ravel().tolist(), fill=col)
            draw.line(lo.ravel().tolist(), fill=_shade(skin, 0.6), width=1)
        draw.line(up.ravel().tolist(), fill=(35, 25, 22), width=lw + (1 if closed else 0))
        draw.polygon(pts(f"brow_{side}"), fill=_shade(idt.hair, 0.85) if idt.hair_style else _shade(skin, 0.45))

    # Nose.
    draw.line(pts("bridge"), fill=_shade(skin, 0.8), width=1)
    draw.line(pts("nose_base"), fill=_shade(skin, 0.62), width=lw)
    for side in ("l", "r"):
        draw.polygon(pts(f"nostril_{side}"), fill=_shade(skin, 0.4))

    # Mouth: opening, teeth, lips, lip line.
    lip_dark = _shade(idt.lips, 0.7)
    if info["mouth_open"]:
        draw.polygon(pts("lip_in_up") + _rev(P["lip_in_lo"]), fill=(70, 25, 30))
        draw.polygon(pts("lip_in_up") + _rev(P["teeth_lo"]), fill=(235, 232, 222))
    draw.polygon(pts("lip_out_up") + _rev(P["lip_in_up"]), fill=idt.lips)
    draw.polygon(pts("lip_in_lo") + _rev(P["lip_out_lo"]), fill=_shade(idt.lips, 1.06))
    if not info["mouth_open"]:
        pressed = A(24) + A(28)
        draw.line(pts("lip_in_up"), fill=_shade(lip_dark, 1.0 / info["lip_line_dark"]), width=lw + (pressed > 0.1))
    if A(24) > 0:
        for name in ("bulge_up", "bulge_lo"):
            draw.line(pts(name), fill=fold_col(0.3 + 2.0 * A(24)), width=lw)
    draw.line(pts("sulcus"), fill=fold_col(0.15 + 1.2 * A(17)), width=lw if A(17) > 0.3 else 1)
    if A(17) > 0:
        draw.arc(_bbox(P["chin_boss"]), 20, 160, fill=fold_col(1.2 * A(17)), width=lw + 1)

    # Occluders.
    eye_l, eye_r = P["eyec_l"][0], P["eyec_r"][0]
    if scene.glasses:
        r = idt.eye_size * scale * 1.35
        for e in (eye_l, eye_r):
            box = [e[0] - r, e[1] - 0.7 * r, e[0] + r, e[1] + 0.7 * r]
            draw.rounded_rectangle(box, radius=r * 0.4, outline=(25, 25, 30), width=lw,
                                   fill=(30, 30, 36) if scene.glasses == 2 else None)
        draw.line([tuple(eye_l + (r, -0.2 * r)), tuple(eye_r + (-r, -0.2 * r))], fill=(25, 25, 30), width=lw)
    if scene.hand is not None:
        hx, hy, hs, ha = scene.hand
        hc = np.array([cx + hx * scale, cy + hy * scale])
        rad = hs * scale
        d = np.array([np.sin(ha), -np.cos(ha)])
        n = np.array([d[1], -d[0]])
        palm = hc + np.column_stack([*_circle(14)]) @ np.array([n * 0.55 * rad, d * 0.5 * rad])
        hand_col = _shade(skin, 0.95)
        for k in range(4):
            base = hc + n * rad * (-0.4 + 0.27 * k) + d * 0.3 * rad
            tip = base + d * rad * (0.75 + 0.1 * (k in (1, 2)))
            draw.line([tuple(base), tuple(tip)], fill=hand_col, width=max(2, int(rad * 0.22)))
        draw.polygon([tuple(p) for p in palm], fill=hand_col, outline=_shade(skin, 0.75))

    if scene.blur > 0:
        canvas = canvas.filter(ImageFilter.GaussianBlur(scene.blur))
    img = _noise(_lighting(canvas, scene), scene)

    lm = np.stack([eye_l, eye_r, P["nose_tip"][0], P["mouth_l"][0], P["mouth_r"][0]])
    if lm[0, 0] > lm[1, 0]:
        lm[[0, 1]] = lm[[1, 0]]
    if lm[3, 0] > lm[4, 0]:
        lm[[3, 4]] = lm[[4, 3]]
    box = _face_box(P, identity)
    return img, box, lm


def _rev(p: np.ndarray) -> list[float]:
    return p[::-1].ravel().tolist()


def _bbox(p: np.ndarray) -> list[float]:
    return [float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())]


def _face_box(P: dict, identity: Identity) -> np.ndarray:
    """Detector-like box: the face outline from brow level to the chin."""
    out = P["outline"]
    n = len(out)
    # Outline points below the upper third (index 0 is the top of the head).
    keep = np.r_[n // 8 + 1: n - n // 8]
    pts = np.concatenate([out[keep], P["brow_l"], P["brow_r"]])
    return np.array(_bbox(pts), dtype=np.float64)
