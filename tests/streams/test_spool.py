"""The spool that keeps what Kafka did not take: files, torn lines, and a producer whose
broker is unreachable (a closed port: no Kafka is faked, none answers)."""
import time

from streams.spool import Journal, Spool, SpoolingProducer, read_records


def test_records_survive_rotation_and_a_torn_last_line(tmp_path):
    spool = Spool(tmp_path)
    spool.append("t", b"k1", b"\x00\x01value")
    spool.append("t", None, b"v2")
    [path] = spool.take()
    with open(path, "ab") as fh:
        fh.write(b'{"topic": "t", "key": nu')  # the process died mid-write
    assert read_records(path) == [("t", b"k1", b"\x00\x01value"), ("t", None, b"v2")]
    spool.append("t", b"k3", b"v3")  # a fresh current file beside the one waiting
    assert spool.pending() == 4 and len(spool.take()) == 2


def test_a_producer_without_kafka_spools_every_record_and_loses_none(tmp_path):
    p = SpoolingProducer("127.0.0.1:1", tmp_path, **{"message.timeout.ms": 1000, "socket.timeout.ms": 1000})
    try:
        for i in range(5):
            p.send("leads", f"k{i}".encode(), f"v{i}".encode())
        deadline = time.monotonic() + 15
        while p.spool.pending() < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert p.spool.pending() == 5
        p.send("leads", b"k5", b"v5")  # Kafka failed a moment ago: straight to the spool
        assert p.spool.pending() == 6
    finally:
        p.close(timeout_s=1)
    kept = sorted(v for f in tmp_path.glob("*.jsonl") for _, _, v in read_records(f))
    assert kept == [f"v{i}".encode() for i in range(6)]


def test_journal_segments_rotate_and_go_once_every_record_in_them_had_its_verdict(tmp_path):
    j = Journal(tmp_path / "journal", settle_s=10, rotate_s=2)
    j.write("t", b"k1", b"v1")
    [first] = j.segments()
    j.tick(time.monotonic() + 1)  # young: still the open segment
    j.write("t", b"k2", b"v2")
    assert j.segments() == [first] and read_records(first) == [("t", b"k1", b"v1"), ("t", b"k2", b"v2")]
    now = time.monotonic() + 3
    j.tick(now)  # closed, not settled
    j.write("t", b"k3", b"v3")  # a new segment
    assert len(j.segments()) == 2
    j.tick(now + 9.9)
    assert first in j.segments()
    j.tick(now + 10)
    assert first not in j.segments() and [r for p in j.segments() for r in read_records(p)] == [("t", b"k3", b"v3")]


def test_the_segments_a_dead_process_left_are_spooled_by_the_next(tmp_path):
    dead = Journal(tmp_path / "journal", settle_s=20)
    dead.write("t", b"k1", b"v1")
    dead.write("t", None, b"v2")
    Journal(tmp_path / "journal", settle_s=20).adopt(tmp_path)
    spool = Spool(tmp_path)
    [path] = spool.take()
    assert read_records(path) == [("t", b"k1", b"v1"), ("t", None, b"v2")]
    assert not list((tmp_path / "journal").glob("*.jsonl"))
