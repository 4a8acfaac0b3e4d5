"""Tests for common/record_io: .lst lines, property files, and the identity-structured .rec/.idx."""
import numbers
import os
import pickle
import struct

import mxnet as mx
import numpy as np
import pytest

from common import record_io
from common.record_io import IdentityRecordWriter, RecordFormatError, RecordReader


def write_2019_style(rec_path, labels, payloads):
    """A .rec/.idx built with raw mx.recordio calls in the order face2rec2 (2019) used."""
    idx_path = rec_path[:-4] + '.idx'
    record = mx.recordio.MXIndexedRecordIO(idx_path, rec_path, 'w')
    runs = []
    key = 1
    for label, payload in zip(labels, payloads):
        record.write_idx(key, mx.recordio.pack(mx.recordio.IRHeader(0, [label, 1], key, 0),
                                               payload))
        if runs and runs[-1][2] == label:
            runs[-1][1] = key + 1
        else:
            runs.append([key, key + 1, label])
        key += 1
    header = mx.recordio.IRHeader(2, [float(key), float(key + len(runs))], 0, 0)
    record.write_idx(0, mx.recordio.pack(header, b''))
    for start, end, _ in runs:
        record.write_idx(key, mx.recordio.pack(mx.recordio.IRHeader(2, [start, end], key, 0), b''))
        key += 1
    record.close()


def read_2019_style(rec_path):
    """{image key: (label, payload)} and identity ranges, read as the 2019 image_iter did."""
    record = mx.recordio.MXIndexedRecordIO(rec_path[:-4] + '.idx', rec_path, 'r')
    header, _ = mx.recordio.unpack(record.read_idx(0))
    assert header.flag > 0
    ranges = []
    images = {}
    for identity in range(int(header.label[0]), int(header.label[1])):
        id_header, _ = mx.recordio.unpack(record.read_idx(identity))
        start, end = int(id_header.label[0]), int(id_header.label[1])
        ranges.append((identity, start, end))
        for key in range(start, end):
            img_header, payload = mx.recordio.unpack(record.read_idx(key))
            label = img_header.label
            if not isinstance(label, numbers.Number):
                label = label[0]
            images[key] = (float(label), payload)
    record.close()
    return (int(header.label[0]), int(header.label[1])), ranges, images


LABELS = [0, 0, 1, 1, 1]
PAYLOADS = [b'image-%d' % i * (i + 1) for i in range(5)]


def write_ours(rec_path, labels=LABELS, payloads=PAYLOADS, aligned=1, header_last=False):
    with IdentityRecordWriter(rec_path, header_last=header_last) as writer:
        for label, payload in zip(labels, payloads):
            writer.add_image(payload, label, aligned=aligned)
    return writer


def idx_keys(rec_path):
    with open(rec_path[:-4] + '.idx') as fin:
        return [int(line.split('\t')[0]) for line in fin]


# --- .lst lines ---------------------------------------------------------------------------------

def test_parse_lst_line_with_bbox_and_landmarks():
    xs = [1.5, 2.5, 3.5, 4.5, 5.5]
    ys = [10.0, 20.0, 30.0, 40.0, 50.0]
    line = '0\tp.jpg\t7\t1\t2\t3\t4\t' + '\t'.join(str(v) for v in xs + ys) + '\n'
    aligned, path, label, bbox, landmark = record_io.parse_lst_line(line)
    assert (aligned, path, label) == (0, 'p.jpg', 7)
    assert bbox.dtype == np.int32 and bbox.tolist() == [1, 2, 3, 4]
    assert landmark.shape == (5, 2)
    assert landmark[:, 0].tolist() == xs and landmark[:, 1].tolist() == ys


def test_lst_line_round_trip_and_errors():
    landmark = np.arange(10, dtype=np.float32).reshape(5, 2) + 0.25
    line = record_io.format_lst_line(0, 'a/b.jpg', 3, (5, 6, 7, 8), landmark)
    aligned, path, label, bbox, parsed = record_io.parse_lst_line(line)
    assert (aligned, path, label, bbox.tolist()) == (0, 'a/b.jpg', 3, [5, 6, 7, 8])
    np.testing.assert_array_equal(parsed, landmark)
    assert record_io.parse_lst_line('1\tx.jpg\t4')[3:] == (None, None)
    with pytest.raises(record_io.LstFormatError, match='train.lst:9'):
        record_io.parse_lst_line('1\tx.jpg\n', where='train.lst:9')
    with pytest.raises(record_io.LstFormatError, match='train.lst:2'):
        record_io.parse_lst_line('1\tx.jpg\tnot-a-label', where='train.lst:2')


# --- property -----------------------------------------------------------------------------------

def test_property_written_without_newline_and_read_back(tmp_path):
    record_io.write_property(str(tmp_path), 85742, (112, 96))
    assert (tmp_path / 'property').read_bytes() == b'85742,112,96'
    assert record_io.read_property(str(tmp_path)) == (85742, (112, 96))
    assert os.listdir(tmp_path) == ['property']


def test_property_accepts_one_trailing_newline_only(tmp_path):
    (tmp_path / 'property').write_text('10,112,112\n')
    assert record_io.read_property(str(tmp_path)).image_size == (112, 112)
    (tmp_path / 'property').write_text('10,112,112\n\n')
    with pytest.raises(RecordFormatError, match=str(tmp_path / 'property')):
        record_io.read_property(str(tmp_path))
    (tmp_path / 'property').write_text('10,112')
    with pytest.raises(RecordFormatError, match='num_classes,height,width'):
        record_io.read_property(str(tmp_path))
    (tmp_path / 'property').write_text('ten,112,112')
    with pytest.raises(RecordFormatError, match='integers'):
        record_io.read_property(str(tmp_path))
    os.remove(tmp_path / 'property')
    with pytest.raises(FileNotFoundError):
        record_io.read_property(str(tmp_path))


# --- record packing -----------------------------------------------------------------------------

def test_pack_record_matches_mxnet_pack_byte_for_byte():
    packed = record_io.pack_record([5, 1], 7, b'abc')
    assert packed == mx.recordio.pack(mx.recordio.IRHeader(0, [5, 1], 7, 0), b'abc')
    assert packed == struct.pack('<IfQQ', 2, 0.0, 7, 0) + struct.pack('<ff', 5.0, 1.0) + b'abc'
    scalar = record_io.pack_record(3, 9, b'x')
    assert scalar == mx.recordio.pack(mx.recordio.IRHeader(1, 3, 9, 0), b'x')
    assert scalar == struct.pack('<IfQQ', 0, 3.0, 9, 0) + b'x'


# --- writer and reader --------------------------------------------------------------------------

def test_writer_layout_matches_face2rec2(tmp_path):
    rec = str(tmp_path / 'train.rec')
    write_ours(rec)
    assert idx_keys(rec) == [1, 2, 3, 4, 5, 0, 6, 7]
    with RecordReader(rec) as reader:
        assert reader.header == (6, 8)
        header, payload = reader.read(0)
        assert header.flag == 2 and header.label.tolist() == [6, 8] and payload == b''
        assert reader.identity_ranges() == [(6, 1, 3), (7, 3, 6)]
        for key, (label, expected) in enumerate(zip(LABELS, PAYLOADS), 1):
            header, payload = reader.read(key)
            assert header.flag == 2 and header.label.tolist() == [label, 1]
            assert header.id == key and payload == expected
            assert reader.read_image(key) == (float(label), expected)
        assert reader.image_keys() == [1, 2, 3, 4, 5]


def test_header_last_and_scalar_labels(tmp_path):
    rec = str(tmp_path / 'train.rec')
    write_ours(rec, aligned=None, header_last=True)
    assert idx_keys(rec) == [1, 2, 3, 4, 5, 6, 7, 0]
    with RecordReader(rec) as reader:
        header, _ = reader.read(2)
        assert header.flag == 0 and header.label == 0.0
        assert reader.read_image(5) == (1.0, PAYLOADS[4])
        assert reader.identity_ranges() == [(6, 1, 3), (7, 3, 6)]


def test_label_in_two_runs_gives_two_identities(tmp_path):
    rec = str(tmp_path / 'train.rec')
    write_ours(rec, labels=[0, 1, 1, 0], payloads=[b'a', b'b', b'c', b'd'])
    with RecordReader(rec) as reader:
        assert reader.header == (5, 8)
        assert reader.identity_ranges() == [(5, 1, 2), (6, 2, 4), (7, 4, 5)]


def test_empty_dataset_has_header_and_no_identities(tmp_path):
    rec = str(tmp_path / 'train.rec')
    write_ours(rec, labels=[], payloads=[])
    with RecordReader(rec) as reader:
        assert reader.header == (1, 1)
        assert reader.identity_ranges() == [] and reader.image_keys() == []


def test_byte_identical_to_2019_writer_and_readable_both_ways(tmp_path):
    ours = str(tmp_path / 'ours.rec')
    theirs = str(tmp_path / 'theirs.rec')
    labels = [3, 3, 0, 7, 7, 7, 3]
    payloads = [os.urandom(50 + 13 * i) for i in range(len(labels))]
    write_ours(ours, labels, payloads)
    write_2019_style(theirs, labels, payloads)
    assert open(ours, 'rb').read() == open(theirs, 'rb').read()
    assert open(ours[:-4] + '.idx').read() == open(theirs[:-4] + '.idx').read()

    expected_ranges = [(8, 1, 3), (9, 3, 4), (10, 4, 7), (11, 7, 8)]
    with RecordReader(theirs) as reader:
        assert reader.header == (8, 12)
        assert reader.identity_ranges() == expected_ranges
        assert [reader.read_image(k) for k in range(1, 8)] == \
            [(float(lab), pay) for lab, pay in zip(labels, payloads)]
    header, ranges, images = read_2019_style(ours)
    assert header == (8, 12) and ranges == expected_ranges
    assert [images[k] for k in range(1, 8)] == [(float(lab), pay) for lab, pay in
                                                zip(labels, payloads)]


def test_payload_containing_the_magic_word_survives(tmp_path):
    # dmlc splits a record at every 4-byte-aligned magic word; the reader must put them back.
    magic = struct.pack('<I', 0xCED7230A)
    payload = b'abcd' + magic * 3 + b'xy' + magic + b'\x00' * 3 + magic
    rec = str(tmp_path / 'train.rec')
    write_ours(rec, labels=[0, 0], payloads=[payload, payload[2:]])
    with RecordReader(rec) as reader:
        assert reader.read_image(1)[1] == payload
        assert reader.read_image(2)[1] == payload[2:]
    assert read_2019_style(rec)[2][1][1] == payload


def test_flat_file_has_no_header(tmp_path):
    rec = str(tmp_path / 'flat.rec')
    record = mx.recordio.MXIndexedRecordIO(str(tmp_path / 'flat.idx'), rec, 'w')
    for key in range(3):
        record.write_idx(key, mx.recordio.pack(mx.recordio.IRHeader(0, key * 2, key, 0), b'z'))
    record.close()
    with RecordReader(rec) as reader:
        assert reader.header is None
        assert reader.image_keys() == [0, 1, 2]
        assert reader.read_image(2) == (4.0, b'z')


def test_reader_pickles_for_worker_processes(tmp_path):
    rec = str(tmp_path / 'train.rec')
    write_ours(rec)
    copy = pickle.loads(pickle.dumps(RecordReader(rec)))
    assert copy.read_image(4) == (1.0, PAYLOADS[3])


# --- atomic writing -----------------------------------------------------------------------------

def test_exception_mid_write_leaves_no_final_files(tmp_path):
    rec = str(tmp_path / 'train.rec')
    with pytest.raises(RuntimeError):
        with IdentityRecordWriter(rec) as writer:
            writer.add_image(b'a', 0, aligned=1)
            assert not os.path.exists(rec) and not os.path.exists(rec[:-4] + '.idx')
            raise RuntimeError('simulated crash')
    assert os.listdir(tmp_path) == []


def test_abort_keeps_previous_files_untouched(tmp_path):
    rec = str(tmp_path / 'train.rec')
    write_ours(rec)
    before = open(rec, 'rb').read(), open(rec[:-4] + '.idx').read()
    writer = IdentityRecordWriter(rec)
    writer.add_image(b'new', 5)
    writer.abort()
    assert (open(rec, 'rb').read(), open(rec[:-4] + '.idx').read()) == before
    assert sorted(os.listdir(tmp_path)) == ['train.idx', 'train.rec']


# --- damaged files ------------------------------------------------------------------------------

def test_missing_idx_names_the_file(tmp_path):
    rec = str(tmp_path / 'train.rec')
    write_ours(rec)
    os.remove(rec[:-4] + '.idx')
    with pytest.raises(FileNotFoundError, match='train.idx'):
        RecordReader(rec)


def test_truncated_rec_names_the_record(tmp_path):
    rec = str(tmp_path / 'flat.rec')
    record = mx.recordio.MXIndexedRecordIO(rec[:-4] + '.idx', rec, 'w')
    record.write_idx(0, mx.recordio.pack(mx.recordio.IRHeader(0, 0, 0, 0), b'a' * 40))
    record.write_idx(1, mx.recordio.pack(mx.recordio.IRHeader(0, 1, 1, 0), b'b' * 400))
    record.close()
    # Cut the file inside record 1: its offset is still valid, its data is not.
    with open(rec, 'r+b') as fout:
        fout.truncate(os.path.getsize(rec) - 100)
    with RecordReader(rec) as reader:
        assert reader.read_image(0) == (0.0, b'a' * 40)
        with pytest.raises(RecordFormatError, match=r'flat.rec: record 1 is truncated'):
            reader.read_image(1)


def test_truncated_identity_file_fails_on_open(tmp_path):
    rec = str(tmp_path / 'train.rec')
    write_ours(rec)
    with open(rec, 'r+b') as fout:
        fout.truncate(os.path.getsize(rec) // 2)
    with pytest.raises(RecordFormatError, match=r'train.idx:\d+: record \d+ starts at byte'):
        RecordReader(rec)


def test_idx_offset_past_end_names_idx_line(tmp_path):
    rec = str(tmp_path / 'train.rec')
    write_ours(rec)
    with open(rec[:-4] + '.idx', 'a') as fout:
        fout.write('99\t%d\n' % (os.path.getsize(rec) + 8))
    with pytest.raises(RecordFormatError, match=r'train.idx:9: record 99 starts at byte'):
        RecordReader(rec)


def test_malformed_idx_line(tmp_path):
    rec = str(tmp_path / 'train.rec')
    write_ours(rec)
    with open(rec[:-4] + '.idx', 'a') as fout:
        fout.write('oops\n')
    with pytest.raises(RecordFormatError, match=r'train.idx:9: expected'):
        RecordReader(rec)


def test_idx_offset_not_at_a_record(tmp_path):
    rec = str(tmp_path / 'train.rec')
    write_ours(rec)
    lines = open(rec[:-4] + '.idx').read().splitlines()
    key, offset = lines[2].split('\t')
    lines[2] = '%s\t%d' % (key, int(offset) + 4)
    open(rec[:-4] + '.idx', 'w').write('\n'.join(lines) + '\n')
    with RecordReader(rec) as reader:
        with pytest.raises(RecordFormatError, match='record 3 at byte .* magic'):
            reader.read(3)


def _write_raw(rec_path, records):
    record = mx.recordio.MXIndexedRecordIO(rec_path[:-4] + '.idx', rec_path, 'w')
    for key, label in records:
        record.write_idx(key, mx.recordio.pack(mx.recordio.IRHeader(0, label, key, 0), b'p'))
    record.close()


def test_header_pointing_at_missing_identity(tmp_path):
    rec = str(tmp_path / 'train.rec')
    _write_raw(rec, [(1, 0), (0, [2, 4]), (2, [1, 2])])
    with pytest.raises(RecordFormatError, match=r'header record 0 .* no record 3'):
        RecordReader(rec)


def test_identity_pointing_at_missing_image(tmp_path):
    rec = str(tmp_path / 'train.rec')
    _write_raw(rec, [(1, 0), (0, [3, 4]), (3, [1, 3])])
    with RecordReader(rec) as reader:
        with pytest.raises(RecordFormatError, match=r'identity record 3 .* no record 2'):
            reader.identity_ranges()
        with pytest.raises(KeyError, match='no record 2'):
            reader.read_image(2)


def test_missing_header_record(tmp_path):
    rec = str(tmp_path / 'train.rec')
    _write_raw(rec, [(1, 0), (2, 0)])
    with pytest.raises(RecordFormatError, match='no record 0'):
        RecordReader(rec)
