// Loading, error and empty states every page shows the same way.
import { Alert, Center, Loader, Stack, Text } from "@mantine/core";
import type { ReactNode } from "react";
import type { ApiProblem } from "../api";

export function Loading({ what }: { what: string }) {
  return (
    <Center py="xl" aria-busy="true">
      <Stack align="center" gap="xs">
        <Loader size="sm" />
        <Text size="sm" c="dimmed">
          Loading {what}…
        </Text>
      </Stack>
    </Center>
  );
}

export function Problem({ error, title }: { error: ApiProblem | null; title?: string }) {
  if (!error) return null;
  return (
    <Alert color="red" title={title ?? `Could not load (${error.status || "no answer"})`} role="alert" data-testid="problem">
      {error.message}
      {error.problems.length > 0 && (
        <ul>
          {error.problems.map((p, i) => (
            <li key={i}>
              {p.field ? <b>{p.field}: </b> : null}
              {p.problem}
            </li>
          ))}
        </ul>
      )}
    </Alert>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return (
    <Center py="xl">
      <Text c="dimmed" data-testid="empty">
        {children}
      </Text>
    </Center>
  );
}

/** Show loading, then the error, then the content (or the empty note when there is nothing). */
export function Gate({ loading, error, what, empty, children }: {
  loading: boolean;
  error: ApiProblem | null;
  what: string;
  empty?: ReactNode | false;
  children: ReactNode;
}) {
  if (error) return <Problem error={error} />;
  if (loading) return <Loading what={what} />;
  if (empty) return <Empty>{empty}</Empty>;
  return <>{children}</>;
}
