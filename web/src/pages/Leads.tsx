// Leads: find one person by email or phone (exact), see their state, lists, consent and every
// event about them, people's engagement told apart from machines'.
import { Badge, Button, Card, Code, Group, SegmentedControl, SimpleGrid, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { qs } from "../api";
import { Gate } from "../components/States";
import { useApi } from "../components/useApi";
import { fmtTime } from "../dates";
import { may, useSession } from "../session";
import { Erased, SubjectRights } from "./SubjectRights";

type TimelineEvent = { event_id: string; event_type: string; occurred_at: string; channel: string; list: string; status: string;
  outcome: string; reasons: string[]; provider?: string | null; send_id?: string | null; machine: boolean | null; summary: string };
type Subscription = { channel: string; status: string; subscribed: boolean; unsubscribed_at: string | null; unsubscribe_reason: string | null;
  consent: { at: string; text: string } | null; lists: { list: string; subscribed: boolean; left: boolean; paused_until: string | null; cadence: string | null }[] };
type Lookup = { lead_id: string; tenant: string; channel: string; address: string; state: Record<string, any> | null; lists: string[];
  subscription: Subscription | null; timeline: TimelineEvent[]; timeline_truncated: boolean };

export function LeadsPage() {
  const { tenant, me } = useSession();
  const [erased, setErased] = useState<{ key: string; erasure: Parameters<typeof Erased>[0]["erasure"] } | null>(null);
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
      {erased && erased.key === `${by}:${value}` ? <Erased erasure={erased.erasure} /> : value && (
        <Gate loading={found.loading && !found.data} error={found.error} what="the lead">
          {found.data && <LeadView lead={found.data} />}
          {found.data && may(me, "subjects.erase", tenant) && (
            <SubjectRights person={{ [by]: value }} leadId={found.data.lead_id}
              onErased={(erasure) => setErased({ key: `${by}:${value}`, erasure })} />
          )}
        </Gate>
      )}
    </Stack>
  );
}

function LeadView({ lead }: { lead: Lookup }) {
  const s = lead.state;
  const sub = lead.subscription;
  return (
    <Stack data-testid="lead">
      <SimpleGrid cols={{ base: 1, md: 3 }}>
        <Card withBorder>
          <Text size="sm" c="dimmed">Person</Text>
          <Text fw={600} data-testid="lead-address">{lead.address}</Text>
          <Text size="xs" c="dimmed">{lead.channel} · {lead.lead_id}</Text>
          {s?.first_name && <Text size="sm">{s.first_name}</Text>}
        </Card>
        <Card withBorder>
          <Text size="sm" c="dimmed">State</Text>
          {s ? (
            <Stack gap={2} data-testid="lead-state">
              <Group gap={4}><Badge color={s.status === "accepted" ? "teal" : "gray"}>{s.status}</Badge>
                {(s.reasons ?? []).map((r: string) => <Badge key={r} variant="outline" color="gray">{r}</Badge>)}</Group>
              <Text size="xs">from {(s.partners ?? []).join(", ") || "–"} · {s.submissions} submission(s) · {s.timezone ?? "timezone unknown"}</Text>
              <Text size="xs" c="dimmed">first seen {fmtTime(s.first_seen_ms)}</Text>
            </Stack>
          ) : <Text size="sm" c="dimmed">Only events so far: no read model.</Text>}
        </Card>
        <Card withBorder>
          <Text size="sm" c="dimmed">Lists and consent</Text>
          {sub ? (
            <Stack gap={2} data-testid="lead-consent">
              <Group gap={4}>
                <Badge color={sub.subscribed ? "teal" : "red"} variant="light">{sub.subscribed ? "subscribed" : "unsubscribed"}</Badge>
                {sub.unsubscribe_reason && <Text size="xs">{sub.unsubscribe_reason} {fmtTime(sub.unsubscribed_at)}</Text>}
              </Group>
              {sub.lists.map((l) => (
                <Text size="xs" key={l.list}><b>{l.list}</b>: {l.left ? "left" : l.subscribed ? "on" : "off"}{l.cadence ? `, ${l.cadence}` : ""}{l.paused_until ? `, paused until ${fmtTime(l.paused_until)}` : ""}</Text>
              ))}
              <Text size="xs" c="dimmed">{sub.consent ? `consent ${fmtTime(sub.consent.at)}: “${sub.consent.text}”` : "no consent text recorded"}</Text>
            </Stack>
          ) : (
            <Group gap={4}>{lead.lists.map((l) => <Badge key={l} variant="light">{l}</Badge>)}</Group>
          )}
        </Card>
      </SimpleGrid>
      <Title order={4}>Timeline {lead.timeline_truncated && <Text span size="sm" c="dimmed">(the newest 500 events)</Text>}</Title>
      <Table.ScrollContainer minWidth={700}>
        <Table striped data-testid="timeline">
          <Table.Thead><Table.Tr><Table.Th>When</Table.Th><Table.Th>Event</Table.Th><Table.Th>Who</Table.Th><Table.Th>Details</Table.Th></Table.Tr></Table.Thead>
          <Table.Tbody>
            {lead.timeline.map((e) => (
              <Table.Tr key={e.event_id} data-event={e.event_type}>
                <Table.Td>{fmtTime(e.occurred_at)}</Table.Td>
                <Table.Td><Code>{e.event_type}</Code></Table.Td>
                <Table.Td>{e.machine === null ? "" : e.machine ? <Badge color="gray" variant="light">machine</Badge> : <Badge color="teal" variant="light">person</Badge>}</Table.Td>
                <Table.Td>{e.summary}{e.reasons?.length ? <Text span size="xs" c="dimmed"> ({e.reasons.join(", ")})</Text> : null}
                  {e.send_id && <> · <Link to={`/messages?send=${encodeURIComponent(e.send_id)}`}>message</Link></>}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    </Stack>
  );
}
