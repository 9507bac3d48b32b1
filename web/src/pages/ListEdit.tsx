// One list as a form: schedule, cadence, provider chain, template and the rule engine. The
// API's refusals are shown next to their fields; a save made on an older version is refused
// and the newer version is shown, to copy from or reload.
import { Alert, Button, Card, Checkbox, Code, Group, NumberInput, Select, SimpleGrid, Stack, TagsInput, Text, Textarea, TextInput, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { useNavigate, useParams } from "react-router-dom";
import { ApiProblem, request } from "../api";
import { Gate, Problem } from "../components/States";
import { useApi } from "../components/useApi";
import { fmtTime } from "../dates";
import { may, useSession } from "../session";
import type { Envelope } from "./Lists";

const BLANK = { channel: "email", title: "", send_time: "09:00", cadence: "daily", timezone: "America/New_York", quiet_hours: null,
  jobs_per_message: 5, recommendations: 0, welcome: true, providers: [], template: "", sms_segments: 1, creatives: [],
  rules: { carriers: { include: [], exclude: [], unknown: "accept" }, intake: { partners: [], source_caps: {} }, dedupe: "inherit",
    reactivation: { on_resubmit: false, on_click: "inherit" } } };

export function ListEditPage() {
  const { id = "new" } = useParams();
  const creating = id === "new";
  const { me, tenant } = useSession();
  const navigate = useNavigate();
  const loaded = useApi<Envelope>(tenant && !creating ? `/v1/tenants/${tenant}/lists/${id}` : null);
  const templates = useApi<Envelope[]>(tenant ? `/v1/tenants/${tenant}/templates` : null);
  const partners = useApi<Envelope[]>(tenant ? `/v1/tenants/${tenant}/partners` : null);
  const [form, setForm] = useState<any>(creating ? structuredClone(BLANK) : null);
  const [newId, setNewId] = useState("");
  const [version, setVersion] = useState<number | null>(null);
  const [error, setError] = useState<ApiProblem | null>(null);
  const [newer, setNewer] = useState<Envelope | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const writer = may(me, "config.write", tenant);

  // take what was loaded unless the form already holds that version (e.g. just created here)
  useEffect(() => {
    const d = loaded.data;
    if (d && (version === null || d.version > version)) {
      setForm(structuredClone(d.data));
      setVersion(d.version);
    }
  }, [loaded.data]); // eslint-disable-line react-hooks/exhaustive-deps

  const put = (path: string, value: unknown) =>
    setForm((f: any) => {
      const next = structuredClone(f);
      const keys = path.split(".");
      let o = next;
      keys.slice(0, -1).forEach((k) => (o = o[k]));
      o[keys[keys.length - 1]] = value;
      return next;
    });
  const err = (field: string) => error?.forField(field);

  async function save() {
    setBusy(true);
    setError(null);
    setSaved(false);
    setNewer(null);
    try {
      const reply = creating
        ? await request<Envelope>("POST", `/v1/tenants/${tenant}/lists`, { id: newId, ...form })
        : await request<Envelope>("PUT", `/v1/tenants/${tenant}/lists/${id}`, form, { "If-Match": `"v${version}"` });
      setVersion(reply.data.version);
      setSaved(true);
      if (creating) navigate(`/lists/${reply.data.id}`, { replace: true });
    } catch (e) {
      const p = e as ApiProblem;
      setError(p);
      if (p.status === 412) {
        try {
          setNewer((await request<Envelope>("GET", `/v1/tenants/${tenant}/lists/${id}`)).data);
        } catch {
          /* the refusal above still says what happened */
        }
      }
    } finally {
      setBusy(false);
    }
  }

  function takeNewer() {
    if (!newer) return;
    setForm(structuredClone(newer.data));
    setVersion(newer.version);
    setNewer(null);
    setError(null);
  }

  const templateOptions = (templates.data ?? []).filter((t) => !form || t.data.channel === form.channel).map((t) => t.id);
  const partnerOptions = (partners.data ?? []).map((p) => p.id);

  return (
    <Stack maw={960}>
      <Title order={2}>{creating ? "New list" : `List ${id}`}{version !== null && <Text span c="dimmed" size="md"> · v{version}</Text>}</Title>
      <Gate loading={!creating && loaded.loading && !form} error={loaded.error} what="the list">
        {form && (
          <form onSubmit={(e) => { e.preventDefault(); save(); }} aria-label="List">
            <Stack>
              {saved && <Alert color="green" data-testid="saved">Saved as version {version}. New leads follow it from now on.</Alert>}
              {error && error.status === 412 ? (
                <Alert color="orange" title="Someone saved this list after you opened it" data-testid="stale">
                  {error.message}
                  {newer && (
                    <Stack gap="xs" mt="xs">
                      <Text size="sm">The newer version (v{newer.version}, by {newer.updated_by}, {fmtTime(newer.updated_at_ms)}):</Text>
                      <Code block data-testid="newer-version">{JSON.stringify(newer.data, null, 2)}</Code>
                      <Group><Button size="xs" onClick={takeNewer}>Load the newer version</Button></Group>
                    </Stack>
                  )}
                </Alert>
              ) : (
                error && !error.problems.length && <Problem error={error} title="Not saved" />
              )}
              {error && error.problems.length > 0 && <Alert color="red" title="Not saved" data-testid="field-errors">{error.message}: see the fields marked below.</Alert>}
              <Card withBorder>
                <Title order={4} mb="sm">Schedule and delivery</Title>
                <SimpleGrid cols={{ base: 1, sm: 2 }}>
                  {creating && <TextInput label="List id" required value={newId} onChange={(e) => setNewId(e.currentTarget.value)} error={err("id")} />}
                  <TextInput label="Title" value={form.title} onChange={(e) => put("title", e.currentTarget.value)} error={err("title")} />
                  <Select label="Channel" data={["email", "sms"]} value={form.channel} disabled={!creating} allowDeselect={false}
                    onChange={(v) => put("channel", v)} error={err("channel")} />
                  <TextInput label="Send time (local, HH:MM)" value={form.send_time} data-testid="field-send_time"
                    onChange={(e) => put("send_time", e.currentTarget.value)} error={err("send_time")} />
                  <TextInput label="Timezone (the lead's when known)" value={form.timezone} onChange={(e) => put("timezone", e.currentTarget.value)} error={err("timezone")} />
                  <TextInput label="Cadence" description="daily, weekdays, weekly:mon,thu …" value={form.cadence}
                    onChange={(e) => put("cadence", e.currentTarget.value)} error={err("cadence")} />
                  <TextInput label="Quiet hours" description="e.g. 21:00-08:00" value={form.quiet_hours ?? ""}
                    onChange={(e) => put("quiet_hours", e.currentTarget.value || null)} error={err("quiet_hours")} />
                  <NumberInput label="Jobs per message" min={1} max={20} value={form.jobs_per_message}
                    onChange={(v) => put("jobs_per_message", Number(v))} error={err("jobs_per_message")} />
                  {form.channel === "email" && (
                    <NumberInput label="Recommended jobs" description="a block of more jobs from the trained recommender (0: none)"
                      min={0} max={10} value={form.recommendations ?? 0} data-testid="field-recommendations"
                      onChange={(v) => put("recommendations", Number(v))} error={err("recommendations")} />
                  )}
                  <Select label="Template" data={templateOptions} value={form.template || null} clearable placeholder={`(the template named ${creating ? "like the list" : id})`}
                    onChange={(v) => put("template", v ?? "")} error={err("template")} />
                  <TagsInput label="Provider chain (first to last)" value={form.providers ?? []} onChange={(v) => put("providers", v)} error={err("providers")} />
                  {form.channel === "sms" && (
                    <Select label="SMS segments" data={["1", "2"]} value={String(form.sms_segments)} onChange={(v) => put("sms_segments", Number(v))} error={err("sms_segments")} />
                  )}
                  <Checkbox label="Send a welcome message" checked={form.welcome} onChange={(e) => put("welcome", e.currentTarget.checked)} mt="md" />
                </SimpleGrid>
              </Card>
              <Card withBorder>
                <Title order={4} mb="sm">Rules</Title>
                <SimpleGrid cols={{ base: 1, sm: 2 }}>
                  <TagsInput label="Carriers: only these (empty: all)" value={form.rules.carriers.include} onChange={(v) => put("rules.carriers.include", v)} error={err("rules.carriers.include") ?? err("carriers.include")} />
                  <TagsInput label="Carriers: never these" value={form.rules.carriers.exclude} onChange={(v) => put("rules.carriers.exclude", v)} error={err("rules.carriers.exclude") ?? err("carriers.exclude")} />
                  <Select label="Unknown carrier" data={["accept", "reject"]} value={form.rules.carriers.unknown} allowDeselect={false} onChange={(v) => put("rules.carriers.unknown", v)} />
                  <Select label="Duplicate leads" data={["inherit", "merge", "ignore"]} value={form.rules.dedupe} allowDeselect={false} onChange={(v) => put("rules.dedupe", v)} error={err("rules.dedupe")} />
                  <Checkbox label="Reactivate a pruned lead who is submitted again" checked={form.rules.reactivation.on_resubmit}
                    onChange={(e) => put("rules.reactivation.on_resubmit", e.currentTarget.checked)} mt="md" />
                  <Select label="Reactivate on a click" data={["inherit", "yes", "no"]} value={form.rules.reactivation.on_click} allowDeselect={false}
                    onChange={(v) => put("rules.reactivation.on_click", v)} />
                  <TagsInput label="Incoming leads: partners allowed (empty: all)" data={partnerOptions} value={form.rules.intake.partners} onChange={(v) => put("rules.intake.partners", v)} error={err("rules.intake.partners") ?? err("intake.partners")} />
                  <Textarea label="Daily cap per source (partner=N per line)" autosize minRows={2}
                    value={Object.entries(form.rules.intake.source_caps ?? {}).map(([k, v]) => `${k}=${v}`).join("\n")}
                    onChange={(e) => put("rules.intake.source_caps", parseCaps(e.currentTarget.value))} error={err("rules.intake.source_caps") ?? err("source_caps")} />
                </SimpleGrid>
              </Card>
              {writer ? (
                <Group><Button type="submit" loading={busy} data-testid="save">{creating ? "Create list" : "Save"}</Button>
                  <Button variant="default" onClick={() => navigate("/lists")}>Back</Button></Group>
              ) : (
                <Text size="sm" c="dimmed">Your role may read this list but not change it.</Text>
              )}
            </Stack>
          </form>
        )}
      </Gate>
    </Stack>
  );
}

function parseCaps(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const [k, v] = line.split("=").map((x) => x.trim());
    if (k) out[k] = Number(v);
  }
  return out;
}
