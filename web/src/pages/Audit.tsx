// The audit log: every configuration change, newest first, filterable by entity and actor.
import { Code, Group, Select, Stack, Table, TextInput, Title } from "@mantine/core";
import { useState } from "react";
import { qs } from "../api";
import { Gate } from "../components/States";
import { useApi } from "../components/useApi";
import { fmtTime } from "../dates";

type Entry = { event_id: string; at: string; entity: string; key: string; tenant: string; id: string; version: number; op: string; actor: string; actor_ip: string; source: string };
const KINDS = ["tenant", "list", "partner", "template", "feed", "trigger", "segment", "webhook", "person", "grant", "api_key", "platform"];

export function AuditPage() {
  const [entity, setEntity] = useState<string | null>(null);
  const [actor, setActor] = useState("");
  const log = useApi<Entry[]>("/v1/audit" + qs({ entity: entity ?? undefined, actor: actor || undefined, limit: 200 }));
  return (
    <Stack>
      <Title order={2}>Audit log</Title>
      <Group>
        <Select label="Entity" clearable data={KINDS} value={entity} onChange={setEntity} w={160} />
        <TextInput label="Actor" placeholder="person:ann@example.com" value={actor} onChange={(e) => setActor(e.currentTarget.value)} />
      </Group>
      <Gate loading={log.loading && !log.data} error={log.error} what="the audit log" empty={log.data?.length === 0 && "No changes match."}>
        <Table.ScrollContainer minWidth={700}>
          <Table striped data-testid="audit-table">
            <Table.Thead><Table.Tr><Table.Th>When</Table.Th><Table.Th>What</Table.Th><Table.Th>Change</Table.Th><Table.Th>Who</Table.Th><Table.Th>From</Table.Th></Table.Tr></Table.Thead>
            <Table.Tbody>
              {(log.data ?? []).map((e) => (
                <Table.Tr key={e.event_id}>
                  <Table.Td>{fmtTime(e.at)}</Table.Td><Table.Td><Code>{e.key}</Code></Table.Td>
                  <Table.Td>{e.op} → v{e.version}</Table.Td><Table.Td>{e.actor}</Table.Td><Table.Td>{e.actor_ip} {e.source}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      </Gate>
    </Stack>
  );
}
