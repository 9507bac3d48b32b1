// A person's rights on the Leads page (brand admins): everything held about them as one JSON
// download (POST /v1/subjects/export), and erasure with its reason (POST /v1/subjects/erase).
import { Alert, Button, Card, Group, Modal, Stack, Text, TextInput } from "@mantine/core";
import { useState } from "react";
import { ApiProblem, request } from "../api";
import { Problem } from "../components/States";

type Person = Record<string, string>; // {email} or {phone}
type LeadErased = { lead_id: string; channel: string; anonymous_id: string; held: boolean; data_key_destroyed: boolean;
  redis_traces_removed: number; clickhouse_rows_anonymised: number };
type Erasure = { erased_at: string; erased_by: string; reason: string; leads: LeadErased[] };

function download(name: string, doc: unknown) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function SubjectRights({ person, leadId, onErased }: { person: Person; leadId: string; onErased: (e: Erasure) => void }) {
  const [busy, setBusy] = useState<"export" | "erase" | null>(null);
  const [error, setError] = useState<ApiProblem | null>(null);
  const [asking, setAsking] = useState(false);
  const [reason, setReason] = useState("");

  async function exportAll() {
    setBusy("export");
    setError(null);
    try {
      const { data } = await request("POST", "/v1/subjects/export", person);
      download(`subject-${leadId}.json`, data);
    } catch (e) {
      setError(e as ApiProblem);
    } finally {
      setBusy(null);
    }
  }

  async function erase() {
    setBusy("erase");
    setError(null);
    try {
      const { data } = await request<Erasure>("POST", "/v1/subjects/erase", { ...person, reason: reason.trim() });
      setAsking(false);
      onErased(data);
    } catch (e) {
      setError(e as ApiProblem);
    } finally {
      setBusy(null);
    }
  }

  return (
    <Card withBorder data-testid="subject-rights">
      <Text size="sm" c="dimmed">Subject rights</Text>
      <Group mt="xs">
        <Button variant="light" onClick={exportAll} loading={busy === "export"} data-testid="export-subject">
          Download everything (JSON)
        </Button>
        <Button variant="outline" color="red" onClick={() => setAsking(true)} data-testid="erase-subject">
          Erase this person…
        </Button>
      </Group>
      {!asking && <Problem error={error} title="Could not do it" />}
      <Modal opened={asking} onClose={() => setAsking(false)} title="Erase this person" centered>
        <Stack>
          <Text size="sm">
            Their data key is destroyed, every trace in Redis removed, their analytics rows kept only under an anonymous id, and
            they are refused from then on by every intake. This cannot be undone.
          </Text>
          <TextInput label="Why (kept with the erasure's record)" placeholder="their request of 2026-12-01, ticket 4411" value={reason}
            onChange={(e) => setReason(e.currentTarget.value)} error={error?.forField("reason")} data-testid="erase-reason" />
          <Problem error={error && !error.forField("reason") ? error : null} title="Could not erase" />
          <Group justify="end">
            <Button variant="default" onClick={() => setAsking(false)}>Cancel</Button>
            <Button color="red" onClick={erase} loading={busy === "erase"} disabled={reason.trim().length < 3}
              data-testid="erase-confirm">Erase</Button>
          </Group>
        </Stack>
      </Modal>
    </Card>
  );
}

export function Erased({ erasure }: { erasure: Erasure }) {
  return (
    <Alert color="gray" title="Erased" data-testid="erased">
      <Text size="sm">By {erasure.erased_by} at {erasure.erased_at}: “{erasure.reason}”</Text>
      {erasure.leads.map((l) => (
        <Text size="sm" key={l.lead_id} data-testid="erased-lead">
          {l.channel} lead {l.lead_id}: {l.held ? "" : "nothing was held; "}data key {l.data_key_destroyed ? "destroyed" : "none held"},
          {" "}{l.redis_traces_removed} trace(s) removed from Redis, {l.clickhouse_rows_anonymised} analytics row(s) now under {l.anonymous_id}
        </Text>
      ))}
    </Alert>
  );
}
