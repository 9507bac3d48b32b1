// Day arithmetic in UTC, as the analytics API counts days.
export function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

export function addDays(day: string, n: number): string {
  const d = new Date(day + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + n);
  return isoDay(d);
}

export function todayUtc(): string {
  return isoDay(new Date());
}

export function fmtTime(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined || iso === "") return "";
  const d = typeof iso === "number" ? new Date(iso) : new Date(iso.endsWith("Z") || iso.includes("+") ? iso : iso + "Z");
  return isNaN(d.getTime()) ? String(iso) : d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

/** A metric's value for people: counts grouped, cents as dollars, ratios as percent. */
export function fmtValue(v: number | null | undefined, unit: string): string {
  if (v === null || v === undefined) return "–";
  if (unit === "cents") return "$" + (v / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  if (unit === "ratio") return (v * 100).toFixed(1) + "%";
  return v.toLocaleString("en-US");
}
