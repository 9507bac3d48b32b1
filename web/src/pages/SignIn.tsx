// Sign-in: email and password; a lock-out or a wrong password is said plainly.
import { Button, Card, Center, PasswordInput, Stack, TextInput, Title } from "@mantine/core";
import { useState, type FormEvent } from "react";
import { ApiProblem } from "../api";
import { Problem } from "../components/States";
import { useSession } from "../session";

export function SignInPage() {
  const { signIn } = useSession();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<ApiProblem | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(email, password);  // the signed-in routes then send the person on (App's AfterSignIn)
    } catch (err) {
      setError(err instanceof ApiProblem ? err : new ApiProblem(0, "error", String(err)));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Center mih="100vh" p="md">
      <Card withBorder shadow="sm" w={380} maw="100%" padding="lg">
        <form onSubmit={submit} aria-label="Sign in">
          <Stack>
            <Title order={2}>Sign in to leadstream</Title>
            <Problem error={error} title="Not signed in" />
            <TextInput label="Email" type="email" autoComplete="username" required value={email}
              onChange={(e) => setEmail(e.currentTarget.value)} data-autofocus />
            <PasswordInput label="Password" autoComplete="current-password" required value={password}
              onChange={(e) => setPassword(e.currentTarget.value)} />
            <Button type="submit" loading={busy}>
              Sign in
            </Button>
          </Stack>
        </form>
      </Card>
    </Center>
  );
}
