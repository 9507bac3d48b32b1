// Experiments: what each tests (on which list or trigger, its variants and holdout) and its
// results as the API computes them now: per arm, people-only rates, the sequential p-value, the
// sample-ratio check and the decision. A brand admin may record a look (it is kept on the
// experiment, with the numbers behind it).
import { Alert, Badge, Button, Card, Group, Stack, Table, Text, Title } from "@mantine/core";
import { useState } from "react";
import { ApiProblem, request } from "../api";
import { Gate, Problem } from "../components/States";
import { useApi } from "../components/useApi";
import { fmtTime } from "../dates";
import { may, useSession } from "../session";
import type { Envelope } from "./Lists";
import { words } from "./Triggers";

type Arm = {
  variant: string; leads: number; sent: number; counts: Record<string, number>;
  rates: Record<string, number | null>; always_valid_p: number | null; relative_lift: number | null;
};
type Results = {
  experiment: string; metric: string; control: string; promoted: string | null; arms: Arm[]; winner: string | null; reason: string;
  chi_squared_p: number; srm_p: number; srm_flagged: boolean;
  recorded: { looks: { at_ms: number }[]; decision: { winner: string | null; at_ms: number } | null };
};

const RATES = ["open", "click", "click_to_open", "unsubscribe", "conversion"];
const pct = (v: number | null | undefined) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)} %`);

export function ExperimentsPage() {
  const { tenant } = useSession();
  const experiments = useApi<Envelope[]>(tenant ? `/v1/tenants/${tenant}/experiments` : null);
  // every experiment's results in one answer (one count of all their arms), asked for at once
  const results = useApi<Results[]>(tenant ? `/v1/tenants/${tenant}/experiment-results` : null);
  const byId = new Map((results.data ?? []).map((r) => [r.experiment, r]));
  return (
    <Stack>
      <Title order={2}>Experiments</Title>
      <Text size="sm" c="dimmed">
        Rates are per lead and from people only (machines' opens and clicks left out). A winner is declared only when
        the always-valid sequential p-value, corrected for the number of variants, is below the experiment's alpha.
      </Text>
      <Gate loading={experiments.loading && !experiments.data} error={experiments.error} what="experiments"
            empty={experiments.data?.length === 0 && "No experiments yet: create one through the API (POST /v1/tenants/{tenant}/experiments)."}>
        {(experiments.data ?? []).map((e) => (
          <ExperimentCard key={e.id} tenant={tenant!} e={e} counted={byId.get(e.id)}
            loading={results.loading && !results.data} error={results.error} />
        ))}
      </Gate>
    </Stack>
  );
}

type CardProps = { tenant: string; e: Envelope; counted?: Results; loading: boolean; error: ApiProblem | null };

function ExperimentCard({ tenant, e, counted, loading, error }: CardProps) {
  const { me } = useSession();
  const [looked, setLooked] = useState<Results | null>(null); // a recorded look answers the results anew
  const [looking, setLooking] = useState(false);
  const [lookError, setLookError] = useState<ApiProblem | null>(null);
  const target = e.data.list ? `list ${e.data.list}` : `trigger ${e.data.trigger}`;
  const look = async () => {
    setLooking(true);
    setLookError(null);
    try {
      setLooked((await request<Results>("POST", `/v1/tenants/${tenant}/experiments/${e.id}/looks`)).data);
    } catch (err) {
      setLookError(err instanceof ApiProblem ? err : new ApiProblem(0, "error", String(err)));
    } finally {
      setLooking(false);
    }
  };
  const r = looked ?? counted;
  return (
    <Card withBorder data-testid={`experiment-${e.id}`}>
      <Group justify="space-between">
        <Group gap="xs">
          <Text fw={600}>{e.id}</Text>
          <Badge variant="light" color={e.data.status === "running" ? "green" : "gray"}>{e.data.status}</Badge>
          {e.data.promoted && <Badge color="violet">promoted: {e.data.promoted}</Badge>}
        </Group>
        {may(me, "config.write", tenant) && (
          <Button size="xs" variant="light" loading={looking} onClick={look} data-testid="record-look">Record a look</Button>
        )}
      </Group>
      <Text size="sm" c="dimmed">{e.data.description}</Text>
      <Text size="sm" mt="xs">
        On <b>{target}</b>, decided on <b>{e.data.metric}</b> (alpha {e.data.alpha}, at least {e.data.min_sample} leads
        per arm){e.data.holdout ? `, ${Math.round(e.data.holdout * 100)} % held out` : ""}.
      </Text>
      {(e.data.variants ?? []).map((v: Record<string, unknown>, i: number) => (
        <Text size="sm" key={String(v.name)}><b>{String(v.name)}</b>{i === 0 ? " (control)" : ""} {words({ ...v, name: undefined, weight: undefined })}</Text>
      ))}
      <Problem error={lookError} title="The look was not recorded" />
      <Gate loading={loading && !r} error={error} what="the results">
        {r && (
          <>
            <Table mt="sm" fz="sm" striped data-testid="arms-table">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>variant</Table.Th><Table.Th>leads</Table.Th>
                  {RATES.map((m) => <Table.Th key={m}>{m.replace(/_/g, " ")}</Table.Th>)}
                  <Table.Th>p (always valid)</Table.Th><Table.Th>lift</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {r.arms.map((a) => (
                  <Table.Tr key={a.variant} data-arm={a.variant}>
                    <Table.Td>{a.variant}{a.variant === r.control ? " (control)" : ""}</Table.Td>
                    <Table.Td data-col="leads">{a.leads.toLocaleString()}</Table.Td>
                    {RATES.map((m) => <Table.Td key={m}>{pct(a.rates[m])}</Table.Td>)}
                    <Table.Td>{a.always_valid_p === null ? "" : a.always_valid_p.toFixed(3)}</Table.Td>
                    <Table.Td>{a.relative_lift === null ? "" : `${a.relative_lift >= 0 ? "+" : ""}${(a.relative_lift * 100).toFixed(1)} %`}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
            {r.srm_flagged && (
              <Alert color="red" mt="sm" title="Sample ratio mismatch">
                The arms' leads do not match the weights (p = {r.srm_p.toFixed(4)}): the assignment or the exposure
                records are broken, and nothing is decided until this is found.
              </Alert>
            )}
            <Text size="sm" mt="sm" data-testid="decision">
              <b>{r.winner ? `Winner: ${r.winner}` : "No winner"}</b> — {r.reason}. Sample ratio p = {r.srm_p.toFixed(2)};
              chi-squared at this one look (reference only) p = {r.chi_squared_p.toFixed(3)}.
            </Text>
            <Text size="xs" c="dimmed">
              {r.recorded.looks.length} look(s) recorded
              {r.recorded.looks.length ? `, the last at ${fmtTime(r.recorded.looks[r.recorded.looks.length - 1].at_ms)}` : ""}
              {r.recorded.decision?.winner ? `; winner declared at ${fmtTime(r.recorded.decision.at_ms)}` : ""}.
            </Text>
          </>
        )}
      </Gate>
    </Card>
  );
}
