// Triggers and segments: what each trigger reacts to, its conditions, action and cooldown, in
// words; and what it did over a period (fired, held back and why, goals, sends), from the API.
import { Badge, Card, Group, SimpleGrid, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useState } from "react";
import { qs } from "../api";
import { Gate } from "../components/States";
import { useApi } from "../components/useApi";
import { addDays, fmtTime, todayUtc } from "../dates";
import { useSession } from "../session";
import type { Envelope } from "./Lists";

/** A configuration value in short words: nulls and empties left out, {a: 1} as "a 1". */
export function words(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (Array.isArray(v)) return v.map(words).filter(Boolean).join(", ");
  if (typeof v === "object") {
    return Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== null && x !== undefined && x !== "" && !(Array.isArray(x) && !x.length) &&
        !(typeof x === "object" && !Array.isArray(x) && !Object.keys(x as object).length))
      .map(([k, x]) => (typeof x === "object" ? `${k} (${words(x)})` : `${k} ${words(x)}`))
      .join(", ");
  }
  return String(v);
}

type Stat = Record<string, any> & { trigger: string };

export function TriggersPage() {
  const { tenant } = useSession();
  const [since, setSince] = useState(addDays(todayUtc(), -6));
  const [until, setUntil] = useState(todayUtc());
  const triggers = useApi<Envelope[]>(tenant ? `/v1/tenants/${tenant}/triggers` : null);
  const segments = useApi<Envelope[]>(tenant ? `/v1/tenants/${tenant}/segments` : null);
  const stats = useApi<{ triggers: Stat[]; segments: Record<string, any>[] }>(
    tenant ? `/v1/tenants/${tenant}/triggers-stats` + qs({ since, until }) : null);
  const byTrigger = Object.fromEntries((stats.data?.triggers ?? []).map((t) => [t.trigger, t]));
  const bySegment = Object.fromEntries((stats.data?.segments ?? []).map((s) => [s.segment, s]));

  return (
    <Stack>
      <Group justify="space-between" align="end">
        <Title order={2}>Triggers</Title>
        <Group>
          <TextInput type="date" label="From" size="xs" value={since} onChange={(e) => setSince(e.currentTarget.value)} />
          <TextInput type="date" label="To" size="xs" value={until} onChange={(e) => setUntil(e.currentTarget.value)} />
        </Group>
      </Group>
      <Gate loading={triggers.loading && !triggers.data} error={triggers.error ?? stats.error} what="triggers" empty={triggers.data?.length === 0 && "No triggers."}>
        <SimpleGrid cols={{ base: 1, md: 2 }}>
          {(triggers.data ?? []).map((t) => (
            <Card withBorder key={t.id} data-testid={`trigger-${t.id}`}>
              <Group justify="space-between"><Text fw={600}>{t.id}</Text><Badge variant="light">v{t.version}</Badge></Group>
              <Text size="sm" c="dimmed">{t.data.description}</Text>
              <Text size="sm" mt="xs"><b>When</b> {words(t.data.when)}</Text>
              {(t.data.conditions ?? []).map((c: unknown, i: number) => <Text size="sm" key={i}><b>if</b> {words(c)}</Text>)}
              <Text size="sm"><b>then</b> {words(t.data.action)}</Text>
              {t.data.goal && <Text size="sm"><b>until</b> {words(t.data.goal)}</Text>}
              <Text size="sm"><b>cooldown</b> {t.data.cooldown ?? "none"}</Text>
              <TriggerStats stat={byTrigger[t.id]} />
            </Card>
          ))}
        </SimpleGrid>
      </Gate>
      <Title order={3}>Segments</Title>
      <Gate loading={segments.loading && !segments.data} error={segments.error} what="segments" empty={segments.data?.length === 0 && "No segments."}>
        <SimpleGrid cols={{ base: 1, md: 2 }}>
          {(segments.data ?? []).map((s) => (
            <Card withBorder key={s.id} data-testid={`segment-${s.id}`}>
              <Text fw={600}>{s.id}</Text>
              <Text size="sm" c="dimmed">{s.data.description}</Text>
              <Text size="sm" mt="xs">{words({ ...s.data, description: undefined })}</Text>
              {bySegment[s.id] && <Text size="sm" mt="xs">entered {bySegment[s.id].entered ?? 0} · left {bySegment[s.id].left ?? 0}</Text>}
            </Card>
          ))}
        </SimpleGrid>
      </Gate>
    </Stack>
  );
}

function TriggerStats({ stat }: { stat?: Stat }) {
  if (!stat) return null;
  const numbers = Object.entries(stat).filter(([k, v]) => typeof v === "number" && k !== "trigger");
  const held = stat.suppressed && typeof stat.suppressed === "object" ? Object.entries(stat.suppressed as Record<string, number>) : [];
  return (
    <Table mt="sm" fz="sm" data-testid="trigger-stats">
      <Table.Tbody>
        {numbers.map(([k, v]) => (
          <Table.Tr key={k} data-stat={k}><Table.Td>{k.replace(/_/g, " ")}</Table.Td><Table.Td>{(v as number).toLocaleString()}</Table.Td></Table.Tr>
        ))}
        {held.map(([reason, n]) => (
          <Table.Tr key={reason} data-stat={`suppressed.${reason}`}><Table.Td>held back: {reason.replace(/_/g, " ")}</Table.Td><Table.Td>{n.toLocaleString()}</Table.Td></Table.Tr>
        ))}
        {stat.last_fired_at && <Table.Tr><Table.Td>last fired</Table.Td><Table.Td>{fmtTime(stat.last_fired_at)}</Table.Td></Table.Tr>}
      </Table.Tbody>
    </Table>
  );
}
