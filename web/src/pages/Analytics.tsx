// Analytics: a date range, a granularity, metrics from the catalogue and up to three breakdown
// dimensions; a multi-series chart, a sortable table and a CSV of it. The URL holds the whole
// view, so a link shows the same thing to whoever may see it.
import { Badge, Button, Group, MultiSelect, SegmentedControl, Select, Stack, Table, Text, TextInput, Title, UnstyledButton } from "@mantine/core";
import { BarChart, LineChart, useChartsAfterData } from "../components/Charts";
import { useMemo } from "react";
import { useSearchParams } from "react-router-dom";
import { qs } from "../api";
import { Gate } from "../components/States";
import { useApi } from "../components/useApi";
import { addDays, fmtValue, todayUtc } from "../dates";
import { catalogueNarrows, useSession } from "../session";

type Metric = { name: string; description: string; unit: string; dimensions: string[] };
type Catalogue = { metrics: Metric[]; dimensions: { name: string; description: string }[]; granularities: string[] };
type SeriesOut = { buckets: string[]; series: { metric: string; unit: string; groups: { group: Record<string, string>; total: number | null; points: { t: string; value: number | null }[] }[] }[]; truncated: boolean };
type BreakdownOut = { rows: { group: Record<string, string>; values: Record<string, number | null> }[]; totals: Record<string, number | null>; truncated: boolean; groups: number };

const COLORS = ["blue.6", "teal.6", "orange.6", "grape.6", "red.6", "cyan.6", "lime.7", "pink.6", "indigo.6", "yellow.7"];
const BREAKDOWNS = ["partner", "list", "channel", "provider", "keyword", "creative", "template", "variant", "job_source", "kind", "category", "country", "state", "tenant"];

function kindOf(name: string): string {
  if (name.includes("_machine")) return "Machines";
  if (name.includes("_human")) return "People";
  return "Other";
}

export function AnalyticsPage() {
  const { tenant, me, tenants } = useSession();
  const [params, setParams] = useSearchParams();
  const today = todayUtc();
  const view = {
    since: params.get("since") ?? addDays(today, -13),
    until: params.get("until") ?? today,
    granularity: params.get("granularity") ?? "day",
    metrics: (params.get("metrics") ?? "leads_submitted,sends_delivered,opens_human,opens_machine").split(",").filter(Boolean),
    group_by: (params.get("group_by") ?? "").split(",").filter(Boolean),
    chart: params.get("chart") ?? "line",
    sort: params.get("sort") ?? "",
    tenant: params.get("tenant") ?? tenant ?? "",
  };
  const set = (patch: Partial<Record<keyof typeof view, string>>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(patch)) next.set(k, v);
    setParams(next, { replace: false });
  };

  const cat = useApi<Catalogue>("/v1/analytics/metrics");
  const known = new Set((cat.data?.metrics ?? []).map((m) => m.name));
  const metrics = view.metrics.filter((m) => !cat.data || known.has(m));
  // any dimension named in the URL (e.g. ?partner=indeed-xml) filters the view; the API decides whether it may
  const filters = Object.fromEntries(BREAKDOWNS.filter((d) => d !== "tenant" && params.get(d)).map((d) => [d, params.get(d)!]));
  const base = { metrics: metrics.join(","), since: view.since, until: view.until, group_by: view.group_by.join(",") || undefined, tenant: view.tenant || undefined, ...filters };
  // a partner's view waits for the catalogue (its brand decides its metrics); anyone else asks at once
  const ready = (cat.data || !catalogueNarrows(me, view.tenant || tenant)) && metrics.length > 0;
  const series = useApi<SeriesOut>(ready ? "/v1/analytics/series" + qs({ ...base, granularity: view.granularity, limit: 10 }) : null);
  const table = useApi<BreakdownOut>(ready ? "/v1/analytics/breakdown" + qs({ ...base, sort: view.sort || undefined, limit: 200 }) : null);
  useChartsAfterData(ready);
  const units = Object.fromEntries((cat.data?.metrics ?? []).map((m) => [m.name, m.unit]));

  const chart = useMemo(() => chartData(series.data, view.granularity), [series.data, view.granularity]);
  const options = useMemo(() => {
    const groups: Record<string, { value: string; label: string }[]> = {};
    for (const m of cat.data?.metrics ?? []) {
      if (m.name.startsWith("_")) continue;
      (groups[kindOf(m.name)] ??= []).push({ value: m.name, label: m.name });
    }
    return Object.entries(groups).map(([group, items]) => ({ group, items }));
  }, [cat.data]);

  return (
    <Stack>
      <Title order={2}>Analytics</Title>
      <Group align="end" wrap="wrap">
        <TextInput type="date" label="From" value={view.since} onChange={(e) => set({ since: e.currentTarget.value })} data-testid="since" />
        <TextInput type="date" label="To" value={view.until} onChange={(e) => set({ until: e.currentTarget.value })} data-testid="until" />
        <Select label="Granularity" w={110} data={cat.data?.granularities ?? ["hour", "day", "week"]} value={view.granularity}
          onChange={(v) => v && set({ granularity: v })} allowDeselect={false} />
        {me?.platform_admin && (
          <Select label="Brand" w={150} clearable placeholder="All brands" data={tenants}
            value={view.tenant || null} onChange={(v) => set({ tenant: v ?? "" })} />
        )}
        <SegmentedControl value={view.chart} onChange={(v) => set({ chart: v })} data={[{ value: "line", label: "Lines" }, { value: "bar", label: "Bars" }]} />
      </Group>
      <Group align="end" grow wrap="wrap">
        <MultiSelect label="Metrics" searchable data={options} value={metrics} onChange={(v) => set({ metrics: v.join(",") })}
          data-testid="metric-picker" maxValues={8} />
        <MultiSelect label="Break down by" data={BREAKDOWNS.filter((d) => (cat.data?.dimensions ?? []).some((x) => x.name === d))}
          value={view.group_by} onChange={(v) => set({ group_by: v.join(","), sort: "" })} maxValues={3} data-testid="group-by" />
      </Group>
      {Object.keys(filters).length > 0 && (
        <Group gap="xs">
          <Text size="sm">Filtered:</Text>
          {Object.entries(filters).map(([k, v]) => <Badge key={k} variant="outline">{k} = {v}</Badge>)}
        </Group>
      )}
      <Gate loading={cat.loading || (series.loading && !series.data)} error={cat.error ?? series.error} what="the chart"
        empty={!!cat.data && metrics.length === 0 && "Pick at least one metric."}>
        {chart.rows.length > 0 && (
          <div data-testid="chart" data-chart={JSON.stringify(chart)}>
          {view.chart === "bar" ? (
            <BarChart h={320} data={chart.rows} dataKey="t" series={chart.series.map((name, i) => ({ name, color: COLORS[i % COLORS.length] }))} withLegend />
          ) : (
            <LineChart h={320} data={chart.rows} dataKey="t" curveType="linear" withLegend
              series={chart.series.map((name, i) => ({ name, color: name.includes("_machine") ? "gray.6" : COLORS[i % COLORS.length] }))} />
          )}
          </div>
        )}
        {series.data?.truncated && <Text size="xs" c="dimmed">Only the first 10 groups are charted; the table has them all.</Text>}
      </Gate>
      <Gate loading={table.loading && !table.data} error={table.error} what="the table"
        empty={!!table.data && table.data.rows.length === 0 && "Nothing in this range."}>
        {table.data && (
          <Stack gap="xs">
            <Group justify="space-between">
              <Text size="sm" c="dimmed">{table.data.groups} row(s){table.data.truncated ? ", first 200 shown" : ""}</Text>
              <Button size="xs" variant="light" onClick={() => downloadCsv(table.data!, view.group_by, metrics, view)} data-testid="csv">
                Export CSV
              </Button>
            </Group>
            <Table.ScrollContainer minWidth={500}>
              <Table striped highlightOnHover data-testid="breakdown-table">
                <Table.Thead>
                  <Table.Tr>
                    {[...view.group_by, ...metrics].map((c) => (
                      <Table.Th key={c}>
                        <UnstyledButton onClick={() => set({ sort: view.sort === "-" + c ? c : "-" + c })}>
                          {c} {view.sort === c ? "▲" : view.sort === "-" + c ? "▼" : ""}
                          {kindOf(c) !== "Other" && <Badge size="xs" ml={4} variant="light" color={kindOf(c) === "People" ? "teal" : "gray"}>{kindOf(c).toLowerCase()}</Badge>}
                        </UnstyledButton>
                      </Table.Th>
                    ))}
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {table.data.rows.map((r, i) => (
                    <Table.Tr key={i}>
                      {view.group_by.map((g) => <Table.Td key={g}>{r.group[g]}</Table.Td>)}
                      {metrics.map((m) => <Table.Td key={m} data-metric={m}>{fmtValue(r.values[m], units[m] ?? "count")}</Table.Td>)}
                    </Table.Tr>
                  ))}
                  <Table.Tr fw={700} data-testid="totals">
                    {view.group_by.map((g, i) => <Table.Td key={g}>{i === 0 ? "Total" : ""}</Table.Td>)}
                    {metrics.map((m) => <Table.Td key={m} data-metric={m}>{fmtValue(table.data!.totals[m], units[m] ?? "count")}</Table.Td>)}
                  </Table.Tr>
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
          </Stack>
        )}
      </Gate>
    </Stack>
  );
}

function label(metric: string, group: Record<string, string>): string {
  const g = Object.values(group).join(" / ");
  return g ? `${metric} · ${g}` : metric;
}

function chartData(s: SeriesOut | null, granularity: string): { rows: Record<string, string | number>[]; series: string[] } {
  if (!s) return { rows: [], series: [] };
  const rows: Record<string, string | number>[] = s.buckets.map((t) => ({ t: granularity === "hour" ? t.slice(5, 16).replace("T", " ") : t.slice(0, 10) }));
  const names: string[] = [];
  for (const m of s.series) {
    for (const g of m.groups) {
      const name = label(m.metric, g.group);
      names.push(name);
      g.points.forEach((p, i) => {
        if (rows[i]) rows[i][name] = m.unit === "cents" ? (p.value ?? 0) / 100 : p.value ?? 0;
      });
    }
  }
  return { rows, series: names };
}

function downloadCsv(b: BreakdownOut, groupBy: string[], metrics: string[], view: { since: string; until: string }) {
  const esc = (v: unknown) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [[...groupBy, ...metrics].map(esc).join(",")];
  for (const r of b.rows) lines.push([...groupBy.map((g) => r.group[g]), ...metrics.map((m) => r.values[m])].map(esc).join(","));
  const blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `leadstream-${view.since}-${view.until}.csv`;
  a.click();
  URL.revokeObjectURL(a.href);
}
