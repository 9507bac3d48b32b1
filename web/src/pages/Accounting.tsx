// Accounting: each brand's click revenue and its split (brand and platform share), reconciled
// with what its partner backend reports, with the backend's status.
import { Badge, Group, Stack, Table, Text, TextInput, Title, Tooltip } from "@mantine/core";
import { useState } from "react";
import { qs } from "../api";
import { Gate } from "../components/States";
import { useApi } from "../components/useApi";
import { addDays, fmtValue, todayUtc } from "../dates";
import { useSession } from "../session";
import { SourceRevenue } from "./SourceRevenue";

type Figures = { clicks: number; revenue_cents: number };
type Brand = { tenant: string; name: string; status: string; reason: string | null; detail: string;
  ours: Figures & { brand_share: number | null; brand_cents: number | null; platform_cents: number | null };
  theirs: Figures | null; difference: { revenue_cents: number; relative: number | null } | null };
type Accounting = { from: string; to: string; brands: Brand[]; earned: Figures & { brand_cents: number; platform_cents: number }; complete: boolean };

const STATUS_COLOR: Record<string, string> = { matched: "teal", within_tolerance: "teal", mismatch: "red", stale: "orange", unavailable: "red", not_configured: "gray" };

function signed(cents: number): string {
  return (cents >= 0 ? "+" : "−") + fmtValue(Math.abs(cents), "cents");
}

export function AccountingPage() {
  const { tenant } = useSession();
  const [from, setFrom] = useState(addDays(todayUtc(), -6));
  const [to, setTo] = useState(todayUtc());
  const acc = useApi<Accounting>("/v1/accounting/revenue" + qs({ from, to }));
  const $ = (c: number | null | undefined) => fmtValue(c ?? null, "cents");
  return (
    <Stack>
      <Title order={2}>Accounting</Title>
      <Group>
        <TextInput type="date" label="From" value={from} onChange={(e) => setFrom(e.currentTarget.value)} />
        <TextInput type="date" label="To" value={to} onChange={(e) => setTo(e.currentTarget.value)} />
      </Group>
      <Gate loading={acc.loading && !acc.data} error={acc.error} what="accounting" empty={acc.data?.brands.length === 0 && "No brands to account for."}>
        {acc.data && (
          <>
            <Text size="sm">Earned over the period: <b>{$(acc.data.earned.revenue_cents)}</b> from {acc.data.earned.clicks.toLocaleString()} clicks by people ·
              brands {$(acc.data.earned.brand_cents)} · platform {$(acc.data.earned.platform_cents)}</Text>
            <Table.ScrollContainer minWidth={720}>
              <Table striped data-testid="accounting-table">
                <Table.Thead><Table.Tr><Table.Th>Brand</Table.Th><Table.Th>Clicks</Table.Th><Table.Th>Revenue</Table.Th><Table.Th>Brand share</Table.Th>
                  <Table.Th>Platform share</Table.Th><Table.Th>Their report</Table.Th><Table.Th>Backend</Table.Th></Table.Tr></Table.Thead>
                <Table.Tbody>
                  {acc.data.brands.map((b) => (
                    <Table.Tr key={b.tenant}>
                      <Table.Td>{b.name}</Table.Td><Table.Td>{b.ours.clicks.toLocaleString()}</Table.Td><Table.Td>{$(b.ours.revenue_cents)}</Table.Td>
                      <Table.Td>{$(b.ours.brand_cents)} {b.ours.brand_share !== null && <Text span size="xs" c="dimmed">({(b.ours.brand_share * 100).toFixed(0)}%)</Text>}</Table.Td>
                      <Table.Td>{$(b.ours.platform_cents)}</Table.Td>
                      <Table.Td>{b.theirs ? `${$(b.theirs.revenue_cents)} (${signed(b.difference?.revenue_cents ?? 0)})` : "–"}</Table.Td>
                      <Table.Td><Tooltip label={b.detail} multiline w={280}><Badge color={STATUS_COLOR[b.status] ?? "gray"} variant="light">{b.status.replace("_", " ")}</Badge></Tooltip></Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
          </>
        )}
      </Gate>
      {tenant && <SourceRevenue tenant={tenant} since={from} until={to} />}
    </Stack>
  );
}
