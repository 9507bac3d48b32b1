// The charts (Recharts through @mantine/charts) are most of the bundle: they load as a chunk of
// their own, while the page around them (its numbers and tables) shows without waiting.
import { lazy, Suspense, useEffect, type ComponentProps } from "react";
import type { BarChart as Bar, LineChart as Line, Sparkline as Spark } from "@mantine/charts";

const load = () => import("./ChartsChunk");
const LazySparkline = lazy(() => load().then((m) => ({ default: m.Sparkline })));
const LazyBarChart = lazy(() => load().then((m) => ({ default: m.BarChart })));
const LazyLineChart = lazy(() => load().then((m) => ({ default: m.LineChart })));

/** Start loading the charts now. */
export function preloadCharts(): void {
  load().catch(() => undefined);  // a failure shows where the chart renders
}

/** Start loading the charts once the page's own requests are out (`asked`): a page calls this
 * after its data hooks (effects run in order), so evaluating the chunk never delays its data. */
export function useChartsAfterData(asked: boolean): void {
  useEffect(() => {
    if (asked) preloadCharts();
  }, [asked]);
}

function Space({ h }: { h?: unknown }) {
  return <div style={{ height: typeof h === "number" ? h : 40 }} aria-hidden />;
}

export function Sparkline(props: ComponentProps<typeof Spark>) {
  return <Suspense fallback={<Space h={props.h} />}><LazySparkline {...props} /></Suspense>;
}

export function BarChart(props: ComponentProps<typeof Bar>) {
  return <Suspense fallback={<Space h={props.h} />}><LazyBarChart {...props} /></Suspense>;
}

export function LineChart(props: ComponentProps<typeof Line>) {
  return <Suspense fallback={<Space h={props.h} />}><LazyLineChart {...props} /></Suspense>;
}
