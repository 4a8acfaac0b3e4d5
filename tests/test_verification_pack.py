"""Tests for verification packs: safe, compatible .bin loading, writing, load_bin, the packers."""
import os
import pickle
import pickletools
import struct

import cv2
import numpy as np
import pytest

from common.verification_pack import (UnsafePickleError, load_pairs_bin, read_lfw_pairs,
                                      save_pairs_bin)
from recognition.eval.verification import load_bin
from script_loader import load_script


lfw2pack = load_script('lfw2pack')
pairs2pack = load_script('pairs2pack')

# ---------------------------------------------------------------------------------------------
# Genuine Python 2 pickles, written once by CPython 2.7.18 + numpy 1.16.6 with
#   cPickle.dumps((bins, issame), 2)
# (protocol 2 = Python 2's HIGHEST_PROTOCOL, as the original packers used). Long runs of one byte
# are written as repetitions to keep the literals short; the bytes are unchanged.
#   PY2_STR_PACK:   bins = ['\xff\xd8\x00ab', 'Q' * 300], issame = [numpy.bool_(True)]
#   PY2_ARRAY_PACK: bins = two uint8 arrays of shape (L, 1), as cv2.imencode returns them:
#                   '\xff\xd8\x00ab' and '\xff\xd9' * 150; issame = [False]
PY2_STR_PACK = (
    b'\x80\x02]q\x01(U\x05\xff\xd8\x00abq\x02T,\x01\x00\x00' + b'Q' * 300
    + b'q\x03e]q\x04cnumpy.core.multiarray\nscalar\nq\x05cnumpy\ndtype\nq\x06U\x02b1K\x00K\x01'
      b'\x87Rq\x07(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbU\x01\x01\x86Rq\x08a'
      b'\x86.')
PY2_ARRAY_PACK = (
    b'\x80\x02]q\x01(cnumpy.core.multiarray\n_reconstruct\nq\x02cnumpy\nndarray\nq\x03K\x00\x85'
    b'U\x01b\x87Rq\x04(K\x01K\x05K\x01\x86cnumpy\ndtype\nq\x05U\x02u1K\x00K\x01\x87Rq\x06(K\x03'
    b'U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89U\x05\xff\xd8\x00abtbh\x02h\x03K\x00'
    b'\x85U\x01b\x87Rq\x07(K\x01M,\x01K\x01\x86h\x06\x89T,\x01\x00\x00' + b'\xff\xd9' * 150
    + b'tbe]q\x08\x89a\x86.')


# ---------------------------------------------------------------------------------------------
# A hand assembler of Python 2 protocol-2 pickles, to make Py2-style packs of any content.
# It writes the opcodes cPickle wrote, minus the memo bookkeeping (BINPUT/BINGET), which does
# not change the loaded objects:
#   Py2 str       -> SHORT_BINSTRING 'U' <1-byte len> (len < 256) or BINSTRING 'T' <4-byte len>
#   bool          -> NEWTRUE '\x88' / NEWFALSE '\x89'
#   int           -> BININT1 'K' / BININT2 'M' / BININT 'J'
#   numpy.bool_   -> numpy.core.multiarray.scalar(dtype('b1', 0, 1) + state, '\x00' or '\x01')
#   uint8 ndarray -> numpy.core.multiarray._reconstruct(ndarray, (0,), 'b') then BUILD with
#                    (1, shape, dtype('u1'), False, <raw bytes as Py2 str>), as numpy 1.x did
#   list          -> EMPTY_LIST ']' then item + APPEND 'a' (one item) or MARK '(' items APPENDS 'e'
#   the 2-tuple   -> TUPLE2 '\x86'; PROTO '\x80\x02' first and STOP '.' last
def _py2_str(data):
    if len(data) < 256:
        return b'U' + bytes([len(data)]) + data
    return b'T' + struct.pack('<I', len(data)) + data


def _py2_int(value):
    if 0 <= value < 256:
        return b'K' + bytes([value])
    if 0 <= value < 65536:
        return b'M' + struct.pack('<H', value)
    return b'J' + struct.pack('<i', value)


def _py2_dtype(code):
    return (b'cnumpy\ndtype\n' + _py2_str(code) + _py2_int(0) + _py2_int(1) + b'\x87R'
            + b'(' + _py2_int(3) + _py2_str(b'|') + b'NNN' + b'J\xff\xff\xff\xff' * 2
            + _py2_int(0) + b'tb')


def _py2_object(obj):
    if isinstance(obj, bytes):
        return _py2_str(obj)
    if isinstance(obj, np.bool_):
        return (b'cnumpy.core.multiarray\nscalar\n' + _py2_dtype(b'b1')
                + _py2_str(b'\x01' if obj else b'\x00') + b'\x86R')
    if isinstance(obj, bool):
        return b'\x88' if obj else b'\x89'
    assert isinstance(obj, np.ndarray) and obj.dtype == np.uint8 and 1 <= obj.ndim <= 3
    shape = b''.join(_py2_int(d) for d in obj.shape) + bytes([0x84 + obj.ndim])  # TUPLE1..3
    return (b'cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n' + _py2_int(0) + b'\x85'
            + _py2_str(b'b') + b'\x87R' + b'(' + _py2_int(1) + shape + _py2_dtype(b'u1')
            + b'\x89' + _py2_str(obj.tobytes()) + b'tb')


def _py2_list(items):
    body = b''.join(_py2_object(item) for item in items)
    if len(items) == 1:
        return b']' + body + b'a'
    return b']' + (b'(' + body + b'e' if items else b'')


def py2_pack(bins, issame):
    """The bytes Python 2 pickle.dump((bins, issame), f, 2) wrote (bins: bytes = Py2 str)."""
    return b'\x80\x02' + _py2_list(bins) + _py2_list(issame) + b'\x86.'


def opcodes_without_memo(data):
    return [(op.name, arg) for op, arg, _ in pickletools.genops(data)
            if op.name not in ('BINPUT', 'LONG_BINPUT', 'PUT', 'MEMOIZE')]


def jpeg(img, quality=95):
    ok, data = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def pattern(seed, size=(112, 112)):
    """A smooth random BGR image that survives JPEG well and differs from seed to seed."""
    rng = np.random.RandomState(seed)
    small = rng.randint(0, 256, size=(6, 6, 3)).astype(np.uint8)
    return cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def write(path, data):
    with open(path, 'wb') as f:
        f.write(data)
    return str(path)


# ---------------------------------------------------------------------------------------------
# Loading historical files

def test_assembler_matches_genuine_python2_output():
    # The hand assembler must write what cPickle wrote, opcode for opcode (memo aside).
    ours = py2_pack([b'\xff\xd8\x00ab', b'Q' * 300], [np.bool_(True)])
    assert opcodes_without_memo(ours) == opcodes_without_memo(PY2_STR_PACK)
    arrays = [np.frombuffer(b'\xff\xd8\x00ab', np.uint8).reshape(-1, 1),
              np.frombuffer(b'\xff\xd9' * 150, np.uint8).reshape(-1, 1)]
    ours_loaded = pickle.loads(py2_pack(arrays, [False]), encoding='bytes')
    genuine_loaded = pickle.loads(PY2_ARRAY_PACK, encoding='bytes')
    for mine, theirs in zip(ours_loaded[0], genuine_loaded[0]):
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)
    assert ours_loaded[1] == genuine_loaded[1] == [False]


def test_load_genuine_python2_str_pack(tmp_path):
    path = write(tmp_path / 'lfw.bin', PY2_STR_PACK)
    bins, issame = load_pairs_bin(path)
    assert bins == [b'\xff\xd8\x00ab', b'Q' * 300]
    assert issame == [True] and type(issame[0]) is bool


def test_load_genuine_python2_numpy_pack(tmp_path):
    path = write(tmp_path / 'agedb_30.bin', PY2_ARRAY_PACK)
    bins, issame = load_pairs_bin(path)
    assert bins == [b'\xff\xd8\x00ab', b'\xff\xd9' * 150]
    assert all(type(b) is bytes for b in bins)
    assert issame == [False]


def test_plain_ascii_unpickling_of_python2_pack_fails(tmp_path):
    # Why the loader needs encoding='bytes': the default ASCII decoding chokes on the JPEG 0xFF.
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(PY2_STR_PACK)


@pytest.mark.parametrize('protocol', [2, 3, 4, 5])
@pytest.mark.parametrize('as_array', [False, True])
def test_load_python3_packs(tmp_path, protocol, as_array):
    images = [jpeg(pattern(i)) for i in range(4)]
    bins = [np.frombuffer(b, np.uint8).reshape(-1, 1) if as_array else b for b in images]
    path = write(tmp_path / 'p3.bin', pickle.dumps((bins, [True, False]), protocol=protocol))
    loaded, issame = load_pairs_bin(path)
    assert loaded == images
    assert issame == [True, False]


def test_load_numpy2_module_names(tmp_path):
    # numpy 2 pickles name its internals numpy._core; GLOBAL opcodes end at a newline, so the
    # name can be swapped in place.
    image = jpeg(pattern(0))
    data = pickle.dumps(([np.frombuffer(image, np.uint8).reshape(-1, 1), b'x'], [True]), 2)
    data = data.replace(b'cnumpy.core.multiarray\n', b'cnumpy._core.multiarray\n')
    assert b'numpy._core' in data
    assert load_pairs_bin(write(tmp_path / 'np2.bin', data)) == ([image, b'x'], [True])


def test_load_numpy_bool_array_issame(tmp_path):
    path = write(tmp_path / 'p.bin', pickle.dumps(([b'a', b'b', b'c', b'd'],
                                                   np.array([True, False])), protocol=2))
    assert load_pairs_bin(path) == ([b'a', b'b', b'c', b'd'], [True, False])


# ---------------------------------------------------------------------------------------------
# Refusing malicious pickles

_calls = []


def _record_call(tag):
    """A global with an observable side effect, for payloads that must never run."""
    _calls.append(tag)
    return tag


class _Payload:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_payload_runs_under_plain_pickle_but_not_here(tmp_path):
    _calls.clear()
    data = pickle.dumps(([b'x', _Payload(_record_call, 'ran')], [True]), protocol=2)
    pickle.loads(data)  # proves the payload is live...
    assert _calls == ['ran']
    _calls.clear()
    path = write(tmp_path / 'evil.bin', data)
    with pytest.raises(UnsafePickleError) as err:
        load_pairs_bin(path)
    assert _calls == []  # ...and that the safe loader did not run it
    assert path in str(err.value) and '_record_call' in str(err.value)


def test_refuses_os_system(tmp_path):
    marker = tmp_path / 'pwned'
    # Protocol 0, as an attacker would hand-write it: os.system("touch <marker>").
    crafted = b'cos\nsystem\n(S\'touch ' + str(marker).encode() + b'\'\ntR.'
    path = write(tmp_path / 'crafted.bin', crafted)
    with pytest.raises(UnsafePickleError, match=r'os\.system') as err:
        load_pairs_bin(path)
    assert path in str(err.value)
    # The same through pickle's own encoding of os.system (module posix on Linux), inside a pack.
    generated = pickle.dumps(([_Payload(os.system, 'touch %s' % marker), b'x'], [False]), 2)
    with pytest.raises(UnsafePickleError, match=r'system'):
        load_pairs_bin(write(tmp_path / 'generated.bin', generated))
    assert not marker.exists()


def test_refuses_builtins_eval_protocol4(tmp_path):
    marker = tmp_path / 'evaluated'
    code = 'open(%r, "w").write("x")' % str(marker)
    data = pickle.dumps((_Payload(eval, code), [True]), protocol=4)
    with pytest.raises(UnsafePickleError, match=r'builtins\.eval'):
        load_pairs_bin(write(tmp_path / 'evil4.bin', data))
    assert not marker.exists()


def test_refuses_dotted_names_and_codec_abuse(tmp_path):
    # Protocol 4 STACK_GLOBAL with an attribute path inside an allowed module.
    dotted = b'\x80\x04\x8c\x05numpy\x8c\x0endarray.tofile\x93.'
    with pytest.raises(UnsafePickleError, match=r'numpy\.ndarray\.tofile'):
        load_pairs_bin(write(tmp_path / 'dotted.bin', dotted))
    # _codecs.encode is allowed only as Python 3 writes bytes: encode(<str>, 'latin1').
    rot13 = b'\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R.'
    with pytest.raises(UnsafePickleError, match='latin1'):
        load_pairs_bin(write(tmp_path / 'rot13.bin', rot13))


# ---------------------------------------------------------------------------------------------
# Structure checks

@pytest.mark.parametrize('obj, message', [
    ({'bins': []}, r'expected a pickled 2-tuple \(bins, issame_list\), got dict'),
    (([b'a'], [True], 3), r'2-tuple .* got tuple of length 3'),
    (([b'a', b'b', b'c'], [True]), r'2 images per pair, i\.e\. 2 images for 1 issame flags, got 3'),
    ((b'ab', [True]), r'images must be a list, got bytes'),
    (([b'a', 7], [True]), r'image 1 is a int; expected bytes or a numpy uint8 array'),
    (([b'a', np.zeros(3, np.float32)], [True]), r'image 1 is a numpy array of dtype float32'),
    (([b'a', b'b'], ['yes']), r"issame_list\[0\] is 'yes' \(str\); expected a bool"),
])
def test_structure_errors_name_the_file(tmp_path, obj, message):
    path = write(tmp_path / 'bad.bin', pickle.dumps(obj, protocol=2))
    with pytest.raises(ValueError, match=message) as err:
        load_pairs_bin(path)
    assert str(err.value).startswith(path)


def test_truncated_file_is_a_clear_error(tmp_path):
    data = pickle.dumps(([b'a', b'b'], [True]), protocol=2)
    path = write(tmp_path / 'cut.bin', data[:-5])
    with pytest.raises(ValueError, match='not a readable verification pack') as err:
        load_pairs_bin(path)
    assert path in str(err.value)


# ---------------------------------------------------------------------------------------------
# Writing

def test_save_is_protocol2_and_readable_like_python2(tmp_path):
    images = [jpeg(pattern(i)) for i in range(4)]
    as_array = np.frombuffer(images[3], np.uint8).reshape(-1, 1)  # cv2.imencode style input
    path = str(tmp_path / 'out.bin')
    save_pairs_bin(path, images[:3] + [as_array], [True, np.bool_(False)])
    with open(path, 'rb') as f:
        data = f.read()
    assert data[:2] == b'\x80\x02'
    # Only opcodes that Python 2 knows (protocols 0-2), so the 2019 Py2 tools can read it.
    assert max(op.proto for op, _, _ in pickletools.genops(data)) <= 2
    with open(path, 'rb') as f:
        bins, issame = pickle.load(f, encoding='bytes')
    assert bins == images and all(type(b) is bytes for b in bins)
    assert issame == [True, False] and all(type(v) is bool for v in issame)
    assert load_pairs_bin(path) == (images, [True, False])


def test_save_is_atomic(tmp_path):
    path = tmp_path / 'out.bin'
    save_pairs_bin(path, [b'a', b'b'], [True])
    before = path.read_bytes()
    with pytest.raises(ValueError, match='2 images per pair'):
        save_pairs_bin(path, [b'a', b'b', b'c'], [True])
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(os.listdir(tmp_path)) == ['out.bin']  # and no temporary file is left
    save_pairs_bin(path, [b'c', b'd'], [False])
    assert load_pairs_bin(path) == ([b'c', b'd'], [False])
    assert sorted(os.listdir(tmp_path)) == ['out.bin']


# ---------------------------------------------------------------------------------------------
# load_bin

def test_load_bin_decodes_flips_and_prints(tmp_path, capsys):
    images = [pattern(i) for i in range(4)]
    path = write(tmp_path / 'py2.bin', py2_pack([jpeg(img) for img in images], [True, False]))
    (data, flipped), issame = load_bin(path, (112, 112))
    assert issame == [True, False]
    assert data.shape == flipped.shape == (4, 3, 112, 112)
    assert data.dtype == flipped.dtype == np.float32
    data, flipped = data.asnumpy(), flipped.asnumpy()
    for i, img in enumerate(images):
        rgb_chw = img[..., ::-1].transpose(2, 0, 1).astype(np.float32)
        assert np.abs(data[i] - rgb_chw).mean() < 3  # RGB order, 0..255, JPEG error only
    assert np.array_equal(flipped, data[..., ::-1])
    out = capsys.readouterr().out.splitlines()
    assert out == ['loading bin 0', '(4, 3, 112, 112)']


def test_load_bin_numpy_elements_and_resize(tmp_path):
    big = [pattern(i, size=(150, 150)) for i in range(2)]
    arrays = [np.frombuffer(jpeg(img), np.uint8).reshape(-1, 1) for img in big]
    path = write(tmp_path / 'big.bin', py2_pack(arrays, [True]))
    (data, _), _ = load_bin(path, (112, 112))
    assert data.shape == (2, 3, 112, 112)
    for i, img in enumerate(big):
        # resize_short uses area interpolation (interp=2 = cv2.INTER_AREA).
        expected = cv2.resize(img, (112, 112), interpolation=cv2.INTER_AREA)[..., ::-1]
        assert np.abs(data[i].asnumpy() - expected.transpose(2, 0, 1)).mean() < 3


def test_load_bin_keeps_width_versus_height_quirk(tmp_path):
    # 112x96 images: the original compares width 96 with height 112, resizes to 130x112 and
    # fails; the port keeps the rule and fails with a message that says why.
    path = write(tmp_path / 'narrow.bin', py2_pack([jpeg(pattern(i, (112, 96))) for i in range(2)],
                                                   [True]))
    with pytest.raises(ValueError, match=r'image 0 decodes to 130x112 \(HxW\), expected 112x96'):
        load_bin(path, (112, 96))


# ---------------------------------------------------------------------------------------------
# lfw2pack

def make_lfw_tree(shared_dir, root):
    """An LFW-style tree (<name>/<name>_<%04d>.jpg) from the first ORL people and images."""
    orl = os.path.join(shared_dir, 'data', 'orl_faces')
    for person in range(1, 5):
        name = 's%d' % person
        os.makedirs(os.path.join(root, name))
        for k in range(1, 11):
            img = cv2.imread(os.path.join(orl, name, '%d.pgm' % k))
            cv2.imwrite(os.path.join(root, name, '%s_%04d.jpg' % (name, k)), img)
    return orl


def test_lfw2pack_raw_bytes_in_pairs_order(shared_dir, tmp_path, capsys):
    root = str(tmp_path / 'lfw')
    make_lfw_tree(shared_dir, root)
    with open(os.path.join(root, 'pairs.txt'), 'w') as f:
        f.write('1\t4\n'
                's1\t1\t2\n'
                's1\t3\ts2\t4\n'
                's3\t10\t5\n'
                's1\t1\t99\n'          # missing image: skipped and counted
                's4\t7\ts2\t1\n')
    output = str(tmp_path / 'lfw.bin')
    lfw2pack.main(['--data-dir', root, '--image-size', '112,112', '--output', output])
    out = capsys.readouterr().out
    assert 'Skipped 1 image pairs' in out
    assert 'pair skipped, missing image: %s' % os.path.join(root, 's1', 's1_0099.jpg') in out
    bins, issame = load_pairs_bin(output)
    assert issame == [True, False, True, False]
    expected = ['s1/s1_0001', 's1/s1_0002', 's1/s1_0003', 's2/s2_0004', 's3/s3_0010',
                's3/s3_0005', 's4/s4_0007', 's2/s2_0001']
    for data, rel in zip(bins, expected):
        with open(os.path.join(root, rel + '.jpg'), 'rb') as f:
            assert data == f.read()
    assert len(bins) == len(expected)


def test_lfw_pairs_reader_rejects_bad_lines(tmp_path):
    path = str(tmp_path / 'pairs.txt')
    with open(path, 'w') as f:
        f.write('10\t300\nA\t1\t2\nA\t1\tB\t2\tC\n')
    with pytest.raises(ValueError, match=r'pairs\.txt:3: expected'):
        read_lfw_pairs(path)


def test_lfw2pack_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        lfw2pack.main(['--help'])
    assert exit_info.value.code == 0
    assert '--data-dir' in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# pairs2pack

def test_pairs2pack_orl_centre_crop_and_load_bin(shared_dir, tmp_path):
    orl = os.path.join(shared_dir, 'data', 'orl_faces')
    pairs = [('s1/1.pgm', 's1/2.pgm', True), ('s1/1.pgm', 's2/1.pgm', False),
             ('s5/3.pgm', 's5/7.pgm', True), ('s7/2.pgm', 's9/4.pgm', False)]
    pairs_path = str(tmp_path / 'orl_pairs.txt')
    with open(pairs_path, 'w') as f:
        f.write('# ORL pairs\n\n')
        f.write(''.join('%s\t%s\t%s\n' % (a, b, ['0', 'true'][same] if i == 2 else int(same))
                        for i, (a, b, same) in enumerate(pairs)))
    output = str(tmp_path / 'orl.bin')
    pairs2pack.main(['--pairs', pairs_path, '--data-dir', orl, '--output', output])

    bins, issame = load_pairs_bin(output)
    assert issame == [True, False, True, False]
    files = [name for a, b, _ in pairs for name in (a, b)]
    assert len(bins) == len(files)
    for data, name in zip(bins, files):
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded.shape == (112, 112, 3)
        # 92x112 ORL images: the centre box grown by the 44-pixel margin is the whole image,
        # so the face is the whole image resized to 112x112.
        expected = cv2.resize(cv2.imread(os.path.join(orl, name)), (112, 112))
        assert np.abs(decoded.astype(float) - expected).mean() < 2.5
    # The comparison above can fail: two different ORL images are far apart.
    other = cv2.resize(cv2.imread(os.path.join(orl, 's2/1.pgm')), (112, 112))
    first = cv2.imdecode(np.frombuffer(bins[0], np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(first.astype(float) - other).mean() > 10

    (data, flipped), issame_loaded = load_bin(output, (112, 112))
    assert data.shape == (8, 3, 112, 112) and issame_loaded == issame
    grey = cv2.resize(cv2.imread(os.path.join(orl, 's1/1.pgm'), cv2.IMREAD_GRAYSCALE), (112, 112))
    assert np.abs(data[0].asnumpy() - grey[None].astype(np.float32)).mean() < 2.5
    assert np.array_equal(flipped.asnumpy(), data.asnumpy()[..., ::-1])


def test_pairs2pack_unreadable_image_names_file_and_line(shared_dir, tmp_path):
    orl = os.path.join(shared_dir, 'data', 'orl_faces')
    write(tmp_path / 'broken.jpg', b'this is not a jpeg')
    pairs_path = str(tmp_path / 'pairs.txt')
    with open(pairs_path, 'w') as f:
        f.write('%s/s1/1.pgm %s/s1/2.pgm 1\n' % (orl, orl))
        f.write('%s/s1/1.pgm broken.jpg 0\n' % orl)
    output = str(tmp_path / 'out.bin')
    with pytest.raises(ValueError, match=r'pairs\.txt:2: .*broken\.jpg'):
        pairs2pack.main(['--pairs', pairs_path, '--output', output])
    with open(pairs_path, 'w') as f:
        f.write('%s/s1/1.pgm missing.jpg 0\n' % orl)
    with pytest.raises(ValueError, match=r'pairs\.txt:1: .*missing\.jpg.*does not exist'):
        pairs2pack.main(['--pairs', pairs_path, '--output', output])
    assert not os.path.exists(output)


@pytest.mark.parametrize('line, message', [
    ('a.jpg b.jpg', r'expected 3 fields .* or 23 .* got 2'),
    ('a.jpg b.jpg maybe', r'issame must be 1/0 or true/false'),
    ('a.jpg b.jpg 1 ' + ' '.join(['1'] * 19) + ' x', r'bad landmark value'),
])
def test_pairs2pack_bad_lines(tmp_path, line, message):
    pairs_path = str(tmp_path / 'pairs.txt')
    with open(pairs_path, 'w') as f:
        f.write(line + '\n')
    with pytest.raises(ValueError, match=r'pairs\.txt:1: ' + message):
        pairs2pack.main(['--pairs', pairs_path, '--output', str(tmp_path / 'o.bin')])


def test_pairs2pack_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        pairs2pack.main(['--help'])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert '--pairs' in out and 'left eye, right eye, nose tip' in out
