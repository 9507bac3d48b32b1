// Lists: every list of the brand with its schedule, cadence, providers and template; brand
// admins create, open and delete them (a delete names the version it saw).
import { Badge, Button, Group, Stack, Table, Text, Title } from "@mantine/core";
import { useState } from "react";
import { Link, useNavigate } from "react-router-dom";
import { ApiProblem, request } from "../api";
import { Gate, Problem } from "../components/States";
import { useApi } from "../components/useApi";
import { may, useSession } from "../session";

export type Envelope<T = any> = { id: string; version: number; updated_at_ms: number; updated_by: string; data: T };

export function ListsPage() {
  const { me, tenant } = useSession();
  const navigate = useNavigate();
  const lists = useApi<Envelope[]>(tenant ? `/v1/tenants/${tenant}/lists` : null);
  const [error, setError] = useState<ApiProblem | null>(null);
  const writer = may(me, "config.write", tenant);

  async function remove(e: Envelope) {
    if (!window.confirm(`Delete the list ${e.id}? Its leads stop getting its messages.`)) return;
    try {
      await request("DELETE", `/v1/tenants/${tenant}/lists/${e.id}`, undefined, { "If-Match": `"v${e.version}"` });
      setError(null);
      lists.reload();
    } catch (err) {
      setError(err as ApiProblem);
    }
  }

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Lists</Title>
        {writer && <Button onClick={() => navigate("/lists/new")} data-testid="new-list">New list</Button>}
      </Group>
      <Problem error={error} title="Not deleted" />
      <Gate loading={lists.loading && !lists.data} error={lists.error} what="lists" empty={lists.data?.length === 0 && "This brand has no lists yet."}>
        <Table.ScrollContainer minWidth={640}>
          <Table striped highlightOnHover data-testid="lists-table">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>List</Table.Th><Table.Th>Channel</Table.Th><Table.Th>Sends at</Table.Th><Table.Th>Cadence</Table.Th>
                <Table.Th>Template</Table.Th><Table.Th>Providers</Table.Th><Table.Th>Version</Table.Th><Table.Th />
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {(lists.data ?? []).map((e) => (
                <Table.Tr key={e.id} data-testid={`list-${e.id}`}>
                  <Table.Td><Link to={`/lists/${e.id}`}>{e.id}</Link><Text size="xs" c="dimmed">{e.data.title}</Text></Table.Td>
                  <Table.Td><Badge variant="light">{e.data.channel}</Badge></Table.Td>
                  <Table.Td data-testid="send-time">{e.data.send_time} <Text span size="xs" c="dimmed">{e.data.timezone}</Text></Table.Td>
                  <Table.Td>{e.data.cadence}</Table.Td>
                  <Table.Td>{e.data.template || e.id}</Table.Td>
                  <Table.Td>{(e.data.providers ?? []).join(" → ") || "default"}</Table.Td>
                  <Table.Td>v{e.version}</Table.Td>
                  <Table.Td>{writer && <Button size="xs" color="red" variant="subtle" onClick={() => remove(e)}>Delete</Button>}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      </Gate>
    </Stack>
  );
}
