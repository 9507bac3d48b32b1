// Fleet: per agent, the consumer-group lag, desired and running workers and the supervisor's
// last decisions with their reasons, refreshed every two seconds; platform admins pause and resume.
import { Badge, Button, Card, Group, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { useState } from "react";
import { ApiProblem, request } from "../api";
import { Gate, Problem } from "../components/States";
import { useApi } from "../components/useApi";
import { fmtTime } from "../dates";

type Change = { at: string; direction: string; from: number; to: number; reason: string; lag: number };
type Worker = { name: string; pid: number | null; state: string; ready: boolean; restarts: number };
type Agent = { agent: string; lag: number | null; desired: number | null; running: number; paused: boolean; stalled: boolean;
  changes: Change[]; workers: Worker[]; error: string | null; limits: { min_workers: number; max_workers: number; lag_per_worker: number } };

export function FleetPage() {
  const fleet = useApi<{ agents: Agent[]; at: string }>("/v1/fleet", 2000);
  const [error, setError] = useState<ApiProblem | null>(null);

  async function toggle(a: Agent) {
    try {
      await request("POST", `/v1/fleet/agents/${a.agent}/${a.paused ? "resume" : "pause"}`);
      setError(null);
      fleet.reload();
    } catch (e) {
      setError(e as ApiProblem);
    }
  }

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Fleet</Title>
        {fleet.data && <Text size="xs" c="dimmed" data-testid="fleet-at">live · {fmtTime(fleet.data.at)}</Text>}
      </Group>
      <Problem error={error} title="Not done" />
      <Gate loading={fleet.loading && !fleet.data} error={fleet.error} what="the fleet" empty={fleet.data?.agents.length === 0 && "No agents are supervised."}>
        <SimpleGrid cols={{ base: 1, sm: 2, lg: 3 }}>
          {(fleet.data?.agents ?? []).map((a) => (
            <Card withBorder key={a.agent} data-testid={`agent-${a.agent}`}>
              <Group justify="space-between">
                <Text fw={600}>{a.agent}</Text>
                <Group gap={4}>
                  {a.stalled && <Badge color="red">stalled</Badge>}
                  {a.paused ? <Badge color="orange">paused</Badge> : <Badge color="teal" variant="light">active</Badge>}
                </Group>
              </Group>
              <Group gap="lg" mt="xs">
                <div><Text size="xs" c="dimmed">lag</Text><Text fw={700} data-testid="lag">{a.lag === null ? "–" : a.lag.toLocaleString()}</Text></div>
                <div><Text size="xs" c="dimmed">desired</Text><Text fw={700} data-testid="desired">{a.desired ?? "–"}</Text></div>
                <div><Text size="xs" c="dimmed">running</Text><Text fw={700} data-testid="running">{a.running}</Text></div>
              </Group>
              <Text size="xs" c="dimmed">{a.limits.min_workers}–{a.limits.max_workers} workers, one per {a.limits.lag_per_worker.toLocaleString()} of lag ·{" "}
                {a.workers.map((w) => `${w.name.replace("worker-", "")}${w.ready ? "" : " (starting)"}${w.restarts ? ` ↻${w.restarts}` : ""}`).join(", ") || "no workers"}</Text>
              {a.error && <Text size="xs" c="red">{a.error}</Text>}
              {a.changes.length > 0 && (
                <Table mt="xs" fz="xs">
                  <Table.Tbody>
                    {a.changes.slice(0, 3).map((c, i) => (
                      <Table.Tr key={i} data-testid="change"><Table.Td>{fmtTime(c.at).slice(11)}</Table.Td><Table.Td>{c.from} → {c.to}</Table.Td><Table.Td>{c.reason}</Table.Td></Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              )}
              <Button size="xs" mt="sm" variant="light" color={a.paused ? "teal" : "orange"} onClick={() => toggle(a)} data-testid="pause-toggle">
                {a.paused ? "Resume" : "Pause"}
              </Button>
            </Card>
          ))}
        </SimpleGrid>
      </Gate>
    </Stack>
  );
}
