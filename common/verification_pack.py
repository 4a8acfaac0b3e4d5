"""Reading and writing verification packs (.bin): pickled (images, issame) pairs, LFW/CFP/AgeDB."""
import codecs
import os
import pickle
import uuid

import numpy as np
import numpy.core.multiarray
import numpy.core.numeric

# Python 2's highest pickle protocol: files written with it still load in the 2019 Py2 tools.
PICKLE_PROTOCOL = 2


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global that a verification pack never needs."""


def _latin1_encode(text, encoding='latin1', errors='strict'):
    """The one use of _codecs.encode in these files: Py3 protocol-2 bytes stored as latin-1 text."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise UnsafePickleError("_codecs.encode is allowed only as encode(<str>, 'latin1') (how "
                                "Python 3 writes bytes at protocol 2), got encode(%s, %r)"
                                % (type(text).__name__, encoding))
    return codecs.encode(text, 'latin1', errors)


# Every global a .bin legitimately references: numpy arrays (cv2.imencode output) and scalars,
# pickled by numpy 1.x (numpy.core) or 2.x (numpy._core), and Py3 bytes at protocol 2.
_ALLOWED_GLOBALS = {
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
    ('numpy.core.multiarray', '_reconstruct'): numpy.core.multiarray._reconstruct,
    ('numpy.core.multiarray', 'scalar'): numpy.core.multiarray.scalar,
    ('numpy.core.numeric', '_frombuffer'): numpy.core.numeric._frombuffer,  # protocol 5
    ('numpy._core.multiarray', '_reconstruct'): numpy.core.multiarray._reconstruct,
    ('numpy._core.multiarray', 'scalar'): numpy.core.multiarray.scalar,
    ('numpy._core.numeric', '_frombuffer'): numpy.core.numeric._frombuffer,
    ('_codecs', 'encode'): _latin1_encode,
}


class _PackUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals in _ALLOWED_GLOBALS and so runs no foreign code.

    encoding='bytes' turns Python 2 `str` (the raw JPEG bytes of lfw.bin) into bytes instead of
    failing on the 0xFF of the JPEG header; Python 3 text still loads as str.
    """

    def __init__(self, file, path):
        super().__init__(file, encoding='bytes')
        self._path = path

    def find_class(self, module, name):
        found = _ALLOWED_GLOBALS.get((module, name))
        if found is None:
            raise UnsafePickleError(
                "%s: refusing to load the global %s.%s; a verification pack holds only a list of "
                "images (bytes or numpy uint8 arrays) and a list of bools, so this file is not a "
                "verification pack or has been tampered with" % (self._path, module, name))
        return found

    def persistent_load(self, pid):
        raise UnsafePickleError("%s: refusing a persistent id %r; verification packs have none"
                                % (self._path, pid))


def _as_image_bytes(item, path, index):
    """One encoded image as bytes: Py2 str / Py3 bytes as is, a cv2.imencode uint8 array as raw."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, bytearray):
        return bytes(item)
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise ValueError("%s: image %d is a numpy array of dtype %s; expected uint8 "
                             "(the output of cv2.imencode)" % (path, index, item.dtype))
        return item.tobytes()
    raise ValueError("%s: image %d is a %s; expected bytes or a numpy uint8 array holding an "
                     "encoded image" % (path, index, type(item).__name__))


def _as_bool(item, path, index):
    """One issame flag as a Python bool; numpy bools and the integers 0/1 are accepted too."""
    if isinstance(item, (bool, np.bool_)):
        return bool(item)
    if isinstance(item, (int, np.integer)) and item in (0, 1):
        return bool(item)
    raise ValueError("%s: issame_list[%d] is %r (%s); expected a bool"
                     % (path, index, item, type(item).__name__))


def _check_pairs(bins, issame_list, path):
    """Validate the structure and return (list of bytes, list of bool); `path` names the file."""
    if not isinstance(bins, (list, tuple)):
        raise ValueError("%s: the images must be a list, got %s" % (path, type(bins).__name__))
    if isinstance(issame_list, np.ndarray):
        issame_list = issame_list.reshape(-1).tolist()
    if not isinstance(issame_list, (list, tuple)):
        raise ValueError("%s: issame_list must be a list of bools, got %s"
                         % (path, type(issame_list).__name__))
    if len(bins) != 2 * len(issame_list):
        raise ValueError("%s: expected 2 images per pair, i.e. %d images for %d issame flags, "
                         "got %d images"
                         % (path, 2 * len(issame_list), len(issame_list), len(bins)))
    images = [_as_image_bytes(item, path, i) for i, item in enumerate(bins)]
    flags = [_as_bool(item, path, i) for i, item in enumerate(issame_list)]
    return images, flags


def load_pairs_bin(path):
    """Load a verification pack: (bins, issame_list) with bins[2k], bins[2k+1] the images of pair k.

    Accepts the files of every InsightFace version (Python 2 str or numpy-array images, Python 3
    bytes) while refusing any pickle that references other globals. Images come back as bytes,
    flags as bools.
    """
    path = os.fspath(path)
    with open(path, 'rb') as f:
        try:
            obj = _PackUnpickler(f, path).load()
        except UnsafePickleError:
            raise
        except Exception as err:
            raise ValueError("%s: not a readable verification pack (%s: %s)"
                             % (path, type(err).__name__, err)) from None
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise ValueError("%s: expected a pickled 2-tuple (bins, issame_list), got %s%s"
                         % (path, type(obj).__name__,
                            " of length %d" % len(obj) if isinstance(obj, (tuple, list)) else ""))
    return _check_pairs(obj[0], obj[1], path)


def save_pairs_bin(path, bins, issame_list):
    """Write (bins, issame_list) as a protocol-2 pickle that the original Python 2 tools can read.

    bins: 2 encoded images (bytes or uint8 arrays) per pair, stored as bytes (Python 2 reads them
    back as str, like the released lfw.bin). The file appears only once it is complete.
    """
    path = os.fspath(path)
    images, flags = _check_pairs(bins, issame_list, path)
    # A fresh hidden name in the same folder (so the rename is atomic), created with open() rather
    # than mkstemp so that the file gets the usual umask permissions.
    directory, name = os.path.split(os.path.abspath(path))
    tmp_path = os.path.join(directory, '.%s.%d.%s.tmp' % (name, os.getpid(), uuid.uuid4().hex[:8]))
    try:
        with open(tmp_path, 'xb') as f:
            pickle.dump((images, flags), f, protocol=PICKLE_PROTOCOL)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def read_lfw_pairs(pairs_path):
    """The pairs of an LFW-style pairs.txt (header line skipped) as lists of 3 or 4 strings.

    A list, not the original's numpy array: mixing 3- and 4-field rows is an error in numpy >= 1.24.
    """
    pairs = []
    with open(pairs_path, 'r') as f:
        lines = f.readlines()[1:]
    for line_no, line in enumerate(lines, start=2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (3, 4):
            raise ValueError("%s:%d: expected 'name i j' or 'name1 i name2 j', got %r"
                             % (pairs_path, line_no, line.rstrip('\n')))
        pairs.append(fields)
    return pairs


def lfw_pair_paths(lfw_dir, pairs, file_ext='jpg'):
    """(paths, issame_list) for LFW pairs: <dir>/<name>/<name>_<%04d>.<ext>, two paths per pair.

    Pairs with a missing image are left out, each named, and counted, as the original did
    ("Skipped N image pairs").
    """
    def image_path(name, number):
        return os.path.join(lfw_dir, name, '%s_%04d.%s' % (name, int(number), file_ext))

    paths = []
    issame_list = []
    skipped = 0
    for pair in pairs:
        if len(pair) == 3:
            path0, path1 = image_path(pair[0], pair[1]), image_path(pair[0], pair[2])
            issame = True
        else:
            path0, path1 = image_path(pair[0], pair[1]), image_path(pair[2], pair[3])
            issame = False
        if os.path.exists(path0) and os.path.exists(path1):
            paths += [path0, path1]
            issame_list.append(issame)
        else:
            skipped += 1
            missing = [path for path in (path0, path1) if not os.path.exists(path)]
            print('pair skipped, missing image: %s' % ' '.join(missing))
    if skipped > 0:
        print('Skipped %d image pairs' % skipped)
    return paths, issame_list
