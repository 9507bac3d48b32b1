// Revenue and its split per lead source (partner), from the analytics API.
import { Stack, Table, Title } from "@mantine/core";
import { qs } from "../api";
import { Gate } from "../components/States";
import { useApi } from "../components/useApi";
import { fmtValue } from "../dates";

type Row = { group: Record<string, string>; values: Record<string, number | null> };
const METRICS = ["clicks_human", "revenue_cents", "brand_share_cents", "platform_share_cents"];

export function SourceRevenue({ tenant, since, until }: { tenant: string; since: string; until: string }) {
  const b = useApi<{ rows: Row[] }>("/v1/analytics/breakdown" + qs({ metrics: METRICS.join(","), since, until, group_by: "partner", tenant }));
  return (
    <Stack gap="xs">
      <Title order={4}>By source ({tenant})</Title>
      <Gate loading={b.loading && !b.data} error={b.error} what="revenue by source" empty={b.data?.rows.length === 0 && "No revenue in this period."}>
        <Table striped data-testid="source-revenue">
          <Table.Thead><Table.Tr><Table.Th>Source</Table.Th><Table.Th>Clicks</Table.Th><Table.Th>Revenue</Table.Th><Table.Th>Brand</Table.Th><Table.Th>Platform</Table.Th></Table.Tr></Table.Thead>
          <Table.Tbody>
            {(b.data?.rows ?? []).map((r) => (
              <Table.Tr key={r.group.partner}>
                <Table.Td>{r.group.partner || "(none)"}</Table.Td>
                {METRICS.map((m) => <Table.Td key={m}>{fmtValue(r.values[m], m === "clicks_human" ? "count" : "cents")}</Table.Td>)}
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Gate>
    </Stack>
  );
}
