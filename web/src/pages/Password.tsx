// Change one's own password; every other session of the person ends (the API says so).
import { Alert, Button, Card, PasswordInput, Stack, Title } from "@mantine/core";
import { useState, type FormEvent } from "react";
import { ApiProblem, rememberCsrf, request } from "../api";
import { Problem } from "../components/States";

export function PasswordPage() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [error, setError] = useState<ApiProblem | null>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(false);
    try {
      const { data } = await request<{ csrf?: string }>("PUT", "/v1/session/password", {
        current_password: current,
        new_password: next,
      });
      if (data?.csrf) rememberCsrf(data.csrf);
      setDone(true);
      setCurrent("");
      setNext("");
    } catch (err) {
      setError(err instanceof ApiProblem ? err : new ApiProblem(0, "error", String(err)));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card withBorder maw={440} padding="lg">
      <form onSubmit={submit} aria-label="Change password">
        <Stack>
          <Title order={2}>Change password</Title>
          {done && <Alert color="green" data-testid="password-changed">Password changed. Your other sessions were signed out.</Alert>}
          <Problem error={error} title="Password not changed" />
          <PasswordInput label="Current password" autoComplete="current-password" required value={current}
            onChange={(e) => setCurrent(e.currentTarget.value)} />
          <PasswordInput label="New password" autoComplete="new-password" required value={next}
            error={error?.forField("new_password")} onChange={(e) => setNext(e.currentTarget.value)} />
          <Button type="submit" loading={busy}>
            Change password
          </Button>
        </Stack>
      </form>
    </Card>
  );
}
