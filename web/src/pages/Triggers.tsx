// Triggers and segments: what each trigger reacts to, its conditions, action and cooldown.
import { Badge, Card, Code, Group, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { Gate } from "../components/States";
import { useApi } from "../components/useApi";
import { useSession } from "../session";
import type { Envelope } from "./Lists";

export function TriggersPage() {
  const { tenant } = useSession();
  const triggers = useApi<Envelope[]>(tenant ? `/v1/tenants/${tenant}/triggers` : null);
  const segments = useApi<Envelope[]>(tenant ? `/v1/tenants/${tenant}/segments` : null);
  return (
    <Stack>
      <Title order={2}>Triggers</Title>
      <Gate loading={triggers.loading && !triggers.data} error={triggers.error} what="triggers" empty={triggers.data?.length === 0 && "No triggers."}>
        <SimpleGrid cols={{ base: 1, md: 2 }}>
          {(triggers.data ?? []).map((t) => (
            <Card withBorder key={t.id} data-testid={`trigger-${t.id}`}>
              <Group justify="space-between"><Text fw={600}>{t.id}</Text><Badge variant="light">v{t.version}</Badge></Group>
              <Text size="sm" c="dimmed">{t.data.description}</Text>
              <Code block mt="xs">{JSON.stringify({ when: t.data.when, conditions: t.data.conditions, action: t.data.action, cooldown: t.data.cooldown }, null, 1)}</Code>
            </Card>
          ))}
        </SimpleGrid>
      </Gate>
      <Title order={3}>Segments</Title>
      <Gate loading={segments.loading && !segments.data} error={segments.error} what="segments" empty={segments.data?.length === 0 && "No segments."}>
        <SimpleGrid cols={{ base: 1, md: 2 }}>
          {(segments.data ?? []).map((s) => (
            <Card withBorder key={s.id}><Text fw={600}>{s.id}</Text><Code block mt="xs">{JSON.stringify(s.data, null, 1)}</Code></Card>
          ))}
        </SimpleGrid>
      </Gate>
    </Stack>
  );
}
