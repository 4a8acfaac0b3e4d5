"""Reading and writing the 2019 face-data formats: .lst lines, .rec/.idx records, property files."""
import collections
import itertools
import multiprocessing
import numbers
import os
import struct
import sys
import uuid

import cv2
import mxnet as mx
import numpy as np

from common import face_preprocess


class LstFormatError(ValueError):
    """A malformed line in a .lst file."""


def parse_lst_line(line, where='<line>'):
    """Parse one TAB-separated .lst line into (aligned, path, label, bbox, landmark).

    Columns: aligned flag, image path, label, then optionally bbox x1 y1 x2 y2 (integers) and
    5 landmarks written as x1..x5 then y1..y5. `landmark` comes back as a 5x2 float32 array of
    (x, y) rows; bbox as int32. `where` (e.g. "train.lst:12") names the line in errors.
    """
    fields = line.rstrip().split('\t')
    if len(fields) < 3:
        raise LstFormatError("%s: expected at least 3 TAB-separated fields (aligned, path, label), "
                             "got %d: %r" % (where, len(fields), line.rstrip()))
    if len(fields) not in (3, 7) and len(fields) < 17:
        raise LstFormatError("%s: expected 3, 7 (with bbox) or 17 (with bbox and 5 landmarks) "
                             "fields, got %d" % (where, len(fields)))
    try:
        aligned = int(fields[0])
        label = int(fields[2])
        bbox = None
        landmark = None
        if len(fields) > 3:
            bbox = np.array([int(v) for v in fields[3:7]], dtype=np.int32)
        if len(fields) > 7:
            landmark = np.array([float(v) for v in fields[7:17]], dtype=np.float32).reshape((2, 5)).T
    except ValueError as err:
        raise LstFormatError("%s: %s" % (where, err)) from None
    return aligned, fields[1], label, bbox, landmark


def format_lst_line(aligned, path, label, bbox=None, landmark=None):
    """The .lst line (without newline) that parse_lst_line reads back; landmark is 5x2 (x, y)."""
    fields = [str(int(aligned)), str(path), str(int(label))]
    if landmark is not None and bbox is None:
        bbox = (0, 0, 0, 0)
    if bbox is not None:
        fields += ['%d' % v for v in bbox]
    if landmark is not None:
        landmark = np.asarray(landmark, dtype=np.float32).reshape((5, 2))
        fields += [repr(float(v)) for v in landmark[:, 0]] + [repr(float(v)) for v in landmark[:, 1]]
    return '\t'.join(fields)


# ---------------------------------------------------------------------------------------------
# property file

PROPERTY_NAME = 'property'

Property = collections.namedtuple('Property', ['num_classes', 'image_size'])


def encode_image(img, encoding='.jpg', quality=95):
    """`img` (HxW or HxWxC uint8, BGR) encoded as mx.recordio.pack_img does; None if it fails."""
    if encoding == '.jpg':
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    else:
        params = [cv2.IMWRITE_PNG_COMPRESSION, quality]
    ok, buf = cv2.imencode(encoding, img, params)
    return buf.tobytes() if ok else None


def align_and_encode(path, bbox, landmark, image_size, color=1, quality=95, encoding='.jpg'):
    """Read `path` (cv2 flag `color`), align it with face_preprocess.preprocess and encode it.

    The face2rec2 / dir2rec step for photos. Returns (bytes, '') or (None, what went wrong:
    'cannot be read or decoded', 'cannot be aligned: ...' or 'could not be encoded as ...').
    """
    img = cv2.imread(path, color)
    if img is None:
        return None, 'cannot be read or decoded'
    try:
        face = face_preprocess.preprocess(img, bbox=bbox, landmark=landmark,
                                          image_size='%d,%d' % tuple(image_size))
    except ValueError as err:
        return None, 'cannot be aligned: %s' % err
    data = encode_image(face, encoding, quality)
    if data is None:
        return None, 'could not be encoded as %s' % encoding
    return data, ''


def map_in_order(items, function, num_workers, round_size=2048):
    """Yield (item, function(item)) in input order, with num_workers processes when > 1.

    Items are taken `round_size` at a time, so a long list is never held in memory; the order
    makes a multi-process pack write the same records as one process.
    """
    items = iter(items)
    if num_workers <= 1:
        for item in items:
            yield item, function(item)
        return
    with multiprocessing.Pool(num_workers) as pool:
        while True:
            batch = list(itertools.islice(items, round_size))
            if not batch:
                return
            yield from zip(batch, pool.map(function, batch, chunksize=16))


def write_lst(lines, output=''):
    """.lst lines (no newlines) to standard output, or to `output`, which appears only when complete.

    Lines may come from a generator: they are written as they come, never all held in memory.
    """
    if not output:
        for line in lines:
            sys.stdout.write(line + '\n')
        return
    tmp_path = _temporary_name(output)
    try:
        with open(tmp_path, 'w') as fout:
            for line in lines:
                fout.write(line + '\n')
        os.replace(tmp_path, output)
    finally:
        _remove_quietly(tmp_path)


class RecordFormatError(ValueError):
    """A .rec/.idx pair or a property file that does not follow the expected layout."""


class MissingRecordError(RecordFormatError, KeyError):
    """A record key that the .idx does not list."""

    def __str__(self):
        # KeyError would print the message with quotes around it.
        return str(self.args[0])


def read_property(data_dir):
    """Read `data_dir/property` ("num_classes,H,W") -> Property(num_classes, (H, W)).

    One trailing newline is accepted (as the original reader did); anything else is an error.
    """
    path = os.path.join(data_dir, PROPERTY_NAME)
    with open(path) as fin:
        text = fin.read()
    lines = text.split('\n')
    if len(lines) == 2 and lines[1] == '':
        lines = lines[:1]
    fields = lines[0].strip().split(',')
    if len(lines) != 1 or len(fields) != 3:
        raise RecordFormatError("%s: expected a single line 'num_classes,height,width' "
                                "(e.g. '85742,112,112'), got %r" % (path, text))
    try:
        num_classes, height, width = (int(v) for v in fields)
    except ValueError:
        raise RecordFormatError("%s: expected three integers 'num_classes,height,width', got %r"
                                % (path, text)) from None
    return Property(num_classes, (height, width))


def write_property(data_dir, num_classes, image_size):
    """Write `data_dir/property` as "num_classes,H,W" with no trailing newline (as the original)."""
    height, width = image_size
    path = os.path.join(data_dir, PROPERTY_NAME)
    tmp_path = _temporary_name(path)
    try:
        with open(tmp_path, 'w') as fout:
            fout.write('%d,%d,%d' % (num_classes, height, width))
        os.replace(tmp_path, path)
    except BaseException:
        _remove_quietly(tmp_path)
        raise


def _temporary_name(final_path):
    """A fresh hidden name beside final_path, so the final rename stays on one filesystem."""
    # Not created here (unlike mkstemp) so the file gets the usual umask permissions.
    directory, name = os.path.split(os.path.abspath(final_path))
    return os.path.join(directory, '.%s.%d.%s.tmp' % (name, os.getpid(), uuid.uuid4().hex[:8]))


def _remove_quietly(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------------------------------------
# records: payload = IRHeader (+ float32 label array) + data, framed by dmlc RecordIO

# struct layout of mx.recordio.IRHeader: uint32 flag, float32 label, uint64 id, uint64 id2.
_IR_FORMAT = 'IfQQ'
_IR_SIZE = struct.calcsize(_IR_FORMAT)
# dmlc RecordIO framing: magic word, then length (low 29 bits) and continuation flag (high 3).
_MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack('<I', _MAGIC)
_LENGTH_MASK = (1 << 29) - 1
# Keys and ranges are stored in float32 labels, exact only below 2**24.
MAX_KEY = 1 << 24


def idx_path_for(rec_path):
    """The .idx beside a .rec (train.rec -> train.idx), as the original tools assumed."""
    return os.path.splitext(rec_path)[0] + '.idx'


def pack_record(label, record_id, data):
    """Bytes of one record, as mx.recordio.pack(IRHeader(0, label, record_id, 0), data) builds.

    A scalar label is kept in the header (flag 0); a sequence becomes float32 values in front
    of the data, with flag = their count.
    """
    if isinstance(label, numbers.Number):
        return struct.pack(_IR_FORMAT, 0, label, record_id, 0) + bytes(data)
    values = np.asarray(label, dtype=np.float32).reshape(-1)
    return (struct.pack(_IR_FORMAT, values.size, 0.0, record_id, 0)
            + values.astype('<f4').tobytes() + bytes(data))


def write_keyed_records(rec_path, records, idx_path=None):
    """Write (key, record bytes) pairs in the given order; .rec and .idx appear only when complete.

    For tools that keep 2019 keys or record order verbatim (relabel, clean); new datasets use
    IdentityRecordWriter, which numbers the keys itself.
    """
    rec_path = os.fspath(rec_path)
    idx_path = os.fspath(idx_path) if idx_path else idx_path_for(rec_path)
    tmp_rec, tmp_idx = _temporary_name(rec_path), _temporary_name(idx_path)
    out = mx.recordio.MXIndexedRecordIO(tmp_idx, tmp_rec, 'w')
    try:
        for key, record in records:
            out.write_idx(key, record)
        out.close()
        # The .rec goes first: a reader finding the new .idx can rely on the new .rec.
        os.replace(tmp_rec, rec_path)
        os.replace(tmp_idx, idx_path)
    except BaseException:
        out.close()
        _remove_quietly(tmp_rec)
        _remove_quietly(tmp_idx)
        raise


class IdentityRecordWriter:
    """Write an identity-structured train.rec/train.idx pair; files appear only when complete.

    Images get keys 1..N in the order added. close() then writes the header (key 0, label
    [first identity key, one past last]) and one identity record per run of equal labels, keys
    N+1.. (a label in two separate runs gives two identities, as in the original). Order on disk
    is images, header, identities (face2rec2) or, with header_last=True, images, identities,
    header (dataset_merge). Until close() everything goes to hidden temporary files; abort(), or
    an exception inside a `with` block, deletes them.
    """

    def __init__(self, rec_path, idx_path=None, header_last=False):
        self.rec_path = os.fspath(rec_path)
        self.idx_path = os.fspath(idx_path) if idx_path else idx_path_for(self.rec_path)
        self.header_last = header_last
        self.num_images = 0
        self._runs = []  # [first key, one past last key, label]
        self._tmp_rec = _temporary_name(self.rec_path)
        self._tmp_idx = _temporary_name(self.idx_path)
        self._record = mx.recordio.MXIndexedRecordIO(self._tmp_idx, self._tmp_rec, 'w')

    def add_image(self, data, label, aligned=None):
        """Append one encoded image; returns its key.

        The record label is the scalar `label`, or [label, aligned] (2 floats, as face2rec2
        wrote) when `aligned` is given. Identities are built from runs of equal `label`.
        """
        if self._record is None:
            raise ValueError("%s: the writer is already closed" % self.rec_path)
        key = self.num_images + 1
        if key >= MAX_KEY:
            raise ValueError("%s: more than %d images; keys would not survive the float32 "
                             "identity labels" % (self.rec_path, MAX_KEY - 1))
        record_label = label if aligned is None else [label, aligned]
        self._record.write_idx(key, pack_record(record_label, key, data))
        self.num_images = key
        if self._runs and self._runs[-1][2] == label:
            self._runs[-1][1] = key + 1
        else:
            self._runs.append([key, key + 1, label])
        return key

    @property
    def num_identities(self):
        return len(self._runs)

    def close(self):
        """Write header and identity records, then move both files to their final names."""
        if self._record is None:
            return
        first_identity = self.num_images + 1
        end_identity = first_identity + len(self._runs)
        header = pack_record([first_identity, end_identity], 0, b'')
        try:
            if not self.header_last:
                self._record.write_idx(0, header)
            for offset, (start, end, _) in enumerate(self._runs):
                key = first_identity + offset
                self._record.write_idx(key, pack_record([start, end], key, b''))
            if self.header_last:
                self._record.write_idx(0, header)
            self._record.close()
            self._record = None
            # The .rec goes first: a reader finding the new .idx can rely on the new .rec.
            os.replace(self._tmp_rec, self.rec_path)
            os.replace(self._tmp_idx, self.idx_path)
        except BaseException:
            self.abort()
            raise

    def abort(self):
        """Drop everything written so far; the final names are left untouched."""
        if self._record is not None:
            self._record.close()
            self._record = None
        _remove_quietly(self._tmp_rec)
        _remove_quietly(self._tmp_idx)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


class RecordReader:
    """Random access to a .rec/.idx pair, with errors that name the file and the record.

    Typical use on an identity-structured file:

        reader = RecordReader('train.rec')
        for identity_key, start, end in reader.identity_ranges():
            for key in range(start, end):
                label, jpeg_bytes = reader.read_image(key)

    `header` is (first identity key, one past last) from record 0, or None for a flat file
    (record 0 with flag 0), where every key is an image.
    """

    def __init__(self, rec_path, idx_path=None):
        self.rec_path = os.fspath(rec_path)
        self.idx_path = os.fspath(idx_path) if idx_path else idx_path_for(self.rec_path)
        if not os.path.isfile(self.rec_path):
            raise FileNotFoundError("record file %s does not exist" % self.rec_path)
        if not os.path.isfile(self.idx_path):
            raise FileNotFoundError("index file %s does not exist; a .rec needs the .idx written "
                                    "with it (lines 'key<TAB>byte offset')" % self.idx_path)
        self.rec_size = os.path.getsize(self.rec_path)
        self.keys, self._offsets = self._read_index()
        self._fd = os.open(self.rec_path, os.O_RDONLY)
        self._header = self._read_header()

    def _read_index(self):
        keys = []
        offsets = {}
        with open(self.idx_path) as fin:
            for line_no, line in enumerate(fin, 1):
                where = '%s:%d' % (self.idx_path, line_no)
                fields = line.split('\t')
                try:
                    key, offset = int(fields[0]), int(fields[1])
                    if len(fields) != 2:
                        raise ValueError
                except (ValueError, IndexError):
                    raise RecordFormatError("%s: expected 'key<TAB>byte offset', got %r"
                                            % (where, line)) from None
                if offset < 0 or offset + 8 > self.rec_size:
                    raise RecordFormatError("%s: record %d starts at byte %d, past the end of %s "
                                            "(%d bytes); the .idx does not belong to this .rec "
                                            "or the .rec is truncated"
                                            % (where, key, offset, self.rec_path, self.rec_size))
                if key not in offsets:
                    keys.append(key)
                offsets[key] = offset
        return keys, offsets

    def __contains__(self, key):
        return key in self._offsets

    def __len__(self):
        return len(self.keys)

    def read_raw(self, key):
        """The record bytes of `key` (IRHeader + label floats + data), unframed."""
        if key not in self._offsets:
            raise MissingRecordError("%s: no record %r in %s"
                                     % (self.rec_path, key, self.idx_path))
        pos = self._offsets[key]
        parts = []
        while True:
            head = os.pread(self._fd, 8, pos)
            if len(head) < 8:
                raise RecordFormatError("%s: record %d is truncated: the file ends at byte %d, "
                                        "inside its frame" % (self.rec_path, key, self.rec_size))
            magic, length_and_flag = struct.unpack('<II', head)
            if magic != _MAGIC:
                raise RecordFormatError("%s: record %d at byte %d does not start with the RecordIO "
                                        "magic number (found 0x%08x); the .idx offsets do not "
                                        "match this .rec" % (self.rec_path, key, pos, magic))
            length = length_and_flag & _LENGTH_MASK
            cflag = length_and_flag >> 29
            data = os.pread(self._fd, length, pos + 8)
            if len(data) < length:
                raise RecordFormatError("%s: record %d is truncated: it needs %d bytes from "
                                        "byte %d, but the file has only %d"
                                        % (self.rec_path, key, length, pos + 8, len(data)))
            parts.append(data)
            pos += 8 + (length + 3) // 4 * 4
            # cflag 0: whole record, 3: last part; 1 and 2: more parts follow. The writer cut
            # the record at each aligned magic word and left that word out, so put it back.
            if cflag in (0, 3):
                return _MAGIC_BYTES.join(parts)

    def read(self, key):
        """(mx.recordio.IRHeader, data) of record `key`, as mx.recordio.unpack gives them."""
        raw = self.read_raw(key)
        if len(raw) < _IR_SIZE:
            raise RecordFormatError("%s: record %d has %d bytes, too short for its %d-byte header"
                                    % (self.rec_path, key, len(raw), _IR_SIZE))
        flag, label, record_id, record_id2 = struct.unpack(_IR_FORMAT, raw[:_IR_SIZE])
        data = raw[_IR_SIZE:]
        if flag > 0:
            if len(data) < 4 * flag:
                raise RecordFormatError("%s: record %d says it has %d label floats but holds only "
                                        "%d bytes after its header"
                                        % (self.rec_path, key, flag, len(data)))
            label = np.frombuffer(data, dtype=np.float32, count=flag)
            data = data[4 * flag:]
        return mx.recordio.IRHeader(flag, label, record_id, record_id2), data

    def read_image(self, key):
        """(label, encoded image bytes) of image record `key`; label = scalar or element 0."""
        header, data = self.read(key)
        label = header.label[0] if header.flag > 0 else header.label
        return float(label), data

    def _read_range(self, key, what):
        header, _ = self.read(key)
        if header.flag < 2:
            raise RecordFormatError("%s: %s %d should hold a 2-float label [start, end), "
                                    "found flag %d (label %r)"
                                    % (self.rec_path, what, key, header.flag, header.label))
        start, end = int(header.label[0]), int(header.label[1])
        if start > end:
            raise RecordFormatError("%s: %s %d has an inverted range [%d, %d)"
                                    % (self.rec_path, what, key, start, end))
        return start, end

    def _read_header(self):
        if 0 not in self._offsets:
            raise RecordFormatError("%s: no record 0 (the header) in %s"
                                    % (self.rec_path, self.idx_path))
        if self.read(0)[0].flag == 0:
            return None
        start, end = self._read_range(0, 'header record')
        for key in (start, end - 1):
            if start < end and key not in self._offsets:
                raise RecordFormatError("%s: header record 0 says identities are keys [%d, %d), "
                                        "but there is no record %d"
                                        % (self.rec_path, start, end, key))
        return start, end

    @property
    def header(self):
        """(first identity key, one past last identity key), or None for a flat file."""
        return self._header

    def identity_keys(self):
        """The identity record keys (empty for a flat file)."""
        return range(*self._header) if self._header else range(0)

    def identity_range(self, identity_key):
        """[start, end) image keys of identity record `identity_key`, checked to exist."""
        start, end = self._read_range(identity_key, 'identity record')
        for key in range(start, end):
            if key not in self._offsets:
                raise RecordFormatError("%s: identity record %d says its images are keys "
                                        "[%d, %d), but there is no record %d"
                                        % (self.rec_path, identity_key, start, end, key))
        return start, end

    def identity_ranges(self):
        """[(identity key, start, end)] for every identity, in key order."""
        return [(key,) + self.identity_range(key) for key in self.identity_keys()]

    def image_keys(self):
        """Image keys: identity ranges in order, or every key of a flat file."""
        if self._header is None:
            return list(self.keys)
        return [key for _, start, end in self.identity_ranges() for key in range(start, end)]

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    def __getstate__(self):
        # A file descriptor cannot be pickled: worker processes reopen the file by path.
        state = self.__dict__.copy()
        state['_fd'] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._fd = os.open(self.rec_path, os.O_RDONLY)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: os may already be gone
            pass
