// Leads: find one person by email or phone (exact), see their state, lists, consent and every
// event about them, people's engagement told apart from machines'.
import { Badge, Button, Card, Code, Group, SegmentedControl, SimpleGrid, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useState, type FormEvent } from "react";
import { useSearchParams } from "react-router-dom";
import { qs } from "../api";
import { Gate } from "../components/States";
import { useApi } from "../components/useApi";
import { fmtTime } from "../dates";
import { useSession } from "../session";

type TimelineEvent = { event_id: string; event_type: string; occurred_at: string; channel: string; list: string; status: string;
  outcome: string; reasons: string[]; provider?: string | null; send_id?: string | null; machine: boolean | null; summary: string };
type Lookup = { lead_id: string; tenant: string; channel: string; address: string; state: Record<string, any>; lists: any[];
  consent?: any; subscription?: any; timeline: TimelineEvent[] };

export function LeadsPage() {
  const { tenant } = useSession();
  const [params, setParams] = useSearchParams();
  const by = params.get("phone") !== null ? "phone" : "email";
  const value = params.get(by) ?? "";
  const [kind, setKind] = useState(by);
  const [text, setText] = useState(value);
  const found = useApi<Lookup>(tenant && value ? `/v1/tenants/${tenant}/lookup` + qs({ [by]: value }) : null);

  function search(e: FormEvent) {
    e.preventDefault();
    setParams({ [kind]: text.trim() });
  }

  return (
    <Stack>
      <Title order={2}>Leads</Title>
      <form onSubmit={search} aria-label="Find a lead">
        <Group align="end">
          <SegmentedControl value={kind} onChange={setKind} data={[{ value: "email", label: "Email" }, { value: "phone", label: "Phone" }]} />
          <TextInput label={kind === "email" ? "Email address (exact)" : "Phone number (exact)"} value={text} w={320} maw="100%"
            onChange={(e) => setText(e.currentTarget.value)} data-testid="lead-query" />
          <Button type="submit" data-testid="find-lead">Find</Button>
        </Group>
      </form>
      {value && (
        <Gate loading={found.loading && !found.data} error={found.error} what="the lead">
          {found.data && <LeadView lead={found.data} />}
        </Gate>
      )}
    </Stack>
  );
}

function LeadView({ lead }: { lead: Lookup }) {
  const s = lead.state ?? {};
  const consent = lead.consent ?? lead.subscription;
  return (
    <Stack data-testid="lead">
      <SimpleGrid cols={{ base: 1, md: 3 }}>
        <Card withBorder>
          <Text size="sm" c="dimmed">Person</Text>
          <Text fw={600} data-testid="lead-address">{lead.address}</Text>
          <Text size="xs" c="dimmed">{lead.channel} · {lead.lead_id}</Text>
        </Card>
        <Card withBorder>
          <Text size="sm" c="dimmed">State</Text>
          <Group gap={4} data-testid="lead-state">
            {Object.entries(s).filter(([, v]) => typeof v !== "object" || v === null).slice(0, 12).map(([k, v]) => (
              <Badge key={k} variant="light" color="gray">{k}: {String(v)}</Badge>
            ))}
          </Group>
        </Card>
        <Card withBorder>
          <Text size="sm" c="dimmed">Lists and consent</Text>
          <Group gap={4}>
            {(lead.lists ?? []).map((l: any, i: number) => <Badge key={i} variant="light">{typeof l === "string" ? l : l.list ?? JSON.stringify(l)}</Badge>)}
          </Group>
          {consent && <Code block mt="xs">{JSON.stringify(consent, null, 1)}</Code>}
        </Card>
      </SimpleGrid>
      <Title order={4}>Timeline</Title>
      <Table.ScrollContainer minWidth={700}>
        <Table striped data-testid="timeline">
          <Table.Thead><Table.Tr><Table.Th>When</Table.Th><Table.Th>Event</Table.Th><Table.Th>Who</Table.Th><Table.Th>Details</Table.Th></Table.Tr></Table.Thead>
          <Table.Tbody>
            {lead.timeline.map((e) => (
              <Table.Tr key={e.event_id} data-event={e.event_type}>
                <Table.Td>{fmtTime(e.occurred_at)}</Table.Td>
                <Table.Td><Code>{e.event_type}</Code></Table.Td>
                <Table.Td>{e.machine === null ? "" : e.machine ? <Badge color="gray" variant="light">machine</Badge> : <Badge color="teal" variant="light">person</Badge>}</Table.Td>
                <Table.Td>{e.summary}{e.reasons?.length ? <Text span size="xs" c="dimmed"> ({e.reasons.join(", ")})</Text> : null}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    </Stack>
  );
}
