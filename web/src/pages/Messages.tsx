// Messages: the log of sends with filters, and one message as the person got it.
import { Badge, Button, Card, Code, Drawer, Group, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useSearchParams } from "react-router-dom";
import { qs } from "../api";
import { Gate } from "../components/States";
import { useApi } from "../components/useApi";
import { fmtTime } from "../dates";
import { useSession } from "../session";

type Row = { send_id: string; status: string; channel: string; provider: string | null; list: string | null; template: string | null;
  kind: string | null; lead_id: string; to: string | null; subject: string | null; reason: string | null; reasons: string[];
  requested_at: string | null; last_at: string | null };
type One = Row & { events: { event_type: string; occurred_at: string; status?: string; reasons?: string[]; summary?: string }[];
  message: { channel: string; subject?: string | null; html?: string | null; text?: string | null; from?: string | null; to?: string } | null;
  rendering: { composed_again: boolean; template_version_sent: number | null; template_version_shown: number | null; notes: string[] } | null };

// a screenful and some (rendering a hundred rows cost a first visit ~100 ms); "Older messages" pages on
const PAGE_SIZE = 50;
const STATUS = ["requested", "deferred", "skipped", "dispatched", "failed", "delivered", "bounced"];

export function MessagesPage() {
  const { tenant } = useSession();
  const [params, setParams] = useSearchParams();
  const f = { status: params.get("status") ?? "", provider: params.get("provider") ?? "", reason: params.get("reason") ?? "", channel: params.get("channel") ?? "" };
  const page = { before: params.get("before") ?? "", before_send: params.get("before_send") ?? "" };
  const open = params.get("send");
  const set = (k: string, v: string | null) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    if (k !== "send") ["before", "before_send"].forEach((x) => x !== k && next.delete(x));  // a new filter starts at the newest
    setParams(next);
  };
  const turn = (cursor: { before: string; before_send: string } | null) => {
    const next = new URLSearchParams(params);
    ["before", "before_send"].forEach((x) => (cursor ? next.set(x, cursor[x as "before"]) : next.delete(x)));
    setParams(next);
  };
  const log = useApi<{ messages: Row[]; next: { before: string; before_send: string } | null }>(
    tenant ? `/v1/tenants/${tenant}/messages` + qs({ ...f, ...page, limit: params.get("limit") ?? PAGE_SIZE }) : null);
  const rows = log.data?.messages ?? [];

  return (
    <Stack>
      <Title order={2}>Messages</Title>
      <Group align="end">
        <Select label="Status" clearable data={STATUS} value={f.status || null} onChange={(v) => set("status", v)} w={150} data-testid="filter-status" />
        <Select label="Channel" clearable data={["email", "sms"]} value={f.channel || null} onChange={(v) => set("channel", v)} w={120} />
        <TextInput label="Provider" value={f.provider} onChange={(e) => set("provider", e.currentTarget.value)} w={140} />
        <TextInput label="Reason" value={f.reason} onChange={(e) => set("reason", e.currentTarget.value)} w={170} />
      </Group>
      <Gate loading={log.loading && !log.data} error={log.error} what="messages" empty={!!log.data && rows.length === 0 && "No messages match."}>
        <Table.ScrollContainer minWidth={760}>
          <Table striped highlightOnHover data-testid="messages-table">
            <Table.Thead><Table.Tr><Table.Th>Requested</Table.Th><Table.Th>To</Table.Th><Table.Th>Status</Table.Th><Table.Th>Channel</Table.Th>
              <Table.Th>Provider</Table.Th><Table.Th>List / template</Table.Th><Table.Th /></Table.Tr></Table.Thead>
            <Table.Tbody>
              {rows.map((r) => (
                <Table.Tr key={r.send_id} data-status={r.status} data-send={r.send_id}>
                  <Table.Td>{fmtTime(r.requested_at ?? r.last_at)}</Table.Td>
                  <Table.Td>{r.to}<Text size="xs" c="dimmed">{r.kind}</Text></Table.Td>
                  <Table.Td><Badge variant="light" color={r.status === "delivered" ? "teal" : r.status === "failed" || r.status === "bounced" ? "red" : "gray"}>{r.status}</Badge>
                    {r.reasons?.length ? <Text size="xs" c="dimmed">{r.reasons.join(", ")}</Text> : null}</Table.Td>
                  <Table.Td>{r.channel}</Table.Td><Table.Td>{r.provider}</Table.Td><Table.Td>{r.list} {r.template && r.template !== r.list ? `/ ${r.template}` : ""}</Table.Td>
                  <Table.Td><Button size="xs" variant="subtle" onClick={() => set("send", r.send_id)}>View</Button></Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
        <Group>
          {page.before && <Button size="xs" variant="default" onClick={() => turn(null)}>Newest</Button>}
          {log.data?.next && <Button size="xs" variant="default" onClick={() => turn(log.data!.next)} data-testid="older">Older messages</Button>}
        </Group>
      </Gate>
      <Drawer opened={!!open} onClose={() => set("send", null)} position="right" size="xl" title="Message">
        {open && tenant && <OneMessage tenant={tenant} id={open} />}
      </Drawer>
    </Stack>
  );
}

function OneMessage({ tenant, id }: { tenant: string; id: string }) {
  const one = useApi<One>(`/v1/tenants/${tenant}/messages/${encodeURIComponent(id)}`);
  const m = one.data?.message;
  return (
    <Gate loading={one.loading} error={one.error} what="the message">
      <Stack data-testid="message">
        {one.data?.rendering?.notes?.length ? (
          <Text size="xs" c="dimmed" data-testid="rendering-notes">Composed again from what was sent: {one.data.rendering.notes.join("; ")}</Text>
        ) : one.data?.rendering?.composed_again ? (
          <Text size="xs" c="dimmed">Composed again from what was sent; its links are inert here (a look is not an open or a click).</Text>
        ) : null}
        {m ? (
          <Card withBorder>
            {m.subject !== undefined && <Text fw={600}>{m.subject}</Text>}
            <Text size="xs" c="dimmed">{m.from ? `from ${m.from} ` : ""}to {m.to}</Text>
            {m.html ? (
              <iframe title="The email as sent" sandbox="" srcDoc={m.html} data-testid="message-html" style={{ width: "100%", height: 520, border: "1px solid #ddd", marginTop: 8 }} />
            ) : (
              <Code block mt="xs" data-testid="message-text">{m.text}</Code>
            )}
          </Card>
        ) : (
          <Text c="dimmed">The content of this message is not available.</Text>
        )}
        <Table data-testid="message-events">
          <Table.Tbody>
            {(one.data?.events ?? []).map((e, i) => (
              <Table.Tr key={i}><Table.Td>{fmtTime(e.occurred_at)}</Table.Td><Table.Td><Code>{e.event_type}</Code></Table.Td><Table.Td>{e.summary ?? e.status} {(e.reasons ?? []).join(", ")}</Table.Td></Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Stack>
    </Gate>
  );
}
