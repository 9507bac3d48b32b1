// Overview: the brand's (or, for a platform admin, every brand's) headline numbers for the
// period against the period before it, each with a sparkline.
import { Badge, Card, Group, SegmentedControl, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { Sparkline, useChartsAfterData } from "../components/Charts";
import { useState } from "react";
import { qs } from "../api";
import { Gate } from "../components/States";
import { useApi } from "../components/useApi";
import { addDays, fmtValue, todayUtc } from "../dates";
import { catalogueNarrows, useSession } from "../session";

const HEADLINE = [
  ["leads_submitted", "Leads"],
  ["acceptance_rate", "Accepted rate"],
  ["sends_dispatched", "Sent"],
  ["sends_delivered", "Delivered"],
  ["opens_human", "Opens (people)"],
  ["clicks_human", "Clicks (people)"],
  ["unsubscribes", "Unsubscribes"],
  ["revenue_cents", "Revenue"],
] as const;

const PERIODS: Record<string, { days: number; granularity: string; label: string }> = {
  today: { days: 1, granularity: "hour", label: "Today vs yesterday" },
  "7d": { days: 7, granularity: "day", label: "7 days vs the 7 before" },
  "30d": { days: 30, granularity: "day", label: "30 days vs the 30 before" },
};

type Series = { metric: string; unit: string; groups: { total: number | null; points: { t: string; value: number | null }[] }[] };

export function OverviewPage() {
  const { me, tenant } = useSession();
  const [period, setPeriod] = useState("today");
  const [scope, setScope] = useState<"brand" | "all">("brand");
  const catalogue = useApi<{ metrics: { name: string; unit: string }[] }>("/v1/analytics/metrics");
  const p = PERIODS[period];
  const today = todayUtc();
  const since = addDays(today, -(2 * p.days - 1));
  // everyone but a partner may see every headline metric: ask for them at once, not after the catalogue
  const narrows = catalogueNarrows(me, tenant);
  const allowed = new Set((catalogue.data?.metrics ?? []).map((m) => m.name));
  const metrics = HEADLINE.filter(([m]) => !narrows || allowed.has(m)).map(([m]) => m);
  const path = (catalogue.data || !narrows) && metrics.length
    ? "/v1/analytics/series" + qs({ metrics: metrics.join(","), since, until: today, granularity: p.granularity,
        tenant: scope === "all" && me?.platform_admin ? undefined : tenant ?? undefined })
    : null;
  const series = useApi<{ series: Series[]; buckets: string[] }>(path);
  useChartsAfterData(!!path);
  const boundary = addDays(today, -(p.days - 1));

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Overview</Title>
        <Group>
          {me?.platform_admin && (
            <SegmentedControl size="xs" value={scope} onChange={(v) => setScope(v as "brand" | "all")}
              data={[{ value: "brand", label: tenant ?? "brand" }, { value: "all", label: "All brands" }]} />
          )}
          <SegmentedControl size="xs" value={period} onChange={setPeriod} data-testid="period"
            data={Object.entries(PERIODS).map(([value, x]) => ({ value, label: x.label }))} />
        </Group>
      </Group>
      <Gate loading={catalogue.loading || (series.loading && !series.data)} error={catalogue.error ?? series.error}
        what="the overview" empty={!series.loading && metrics.length === 0 && "No metrics are shared with you."}>
        <SimpleGrid cols={{ base: 1, xs: 2, md: 4 }}>
          {(series.data?.series ?? []).map((s) => {
            const points = s.groups[0]?.points ?? [];
            const now = points.filter((x) => x.t.slice(0, 10) >= boundary);
            const before = points.filter((x) => x.t.slice(0, 10) < boundary);
            const cur = summed(now, s, series.data!.series);
            const prev = summed(before, s, series.data!.series);
            const label = HEADLINE.find(([m]) => m === s.metric)?.[1] ?? s.metric;
            return (
              <Card withBorder key={s.metric} data-testid={`kpi-${s.metric}`}>
                <Text size="sm" c="dimmed">{label}</Text>
                <Group justify="space-between" align="end">
                  <Text size="xl" fw={700} data-testid="kpi-value">{fmtValue(cur, s.unit)}</Text>
                  <Delta cur={cur} prev={prev} unit={s.unit} />
                </Group>
                <Text size="xs" c="dimmed">before: {fmtValue(prev, s.unit)}</Text>
                <Sparkline h={40} data={points.map((x) => x.value ?? 0)} curveType="linear" fillOpacity={0.3} />
              </Card>
            );
          })}
        </SimpleGrid>
      </Gate>
    </Stack>
  );
}

// A rate over a period is recomputed from its inputs' sums; a count is summed.
function summed(points: { value: number | null }[], s: Series, all: Series[]): number | null {
  if (s.unit !== "ratio") return points.reduce((a, x) => a + (x.value ?? 0), 0);
  if (s.metric === "acceptance_rate") {
    const sub = all.find((x) => x.metric === "leads_submitted");
    if (!sub) return null;
    const n = new Map(sub.groups[0]?.points.map((x) => [x.t, x.value ?? 0]));
    let num = 0, den = 0;
    for (const x of points as { t: string; value: number | null }[]) {
      const d = n.get(x.t) ?? 0;
      den += d;
      num += (x.value ?? 0) * d;
    }
    return den ? num / den : null;
  }
  return null;
}

function Delta({ cur, prev, unit }: { cur: number | null; prev: number | null; unit: string }) {
  if (cur === null || prev === null) return null;
  if (unit === "ratio") {
    const pts = (cur - prev) * 100;
    return <Badge color={pts >= 0 ? "teal" : "red"} variant="light">{pts >= 0 ? "+" : ""}{pts.toFixed(1)} pts</Badge>;
  }
  if (prev === 0) return <Badge variant="light" color="gray">{cur === 0 ? "=" : "new"}</Badge>;
  const pct = ((cur - prev) / prev) * 100;
  return <Badge color={pct >= 0 ? "teal" : "red"} variant="light">{pct >= 0 ? "+" : ""}{pct.toFixed(0)}%</Badge>;
}
