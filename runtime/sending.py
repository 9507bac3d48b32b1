"""Builds the sending use case for a process: Redis stores, the providers' failover chains
(each signing with the brand's DKIM key), the template files, the settings it reads."""
from __future__ import annotations

from channels.dkim import DkimSigner, KeyLoader
from channels.registry import Chains, build_providers
from projections.redis_jobs import JobStore
from projections.redis_recommender import RecommenderStore
from projections.redis_segments import SegmentStore
from projections.redis_sends import SendState
from projections.templates import TemplateStore
from services.sending.batch import SendBatch
from services.sending.ports import SendingPorts, SendPolicy
from streams.link_log import KafkaLinkLog
from streams.topics import SEND_LINKS


def build_send_batch(deps, chains: Chains | None = None, templates: TemplateStore | None = None) -> SendBatch:
    s = deps.settings
    if chains is None:
        signer = DkimSigner(lambda: deps.tenants, KeyLoader(s.secrets_dir))
        chains = Chains(build_providers(s, sign=signer.sign, sign_async=signer.sign_async))
    policy = SendPolicy(lease_ms=int(s.send_lease_s * 1000), provider_rate_per_s=s.provider_rate_per_s,
                        link_key=s.link_key_ring[0], tracking_base_url=s.tracking_base_url)
    return SendBatch(SendingPorts(book=lambda: deps.tenants, leads=deps.leads, store=SendState(deps.redis),
                                  jobs=JobStore(deps.redis), templates=templates or TemplateStore(),
                                  deliverers=chains, policy=policy, segments=SegmentStore(deps.redis),
                                  recommender=RecommenderStore(deps.redis),
                                  links=KafkaLinkLog(deps.producer, deps.codec, deps.topic(SEND_LINKS))))
