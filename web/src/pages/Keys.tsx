// API keys: create one (shown once, here), see them all, revoke one.
import { Alert, Button, Card, Code, Group, NumberInput, Select, SimpleGrid, Stack, Table, TextInput, Title } from "@mantine/core";
import { useState, type FormEvent } from "react";
import { ApiProblem, request } from "../api";
import { Gate, Problem } from "../components/States";
import { useApi } from "../components/useApi";
import { fmtTime } from "../dates";
import { useSession } from "../session";

type Key = { id: string; version: number; role: string; partner: string | null; name: string; created_at_ms: number; expires_at_ms: number | null; revoked: boolean };

export function KeysPage() {
  const { tenant } = useSession();
  const keys = useApi<Key[]>(tenant ? `/v1/tenants/${tenant}/api-keys` : null);
  const [form, setForm] = useState({ name: "", role: "ingest", partner: "", expires_in_days: "" as number | string });
  const [created, setCreated] = useState<(Key & { key: string }) | null>(null);
  const [error, setError] = useState<ApiProblem | null>(null);

  async function create(e: FormEvent) {
    e.preventDefault();
    try {
      const { data } = await request<Key & { key: string }>("POST", `/v1/tenants/${tenant}/api-keys`, {
        name: form.name, role: form.role, partner: form.role === "partner" ? form.partner : null,
        expires_in_days: form.expires_in_days === "" ? null : Number(form.expires_in_days),
      });
      setCreated(data);
      setError(null);
      keys.reload();
    } catch (err) {
      setError(err as ApiProblem);
    }
  }

  async function revoke(k: Key) {
    if (!window.confirm(`Revoke ${k.name || k.id}? Whoever uses it is refused from now on.`)) return;
    try {
      await request("DELETE", `/v1/tenants/${tenant}/api-keys/${k.id}`, undefined, { "If-Match": `"v${k.version}"` });
      keys.reload();
    } catch (err) {
      setError(err as ApiProblem);
    }
  }

  return (
    <Stack>
      <Title order={2}>API keys</Title>
      {created && (
        <Alert color="green" title="Key created: copy it now, it is not shown again" data-testid="new-key">
          <Code block>{created.key}</Code>
        </Alert>
      )}
      <Problem error={error} title="Not done" />
      <Gate loading={keys.loading && !keys.data} error={keys.error} what="keys" empty={keys.data?.length === 0 && "No keys yet."}>
        <Table.ScrollContainer minWidth={560}>
          <Table striped data-testid="keys-table">
            <Table.Thead><Table.Tr><Table.Th>Name</Table.Th><Table.Th>Id</Table.Th><Table.Th>Role</Table.Th><Table.Th>Created</Table.Th><Table.Th>Expires</Table.Th><Table.Th /></Table.Tr></Table.Thead>
            <Table.Tbody>
              {(keys.data ?? []).map((k) => (
                <Table.Tr key={k.id} c={k.revoked ? "dimmed" : undefined}>
                  <Table.Td>{k.name}</Table.Td><Table.Td><Code>{k.id}</Code></Table.Td>
                  <Table.Td>{k.role}{k.partner ? ` (${k.partner})` : ""}</Table.Td>
                  <Table.Td>{fmtTime(k.created_at_ms)}</Table.Td><Table.Td>{k.expires_at_ms ? fmtTime(k.expires_at_ms) : "never"}</Table.Td>
                  <Table.Td>{k.revoked ? "revoked" : <Button size="xs" variant="subtle" color="red" onClick={() => revoke(k)}>Revoke</Button>}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      </Gate>
      <Card withBorder maw={720}>
        <form onSubmit={create} aria-label="Create a key">
          <Title order={4} mb="sm">New key</Title>
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput label="Name" value={form.name} onChange={(e) => setForm({ ...form, name: e.currentTarget.value })} error={error?.forField("name")} />
            <Select label="Role" data={["ingest", "analyst", "partner", "brand_admin"]} value={form.role} allowDeselect={false} onChange={(v) => setForm({ ...form, role: v ?? "ingest" })} />
            {form.role === "partner" && <TextInput label="Partner" value={form.partner} onChange={(e) => setForm({ ...form, partner: e.currentTarget.value })} error={error?.forField("partner")} />}
            <NumberInput label="Expires in days (empty: never)" min={1} max={3650} value={form.expires_in_days} onChange={(v) => setForm({ ...form, expires_in_days: v })} error={error?.forField("expires_in_days")} />
          </SimpleGrid>
          <Group mt="md"><Button type="submit" data-testid="create-key">Create key</Button></Group>
        </form>
      </Card>
    </Stack>
  );
}
