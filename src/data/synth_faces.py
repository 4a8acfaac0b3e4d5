"""Generate a deterministic synthetic face dataset: images, .lst with landmarks, property, pairs."""
import argparse
import os
import shutil
import uuid

import cv2
import numpy as np

from common.record_io import format_lst_line, write_property

# Drawing uses OpenCV's fixed-point coordinates (value * 2**SHIFT) so that features, and hence
# the landmarks, sit at sub-pixel positions instead of snapping to the pixel grid.
SHIFT = 4
# Identity folders are numbered from 0 with at least this many digits, so sorted = numeric order.
MIN_NAME_DIGITS = 4
ALIGNED_SIZE = (112, 112)

# Endpoints of the skin and hair colour ranges, RGB.
LIGHT_SKIN = np.array([238.0, 206.0, 180.0])
DARK_SKIN = np.array([105.0, 68.0, 48.0])
HAIR_COLOURS = np.array([[22.0, 18.0, 18.0], [70.0, 45.0, 28.0], [125.0, 80.0, 45.0],
                         [205.0, 170.0, 110.0], [150.0, 50.0, 25.0], [170.0, 170.0, 170.0]])
IRIS_COLOURS = np.array([[50.0, 32.0, 18.0], [35.0, 60.0, 100.0], [50.0, 80.0, 45.0],
                         [70.0, 70.0, 75.0]])


def _bgr(rgb):
    """An RGB triple as the BGR tuple of floats OpenCV draws with."""
    rgb = np.clip(rgb, 0, 255)
    return (float(rgb[2]), float(rgb[1]), float(rgb[0]))


def _fixed(points):
    """Float (x, y) points as the int32 fixed-point array OpenCV expects with shift=SHIFT."""
    return np.round(np.asarray(points, dtype=np.float64) * (1 << SHIFT)).astype(np.int32)


def _fill_polygon(canvas, points, colour):
    cv2.fillPoly(canvas, [_fixed(points).reshape(-1, 1, 2)], colour, cv2.LINE_AA, SHIFT)


def _fill_ellipse(canvas, centre, axes, colour, angle=0.0):
    centre = tuple(int(v) for v in _fixed(centre))
    axes = tuple(int(v) for v in _fixed(np.maximum(axes, 0.05)))
    cv2.ellipse(canvas, centre, axes, angle, 0, 360, colour, -1, cv2.LINE_AA, SHIFT)


def _polyline(canvas, points, colour, thickness):
    cv2.polylines(canvas, [_fixed(points).reshape(-1, 1, 2)], False, colour,
                  max(1, int(round(thickness))), cv2.LINE_AA, SHIFT)


def sample_identity(rng):
    """Random identity traits (geometry in units of a 128-pixel canvas, colours RGB) as a dict."""
    tone = rng.uniform()
    hair_pick = rng.integers(len(HAIR_COLOURS))
    identity = {
        'skin': ((1 - tone) * LIGHT_SKIN + tone * DARK_SKIN) * rng.uniform(0.92, 1.08)
                + rng.normal(0, 4, 3),
        'hair': HAIR_COLOURS[hair_pick] + rng.normal(0, 10, 3),
        'iris': IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))] + rng.normal(0, 6, 3),
        'lip_tint': rng.uniform(0.75, 0.9),
        # Face outline: half width and height, and how much the jaw narrows towards the chin.
        'face_w': rng.uniform(31, 39),
        'face_h': rng.uniform(40, 48),
        'jaw': rng.uniform(0.0, 0.3),
        'ear_r': rng.uniform(5, 8),
        'ear_dy': rng.uniform(-1, 5),
        # Eyes: eye line above the face centre, half spacing, sclera size, iris radius.
        'eye_y': rng.uniform(-9, -3),
        'eye_dx': rng.uniform(13, 18),
        'eye_w': rng.uniform(4.5, 7.0),
        'eye_ratio': rng.uniform(0.45, 0.7),
        'iris_r': rng.uniform(2.6, 3.6),
        # Brows: clearance between the open eye's top and the brow's lowest point.
        'brow_gap': rng.uniform(1.5, 4.5),
        'brow_thick': rng.uniform(1.6, 3.6),
        'brow_tilt': rng.uniform(-0.25, 0.3),
        'brow_len': rng.uniform(1.0, 1.5),
        # Nose and mouth distances below the eye line, as fractions of the eye-to-chin distance.
        'nose_frac': rng.uniform(0.36, 0.46),
        'nose_w': rng.uniform(3.5, 7.0),
        'nose_ridge': bool(rng.uniform() < 0.5),
        'mouth_frac': rng.uniform(0.64, 0.76),
        'mouth_w': rng.uniform(9, 15),
        'lip_thick': rng.uniform(1.5, 3.2),
        # Hair: 0 cropped, 1 cap, 2 cap with fringe, 3 long; hairline height above the eyes.
        'hair_style': int(rng.integers(4)),
        'hair_margin': rng.uniform(2, 7),
        'hairline': rng.uniform(14, 22),
        'hairline_power': rng.uniform(2, 4),
        'fringe_amp': rng.uniform(2, 5),
        'fringe_freq': rng.uniform(0.25, 0.5),
        'beard': rng.uniform(0.4, 0.8) if rng.uniform() < 0.2 else 0.0,
        'moustache': bool(rng.uniform() < 0.2),
        'glasses': bool(rng.uniform() < 0.15),
        'mole': rng.uniform([-20, -5], [20, 30]) if rng.uniform() < 0.3 else None,
    }
    return identity


def sample_variation(rng):
    """Random per-image conditions: pose, expression, lighting, background and noise, as a dict."""
    return {
        'angle': float(np.clip(rng.normal(0, 5), -14, 14)),
        'scale': rng.uniform(0.9, 1.1),
        'shift': np.clip(rng.normal(0, 3, 2), -8, 8),
        'turn': rng.uniform(-2.5, 2.5),
        'smile': rng.uniform(-0.4, 1.0),
        'mouth_open': rng.uniform(0, 1) if rng.uniform() < 0.3 else 0.0,
        'eye_open': 0.4 if rng.uniform() < 0.05 else rng.uniform(0.6, 1.0),
        'gaze': np.clip(rng.normal(0, 0.4, 2), -0.8, 0.8),
        'brow_raise': rng.uniform(-0.5, 1.5),
        'background': rng.uniform(30, 225, 3),
        'background2': rng.uniform(30, 225, 3),
        'background_dir': rng.uniform(0, 2 * np.pi),
        'gain': rng.uniform(0.75, 1.2),
        'light_dir': rng.uniform(0, 2 * np.pi),
        'light_amp': rng.uniform(0, 0.35),
        'cast': rng.uniform(0.92, 1.08, 3),
        'blur': rng.uniform(0.4, 0.8) if rng.uniform() < 0.3 else 0.0,
        'noise': rng.uniform(2, 7),
        'noise_seed': int(rng.integers(2 ** 32)),
        'jpeg_quality': int(rng.integers(75, 96)),
    }


def _face_outline(ident, cx, cy, u, samples=48):
    """Closed outline of the face: an ellipse whose lower half narrows towards the chin."""
    t = np.linspace(0, 2 * np.pi, samples, endpoint=False)
    dy = np.sin(t)  # -1 at the top of the face, +1 at the chin
    narrowing = 1 - ident['jaw'] * np.maximum(dy, 0)
    x = cx + ident['face_w'] * u * np.cos(t) * narrowing
    y = cy + ident['face_h'] * u * dy
    return np.stack([x, y], axis=1)


def _hair_cap(ident, cx, cy, u):
    """Polygon of the hair on top of the head, its lower edge being the hairline."""
    outer_w = (ident['face_w'] + ident['hair_margin']) * u
    outer_h = (ident['face_h'] + 0.6 * ident['hair_margin']) * u
    eye_line = cy + ident['eye_y'] * u
    top = eye_line - ident['hairline'] * u
    side = eye_line - 2 * u  # the hair comes down the sides to just above the eyes
    # Upper arc of the outer ellipse, from the left side level round the top to the right side.
    start = np.arcsin(np.clip((cy - side) / outer_h, -1, 1))
    t = np.linspace(np.pi - start, start, 32)
    arc = np.stack([cx + outer_w * np.cos(t), cy - outer_h * np.sin(t)], axis=1)
    # Hairline across the forehead, from right to left, rising towards the middle.
    face_w = ident['face_w'] * u
    x = np.linspace(face_w, -face_w, 32)
    y = top + (side - top) * np.abs(x / face_w) ** ident['hairline_power']
    if ident['hair_style'] == 2:
        fringe = ident['fringe_amp'] * u * (0.5 + 0.5 * np.sin(ident['fringe_freq'] * x / u))
        y = y + fringe * (np.abs(x) < 0.8 * face_w)
    hairline = np.stack([cx + x, y], axis=1)
    return np.concatenate([arc, hairline])


def render_face(identity, variation, size=128):
    """Draw one face: (BGR uint8 image, bbox x1 y1 x2 y2 ints, 5x2 float32 landmarks (x, y)).

    Landmarks: left eye, right eye, nose tip, left and right mouth corner (as seen in the image).
    """
    ident, var = identity, variation
    u = size / 128.0
    cx, cy = size / 2.0, size / 2.0 + 2 * u
    skin = ident['skin']
    skin_c = _bgr(skin)
    hair_c = _bgr(ident['hair'] if ident['hair_style'] else 0.5 * (ident['hair'] + skin))
    shadow_c = _bgr(skin * 0.72)
    dark_c = _bgr(skin * 0.35)

    # The face is drawn upright in a layer with its own coverage mask, then posed by one warp.
    layer = np.zeros((size, size, 3), np.uint8)
    mask = np.zeros((size, size), np.uint8)

    def paint(draw, *shape, colour):
        """Draw a part that covers the background: into the layer and into the mask."""
        draw(layer, *shape, colour)
        draw(mask, *shape, 255)

    if ident['hair_style'] == 3:  # long hair falls behind the face down to the jaw
        hw = (ident['face_w'] + ident['hair_margin'] + 2) * u
        paint(_fill_ellipse, (cx, cy - 4 * u), (hw, ident['face_h'] * u + 4 * u), colour=hair_c)
        paint(_fill_polygon, [(cx - hw, cy), (cx + hw, cy),
                              (cx + hw * 0.9, cy + ident['face_h'] * 0.75 * u),
                              (cx - hw * 0.9, cy + ident['face_h'] * 0.75 * u)], colour=hair_c)
    ear_y = cy + (ident['eye_y'] + ident['ear_dy'] + 4) * u
    for sign in (-1, 1):
        paint(_fill_ellipse, (cx + sign * (ident['face_w'] - 1) * u, ear_y),
              (ident['ear_r'] * 0.7 * u, ident['ear_r'] * u), colour=_bgr(skin * 0.9))
    outline = _face_outline(ident, cx, cy, u)
    paint(_fill_polygon, outline, colour=skin_c)

    turn = var['turn'] * u
    eye_line = cy + ident['eye_y'] * u
    chin_distance = (ident['face_h'] - ident['eye_y']) * u
    mouth_y = eye_line + ident['mouth_frac'] * chin_distance
    if ident['beard'] > 0:
        lower = outline[outline[:, 1] > mouth_y - 4 * u]
        lower = lower[np.argsort(np.arctan2(lower[:, 1] - cy, lower[:, 0] - cx))]
        beard_c = _bgr(ident['beard'] * ident['hair'] + (1 - ident['beard']) * skin)
        _fill_polygon(layer, lower, beard_c)
    paint(_fill_polygon, _hair_cap(ident, cx, cy, u), colour=hair_c)

    # Eyes: white, iris, black pupil (the eye landmark), upper lid; brows above.
    eye_h = ident['eye_w'] * ident['eye_ratio'] * var['eye_open'] * u
    eyes = []
    for sign in (-1, 1):
        ex = cx + sign * ident['eye_dx'] * u + turn
        pupil = np.array([ex, eye_line]) + var['gaze'] * u
        eyes.append(pupil)
        _fill_ellipse(layer, (ex, eye_line), (ident['eye_w'] * u, eye_h), (235, 235, 235))
        iris_r = ident['iris_r'] * u
        _fill_ellipse(layer, pupil, (iris_r, min(iris_r, eye_h)), _bgr(ident['iris']))
        _fill_ellipse(layer, pupil, (0.6 * iris_r, min(0.6 * iris_r, eye_h)), (15, 15, 15))
        lid = [(ex + ident['eye_w'] * u * k, eye_line - eye_h * np.sqrt(1 - k * k))
               for k in np.linspace(-1, 1, 9)]
        _polyline(layer, lid, dark_c, 1.2 * u)
        half = ident['brow_len'] * ident['eye_w'] * u
        rise = sign * ident['brow_tilt'] * half  # positive tilt raises the outer ends
        thick = ident['brow_thick'] * u
        # The brow never touches the eye, so the pupil stays a dark blob on a light background.
        lowest = eye_line - (ident['eye_w'] * ident['eye_ratio'] + ident['brow_gap']
                             + var['brow_raise']) * u
        brow_y = lowest - abs(rise) - thick
        brow = [(ex - half, brow_y + rise), (ex + half, brow_y - rise),
                (ex + half, brow_y - rise + thick), (ex - half, brow_y + rise + thick)]
        _fill_polygon(layer, brow, _bgr(ident['hair']))
    if ident['glasses']:
        radius = (ident['eye_w'] + 3) * u
        for pupil in eyes:
            cv2.circle(layer, tuple(int(v) for v in _fixed(pupil)), int(radius * (1 << SHIFT)),
                       (30, 30, 30), max(1, int(round(u))), cv2.LINE_AA, SHIFT)
        _polyline(layer, [eyes[0] + (radius, 0), eyes[1] - (radius, 0)], (30, 30, 30), u)

    # Nose: the tip (landmark) moves a little more than the eyes when the head turns.
    nose = np.array([cx + 1.3 * turn, eye_line + ident['nose_frac'] * chin_distance])
    if ident['nose_ridge']:
        _polyline(layer, [(cx + turn, eye_line + 3 * u), nose - (0, 2 * u)], shadow_c, u)
    nose_w = ident['nose_w'] * u
    _polyline(layer, [nose + (-nose_w, -2 * u), nose + (-nose_w / 2, 0), nose,
                      nose + (nose_w / 2, 0), nose + (nose_w, -2 * u)], shadow_c, 1.2 * u)
    for sign in (-1, 1):
        _fill_ellipse(layer, nose + (sign * nose_w * 0.45, -1.2 * u), (1.3 * u, 0.8 * u), dark_c)

    # Mouth: corners (landmarks) go up with a smile; an open mouth shows a dark gap.
    corner_y = mouth_y - var['smile'] * 2.5 * u
    half_w = ident['mouth_w'] * u
    mouth = [np.array([cx + turn - half_w, corner_y]), np.array([cx + turn + half_w, corner_y])]
    k = np.linspace(-1, 1, 13)
    sag = var['smile'] * 2.5 * u * (1 - k * k)
    opening = var['mouth_open'] * 6 * u * (1 - k * k)
    upper = np.stack([cx + turn + half_w * k, corner_y + sag - opening / 2], axis=1)
    lower = np.stack([cx + turn + half_w * k, corner_y + sag + opening / 2], axis=1)
    lip_c = _bgr(skin * np.array([1.05, ident['lip_tint'], ident['lip_tint']]) * 0.85)
    if var['mouth_open'] > 0.05:
        _fill_polygon(layer, np.concatenate([upper, lower[::-1]]), (25, 20, 40))
    _polyline(layer, upper, lip_c, ident['lip_thick'] * u)
    _polyline(layer, lower + (0, ident['lip_thick'] * 0.5 * u), lip_c, ident['lip_thick'] * u)
    if ident['moustache']:
        _polyline(layer, upper[2:-2] - (0, 3.5 * u), _bgr(ident['hair']), 2.5 * u)
    if ident['mole'] is not None:
        _fill_ellipse(layer, (cx + ident['mole'][0] * u + turn, cy + ident['mole'][1] * u),
                      (0.9 * u, 0.9 * u), _bgr(skin * 0.4))

    # Pose: rotate and scale about the face centre, then shift.
    matrix = cv2.getRotationMatrix2D((cx, cy), var['angle'], var['scale'])
    matrix[:, 2] += var['shift'] * u
    layer = cv2.warpAffine(layer, matrix, (size, size), flags=cv2.INTER_LINEAR)
    cover = cv2.warpAffine(mask, matrix, (size, size), flags=cv2.INTER_LINEAR)
    cover = cover.astype(np.float32)[..., None] / np.float32(255)

    # Background gradient, lighting gradient with a colour cast, blur and sensor noise.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / np.float32(size) - np.float32(0.5)
    along = xx * np.cos(var['background_dir']) + yy * np.sin(var['background_dir']) + 0.5
    along = np.clip(along, 0, 1)[..., None]
    background = ((1 - along) * var['background'][::-1].astype(np.float32)
                  + along * var['background2'][::-1].astype(np.float32))
    # The layer's anti-aliased edges were drawn over black, i.e. already weighted by coverage.
    img = background * (1 - cover) + layer.astype(np.float32)
    light = var['gain'] * (1 + var['light_amp'] * (xx * np.cos(var['light_dir'])
                                                   + yy * np.sin(var['light_dir'])))
    img *= light[..., None] * var['cast'][::-1].astype(np.float32)
    if var['blur'] > 0:
        img = cv2.GaussianBlur(img, (0, 0), var['blur'] * u)
    noise_rng = np.random.default_rng(var['noise_seed'])
    img += noise_rng.standard_normal(img.shape, dtype=np.float32) * np.float32(var['noise'])
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)

    landmarks = np.array(eyes + [nose] + mouth, dtype=np.float64)
    landmarks = landmarks @ matrix[:, :2].T + matrix[:, 2]
    corners = outline @ matrix[:, :2].T + matrix[:, 2]
    bbox = [int(np.floor(max(corners[:, 0].min(), 0))), int(np.floor(max(corners[:, 1].min(), 0))),
            int(np.ceil(min(corners[:, 0].max(), size - 1))),
            int(np.ceil(min(corners[:, 1].max(), size - 1)))]
    return img, bbox, landmarks.astype(np.float32)


def identity_rng(seed, identity):
    """The generator of one identity's traits, independent of how many identities there are."""
    return np.random.default_rng([seed, 0, identity])


def image_rng(seed, identity, index):
    """The generator of one image's conditions."""
    return np.random.default_rng([seed, 1, identity, index])


def pair_capacity(num_identities, images_per_identity):
    """How many distinct (same-identity, different-identity) pairs such a dataset has."""
    same = num_identities * images_per_identity * (images_per_identity - 1) // 2
    different = num_identities * (num_identities - 1) // 2 * images_per_identity ** 2
    return same, different


def sample_pairs(rng, identities, images_per_identity, num_pairs):
    """Balanced pairs ((id, k), (id, k), issame), alternating same and different, no repeats."""
    if num_pairs % 2:
        raise ValueError("num_pairs must be even (half same, half different), got %d" % num_pairs)
    half = num_pairs // 2
    for kind, capacity in zip(('same', 'different'),
                              pair_capacity(len(identities), images_per_identity)):
        if half > capacity:
            raise ValueError("cannot draw %d distinct %s-identity pairs from %d identities with "
                             "%d images each (at most %d); lower num_pairs"
                             % (half, kind, len(identities), images_per_identity, capacity))
    seen = set()

    def draw(same):
        while True:
            if same:
                person = identities[rng.integers(len(identities))]
                k1, k2 = rng.choice(images_per_identity, 2, replace=False)
                first, second = (person, int(k1)), (person, int(k2))
            else:
                p1, p2 = rng.choice(len(identities), 2, replace=False)
                first = (identities[p1], int(rng.integers(images_per_identity)))
                second = (identities[p2], int(rng.integers(images_per_identity)))
            key = tuple(sorted([first, second]))
            if key not in seen:
                seen.add(key)
                return first, second, same

    pairs = []
    for _ in range(half):
        pairs.append(draw(True))
        pairs.append(draw(False))
    return pairs


def _format_landmark(landmark):
    return ' '.join('%.3f %.3f' % (x, y) for x, y in landmark)


def generate(output, num_identities, images_per_identity, seed=0, val_identities=0,
             num_pairs=None, size=128):
    """Write the dataset to the new folder `output`; returns a dict of counts.

    output/<identity>/<k>.jpg for num_identities + val_identities identities; train.lst (aligned=0
    lines with bbox and landmarks, absolute paths) and property cover the first num_identities;
    verification_pairs.txt (paths relative to output) draws from the val identities if any, else
    from the training ones; num_pairs None means 600, or as many as those identities allow.
    The folder appears only once complete.
    """
    if num_identities < 1 or images_per_identity < 1:
        raise ValueError("need at least 1 identity and 1 image per identity, got %d and %d"
                         % (num_identities, images_per_identity))
    if val_identities < 0 or (num_pairs is not None and num_pairs < 0):
        raise ValueError("val_identities and num_pairs must be >= 0, got %r and %r"
                         % (val_identities, num_pairs))
    if size < 64:
        raise ValueError("size must be at least 64 pixels, got %d" % size)
    output = os.path.abspath(output)
    if os.path.exists(output) and (not os.path.isdir(output) or os.listdir(output)):
        raise FileExistsError("output %r already exists and is not an empty folder" % output)
    total = num_identities + val_identities
    digits = max(MIN_NAME_DIGITS, len(str(total - 1)))
    pair_ids = list(range(num_identities, total)) if val_identities else list(range(num_identities))
    if num_pairs is None:
        num_pairs = 2 * min(300, *pair_capacity(len(pair_ids), images_per_identity))
    # Check the pairs request before rendering anything.
    pairs = sample_pairs(np.random.default_rng([seed, 2]), pair_ids, images_per_identity, num_pairs)

    # Built under a fresh name beside the output and renamed when complete; os.mkdir (unlike
    # mkdtemp) leaves the usual umask permissions.
    parent, name = os.path.split(output)
    os.makedirs(parent, exist_ok=True)
    work = os.path.join(parent, '.%s.%d.%s.partial' % (name, os.getpid(), uuid.uuid4().hex[:8]))
    os.mkdir(work)
    try:
        landmarks = {}
        lst_lines = []
        for person in range(total):
            folder = '%0*d' % (digits, person)
            os.mkdir(os.path.join(work, folder))
            identity = sample_identity(identity_rng(seed, person))
            for k in range(images_per_identity):
                variation = sample_variation(image_rng(seed, person, k))
                img, bbox, landmark = render_face(identity, variation, size)
                relpath = os.path.join(folder, '%d.jpg' % k)
                ok, data = cv2.imencode('.jpg', img,
                                        [cv2.IMWRITE_JPEG_QUALITY, variation['jpeg_quality']])
                if not ok:
                    raise RuntimeError("OpenCV failed to JPEG-encode %s" % relpath)
                with open(os.path.join(work, relpath), 'wb') as f:
                    f.write(data.tobytes())
                landmarks[(person, k)] = (relpath, landmark)
                if person < num_identities:
                    lst_lines.append(format_lst_line(0, os.path.join(output, relpath), person,
                                                     bbox, landmark))
        with open(os.path.join(work, 'train.lst'), 'w') as f:
            f.write('\n'.join(lst_lines) + '\n')
        write_property(work, num_identities, ALIGNED_SIZE)
        with open(os.path.join(work, 'verification_pairs.txt'), 'w') as f:
            for first, second, same in pairs:
                path1, landmark1 = landmarks[first]
                path2, landmark2 = landmarks[second]
                f.write('%s %s %d %s %s\n' % (path1, path2, int(same), _format_landmark(landmark1),
                                              _format_landmark(landmark2)))
        if os.path.isdir(output):
            os.rmdir(output)  # empty, checked above
        os.rename(work, output)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {'identities': total, 'train_identities': num_identities,
            'images': total * images_per_identity, 'pairs': len(pairs)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Render a deterministic synthetic face dataset: N identities x M images of "
                    "simple drawn faces (identity-specific shape, colours and features; per-image "
                    "pose, expression, lighting and noise). Writes OUTPUT/<identity>/<k>.jpg, "
                    "OUTPUT/train.lst (aligned=0, bbox and 5 landmarks, for face2rec2.py), "
                    "OUTPUT/property and OUTPUT/verification_pairs.txt (for pairs2pack.py).")
    parser.add_argument('--output', required=True, help='new (or empty) folder to create')
    parser.add_argument('--num-identities', type=int, default=100,
                        help='identities in train.lst and property (default 100)')
    parser.add_argument('--images-per-identity', type=int, default=10,
                        help='images of each identity (default 10)')
    parser.add_argument('--val-identities', type=int, default=0,
                        help='extra identities used only for the verification pairs '
                             '(default 0: pairs come from the training identities)')
    parser.add_argument('--num-pairs', type=int, default=None,
                        help='verification pairs, half same and half different (default 600, or '
                             'as many as the identities allow)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    parser.add_argument('--size', type=int, default=128,
                        help='width and height of the rendered images in pixels (default 128)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    counts = generate(args.output, args.num_identities, args.images_per_identity, seed=args.seed,
                      val_identities=args.val_identities, num_pairs=args.num_pairs,
                      size=args.size)
    print('wrote %(images)d images of %(identities)d identities and %(pairs)d pairs' % counts,
          'to', os.path.abspath(args.output))


if __name__ == '__main__':
    main()
