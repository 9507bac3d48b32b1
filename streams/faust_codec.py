"""Our Avro single-object codec, registered with Faust as "avro-so".

Faust topics declared with value_serializer="avro-so" encode an event dict with the newest
schema named by its `schema` field ("lead.accepted@1") and decode any published version.
"""
from __future__ import annotations

from faust.serializers import codecs

from schemas.codec import default_codec

NAME = "avro-so"


class AvroSingleObject(codecs.Codec):
    def _dumps(self, obj: dict) -> bytes:
        return default_codec().encode(obj["schema"].split("@")[0], obj)

    def _loads(self, s: bytes) -> dict:
        return default_codec().decode(s)[1]


def register() -> None:
    if NAME not in codecs.codecs:
        codecs.register(NAME, AvroSingleObject())
