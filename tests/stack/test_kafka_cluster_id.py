"""The local stack formats Kafka's storage with a random cluster id the storage tool can read."""
import base64

from stack.services import new_cluster_id


def test_a_new_cluster_id_is_22_base64url_characters_never_read_as_an_option():
    ids = [new_cluster_id() for _ in range(3000)]  # 1 in 64 random ids begins with "-"
    assert not any(cid.startswith("-") for cid in ids)
    assert all(len(cid) == 22 and len(base64.urlsafe_b64decode(cid + "==")) == 16 for cid in ids)
    assert len(set(ids)) == len(ids)
