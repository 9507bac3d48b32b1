"""The sender's link log: each composed message's tracked links as a send.links event on
sends.links, acknowledged by Kafka before the message leaves (services/sending/ports.LinkLog)."""
from __future__ import annotations

from schemas.codec import Codec
from streams.producer import AsyncProducer


class KafkaLinkLog:
    def __init__(self, producer: AsyncProducer, codec: Codec, topic: str):
        self.producer, self.codec, self.topic = producer, codec, topic

    async def keep(self, events: list[tuple[str, dict]]) -> None:
        """Produce the events and wait for Kafka's acknowledgement (ProduceError if it refuses)."""
        await self.producer.send_many([(self.topic, ev["lead_id"].encode(), self.codec.encode(name, ev), None)
                                       for name, ev in events])
