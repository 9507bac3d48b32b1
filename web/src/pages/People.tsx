// People with a role in the brand: add someone with a role, take a role away.
import { Badge, Button, Card, Group, PasswordInput, Select, SimpleGrid, Stack, Table, TextInput, Title } from "@mantine/core";
import { useState, type FormEvent } from "react";
import { ApiProblem, request } from "../api";
import { Gate, Problem } from "../components/States";
import { useApi } from "../components/useApi";
import { may, useSession } from "../session";

type Grant = { id: string; version: number; person: string; role: string; tenant: string | null; partner: string | null };
type Person = { email: string; name: string; disabled: boolean; can_sign_in: boolean; grants: Grant[] };

export function PeoplePage() {
  const { me, tenant } = useSession();
  const people = useApi<Person[]>(tenant ? `/v1/tenants/${tenant}/people` : null);
  const [form, setForm] = useState({ email: "", name: "", role: "analyst", partner: "", password: "" });
  const [error, setError] = useState<ApiProblem | null>(null);
  const writer = may(me, "people.write", tenant);

  async function add(e: FormEvent) {
    e.preventDefault();
    try {
      await request("POST", `/v1/tenants/${tenant}/people`, {
        email: form.email, name: form.name, role: form.role, partner: form.role === "partner" ? form.partner : null,
        password: form.password || null,
      });
      setError(null);
      setForm({ ...form, email: "", name: "", password: "" });
      people.reload();
    } catch (err) {
      setError(err as ApiProblem);
    }
  }

  async function revoke(g: Grant) {
    if (!window.confirm(`Take ${g.role} away from ${g.person}?`)) return;
    try {
      await request("DELETE", `/v1/tenants/${tenant}/grants/${g.id}`, undefined, { "If-Match": `"v${g.version}"` });
      setError(null);
      people.reload();
    } catch (err) {
      setError(err as ApiProblem);
    }
  }

  return (
    <Stack>
      <Title order={2}>People and roles</Title>
      <Problem error={error} title="Not done" />
      <Gate loading={people.loading && !people.data} error={people.error} what="people" empty={people.data?.length === 0 && "Nobody has a role here yet."}>
        <Table.ScrollContainer minWidth={560}>
          <Table striped data-testid="people-table">
            <Table.Thead><Table.Tr><Table.Th>Person</Table.Th><Table.Th>Roles here</Table.Th><Table.Th>Can sign in</Table.Th></Table.Tr></Table.Thead>
            <Table.Tbody>
              {(people.data ?? []).map((p) => (
                <Table.Tr key={p.email}>
                  <Table.Td>{p.name}<br /><small>{p.email}</small></Table.Td>
                  <Table.Td>
                    <Group gap={4}>
                      {p.grants.map((g) => (
                        <Badge key={g.id} variant="light" rightSection={writer ? <span role="button" aria-label={`remove ${g.role}`} style={{ cursor: "pointer" }} onClick={() => revoke(g)}>×</span> : null}>
                          {g.role}{g.partner ? ` (${g.partner})` : ""}
                        </Badge>
                      ))}
                    </Group>
                  </Table.Td>
                  <Table.Td>{p.disabled ? "disabled" : p.can_sign_in ? "yes" : "no password yet"}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      </Gate>
      {writer && (
        <Card withBorder maw={720}>
          <form onSubmit={add} aria-label="Add a person">
            <Title order={4} mb="sm">Give someone a role</Title>
            <SimpleGrid cols={{ base: 1, sm: 2 }}>
              <TextInput label="Email" required value={form.email} onChange={(e) => setForm({ ...form, email: e.currentTarget.value })} error={error?.forField("email")} />
              <TextInput label="Name" value={form.name} onChange={(e) => setForm({ ...form, name: e.currentTarget.value })} />
              <Select label="Role" data={["brand_admin", "analyst", "partner"]} value={form.role} allowDeselect={false} onChange={(v) => setForm({ ...form, role: v ?? "analyst" })} />
              {form.role === "partner" && <TextInput label="Partner" required value={form.partner} onChange={(e) => setForm({ ...form, partner: e.currentTarget.value })} error={error?.forField("partner")} />}
              <PasswordInput label="First password (new people)" value={form.password} onChange={(e) => setForm({ ...form, password: e.currentTarget.value })} error={error?.forField("password")} />
            </SimpleGrid>
            <Button type="submit" mt="md">Add</Button>
          </form>
        </Card>
      )}
    </Stack>
  );
}
